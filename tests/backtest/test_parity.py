"""Parity: engine alerts = backtest alerts = compiled-SQL alerts, alert for alert."""

from __future__ import annotations

from pathlib import Path

from pocketwatcher.backtest.data import iter_stream, resolve
from pocketwatcher.backtest.run import run_backtest, run_engine
from pocketwatcher.backtest.sweep import feature_table, sweep
from pocketwatcher.triggers.config import load_triggers
from pocketwatcher.triggers.engine import TriggerEngine

TRIGGERS = Path(__file__).resolve().parents[2] / "triggers.toml"


def _engine_alerts(export, triggers):
    engine = TriggerEngine(triggers)
    out = []
    swaps_glob, events = resolve(export)
    for kind, item in iter_stream(swaps_glob, events):
        if kind == "trade":
            out.extend(a.id for a in engine.on_trade(item))
        else:
            engine.on_create(*item)
    return out


def test_engine_backtest_and_sql_agree(sim_export):
    d, _ = sim_export
    export = d / "export"
    ts = load_triggers(TRIGGERS)
    direct = _engine_alerts(export, ts)
    assert len(direct) >= 20, "the simulated market should make the default triggers fire"
    one, _n = run_engine(export, ts, workers=1)
    two, _n = run_engine(export, ts, workers=2)
    assert len(set(direct)) == len(direct)
    assert sorted(a["id"] for a in one) == sorted(direct)
    assert sorted(a["id"] for a in two) == sorted(direct)  # partitioned by mint: same set
    bt = run_backtest(export, ts, d / "bt", workers=2)
    assert sorted(a["id"] for a in bt.alerts) == sorted(direct)
    # compiled SQL over a feature table, cooldowns applied, trigger by trigger
    by_trigger: dict[str, set[str]] = {}
    for a in one:
        by_trigger.setdefault(a["trigger"], set()).add(a["id"])
    for t in ts.triggers:
        ft = feature_table(export, set(t.expr.features), set(t.programs) if t.programs else None)
        res = sweep(ft, t.when, [{}], mcap_floor=t.mcap_floor_sol or 0.0, cooldown_s=t.cooldown_s or 0,
                    once=t.once, name=t.name, version=t.version)
        assert set(res.alerts["id"].to_pylist()) == by_trigger.get(t.name, set()), t.name


def test_sweep_setting_equals_engine_with_those_thresholds(sim_export):
    d, _ = sim_export
    export = d / "export"
    template = "unique_buyers_60s >= $buyers and net_flow_sol_60s >= $flow"
    ft = feature_table(export, {"unique_buyers_60s", "net_flow_sol_60s"})
    settings = [{"buyers": b, "flow": f} for b in (5, 8, 12) for f in (0.5, 2.0, 4.0)]
    res = sweep(ft, template, settings, mcap_floor=40.0, cooldown_s=900, name="probe", version=1)
    from pocketwatcher.triggers.config import parse_triggers

    for s in settings:
        text = f"""
[[trigger]]
name = "probe"
version = 1
when = "unique_buyers_60s >= {s['buyers']} and net_flow_sol_60s >= {s['flow']}"
cooldown = "15m"
mcap_floor_sol = 40.0
"""
        want = set(_engine_alerts(export, parse_triggers(text)))
        sid = settings.index(s)
        got = {i for i, k in zip(res.alerts["id"].to_pylist(), res.alerts["setting_id"].to_pylist(), strict=True)
               if k == sid}
        assert got == want, s
    counts = [p["alerts"] for p in res.per_setting]
    assert counts[0] >= counts[-1]  # looser thresholds never fire less


def _every_feature_triggers() -> str:
    """Loose triggers that read every catalogue feature between them (several fire on
    the same swap), with short cooldowns, once, floors and program filters."""
    from pocketwatcher.triggers.catalogue import WINDOWS

    whens = []
    for w in WINDOWS:
        whens += [f"buys_{w} >= 3 and sells_{w} >= 1 and trades_{w} > 4",
                  f"unique_buyers_{w} >= 3 or unique_sellers_{w} >= 4",
                  f"buy_volume_sol_{w} > 2 and sell_volume_sol_{w} < 3 and volume_sol_{w} >= 1 and "
                  f"net_flow_sol_{w} > 0.5",
                  f"price_change_pct_{w} > 20 or price_change_pct_{w} < -20",
                  f"top_buyer_share_{w} < 0.4 and fresh_buyer_share_{w} > 0.2"]
    whens += ["age_s > 100 and mcap_sol > 50 and price_sol > 0 and bonding_progress > 0.5 and not migrated",
              "dev_sold and dev_sold_pct > 0.5 and dev_exited_s > 10", "bundle_share > 0.01", "cto_score > 0",
              "buyer_clusters_5m >= 3 and largest_cluster_share_5m < 0.6",
              "smart_buyers_1h >= 1 and swap_sol > 0.5 and is_buy",
              "volume_sol_60s * 60 >= 3 * volume_sol_1h and (unique_buyers_5m - unique_sellers_5m) / trades_5m > 0.1"]
    extra = {len(whens) - 7: 'programs = ["pumpfun"]', len(whens) - 2: "mcap_floor_sol = 35.0",
             3: "once = true", 9: 'cooldown = "10s"'}
    out = ['[defaults]', 'mcap_floor_sol = 0.0', 'cooldown = "2m"']
    for i, when in enumerate(whens):
        out += ["[[trigger]]", f'name = "t{i}"', "version = 1", f'when = "{when}"', extra.get(i, "")]
    return "\n".join(out)


def test_every_feature_engine_backtest_and_sql_agree(sim_export):
    from pocketwatcher.triggers.config import parse_triggers

    d, _ = sim_export
    export = d / "export"
    ts = parse_triggers(_every_feature_triggers(), source="every_feature.toml")
    direct = _engine_alerts(export, ts)
    one, _n = run_engine(export, ts, workers=1)
    two, _n = run_engine(export, ts, workers=2)
    bt = run_backtest(export, ts, d / "bt_every", workers=2)
    assert len({a["trigger"] for a in one}) == len(ts.triggers), "every trigger should fire"
    assert sorted(a["id"] for a in one) == sorted(a["id"] for a in two) == sorted(direct)
    assert sorted(a["id"] for a in bt.alerts) == sorted(direct)
    assert {a["id"]: a["features"] for a in one} == {a["id"]: a["features"] for a in two}
    by_trigger: dict[str, set[str]] = {}
    for a in one:
        by_trigger.setdefault(a["trigger"], set()).add(a["id"])
    for t in ts.triggers:
        ft = feature_table(export, set(t.expr.features), set(t.programs) if t.programs else None, workers=1)
        res = sweep(ft, t.when, [{}], mcap_floor=t.mcap_floor_sol or 0.0, cooldown_s=t.cooldown_s or 0,
                    once=t.once, name=t.name, version=t.version)
        assert set(res.alerts["id"].to_pylist()) == by_trigger.get(t.name, set()), t.name
