"""The fixed catalogue of per-mint features a trigger's ``when`` may use.

Every feature is computed over *event time* (the swaps' block_time), never the wall
clock. Windows: 10s, 60s, 5m, 1h. A feature whose value is unknown at a swap (no
history yet, no supply known) is ``None``; in a ``when`` expression a comparison with
an unknown value is unknown, and a trigger fires only when its expression is true
(SQL three-valued logic, identical in Python and in the compiled DuckDB SQL).
"""

from __future__ import annotations

from dataclasses import dataclass

WINDOWS = {"10s": 10, "60s": 60, "5m": 300, "1h": 3600}


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    name: str
    type: str  # "number" | "bool"
    unit: str
    doc: str


def _catalogue() -> dict[str, FeatureSpec]:
    out: dict[str, FeatureSpec] = {}

    def add(name: str, typ: str, unit: str, doc: str) -> None:
        out[name] = FeatureSpec(name, typ, unit, doc)

    for w in WINDOWS:
        add(f"buys_{w}", "number", "count", f"buy swaps in the last {w}")
        add(f"sells_{w}", "number", "count", f"sell swaps in the last {w}")
        add(f"trades_{w}", "number", "count", f"swaps in the last {w}")
        add(f"unique_buyers_{w}", "number", "wallets", f"distinct buying wallets in the last {w}")
        add(f"unique_sellers_{w}", "number", "wallets", f"distinct selling wallets in the last {w}")
        add(f"buy_volume_sol_{w}", "number", "SOL", f"SOL spent buying in the last {w}")
        add(f"sell_volume_sol_{w}", "number", "SOL", f"SOL received selling in the last {w}")
        add(f"volume_sol_{w}", "number", "SOL", f"SOL traded (both sides) in the last {w}")
        add(f"net_flow_sol_{w}", "number", "SOL", f"buy minus sell volume in the last {w}")
        add(f"price_change_pct_{w}", "number", "%",
            f"price now vs the last price at or before {w} ago (or the first in the window), in percent")
        add(f"top_buyer_share_{w}", "number", "fraction 0..1",
            f"largest single wallet's share of buy volume in the last {w}")
        add(f"fresh_buyer_share_{w}", "number", "fraction 0..1",
            f"share of buys in the last {w} by wallets first seen (funded or trading) < 10 min before the buy")
    add("age_s", "number", "s", "seconds since the token's launch (create event, else its first swap)")
    add("mcap_sol", "number", "SOL", "market cap now: price × total supply (pump.fun: from the curve reserves)")
    add("price_sol", "number", "SOL/token", "last price in SOL per whole token")
    add("bonding_progress", "number", "fraction 0..1",
        "share of the 793.1 M curve tokens sold (1 once complete or migrated; unknown off pump.fun)")
    add("migrated", "bool", "", "the token has left the bonding curve for PumpSwap")
    add("dev_sold", "bool", "", "the creator has sold any of the token")
    add("dev_sold_pct", "number", "fraction 0..1", "share of the creator's peak holding sold so far")
    add("dev_exited_s", "number", "s", "seconds since the creator's holding fell below 1% of its peak (unknown while it has not)")
    add("bundle_share", "number", "fraction 0..1",
        "share of the total supply bought in the launch slot by wallets other than the creator")
    add("cto_score", "number", "0..1",
        "community-takeover score: independent clusters buying after the creator left (see CTOScorer)")
    add("buyer_clusters_5m", "number", "clusters", "distinct wallet clusters buying in the last 5m")
    add("largest_cluster_share_5m", "number", "fraction 0..1", "largest cluster's share of buy volume in the last 5m")
    add("smart_buyers_1h", "number", "wallets", "distinct smart-money wallets buying in the last 1h")
    add("swap_sol", "number", "SOL", "SOL size of the swap being evaluated")
    add("is_buy", "bool", "", "the swap being evaluated is a buy")
    return out


CATALOGUE: dict[str, FeatureSpec] = _catalogue()
