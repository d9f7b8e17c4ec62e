"""What an operator asks first: are the streams keeping up, who holds what, what died, what is missing.

``pocketwatcher status`` prints it from Redis alone (the runner need not be up): per
partition its length, lag (not yet delivered), pending (delivered, not acknowledged),
the oldest pending entry's age and the dead letters; the runners alive and the
partitions each holds; the last slot ingest fully handed on; the gaps it reported; and
the newest dead letters with their errors.
"""

from __future__ import annotations

import json
import time

from pocketwatcher.store.leases import PartitionLeases
from pocketwatcher.store.streams import SwapStreams


async def collect(redis, prefix: str, parts: int, dead: int = 10) -> dict:
    streams = SwapStreams(redis, prefix=prefix, parts=parts)
    st = await streams.stats()
    leases = PartitionLeases(redis, prefix, parts, "status-reader")
    holders = {}
    for k in range(parts):
        v = await redis.get(leases.lease_key(k))
        holders[k] = v.decode() if isinstance(v, bytes) else v
    for row in st["partitions"]:
        row["held_by"] = holders.get(row["partition"])
    now_ms = (await redis.time())[0] * 1000
    owners = [(o.decode() if isinstance(o, bytes) else o, exp)
              for o, exp in await redis.zrangebyscore(leases.owners_key, now_ms, "+inf", withscores=True)]
    handed = await redis.get(f"{prefix}ingest:handed_slot")
    gaps = [json.loads(g) for g in await redis.lrange(f"{prefix}ingest:gaps", 0, -1)]
    letters = await streams.dead_letters(count=dead) if dead else []
    for d in letters:
        d.pop("payload", None)
    return {"prefix": prefix, "partitions": parts, "runners": [o for o, _ in owners],
            "ingest_handed_slot": int(handed) if handed is not None else None, "gaps": gaps,
            "streams": st, "dead_letters": letters, "at": time.time()}


def render(s: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    t = Table(title=f"swap streams ({s['prefix']}, {s['partitions']} partitions)")
    for col in ("partition", "held by", "length", "lag", "pending", "oldest pending", "dead letters"):
        t.add_column(col, justify="left" if col == "held by" else "right")
    for p in s["streams"]["partitions"]:
        t.add_row(str(p["partition"]), p.get("held_by") or "-", str(p["length"]), str(p["lag"]), str(p["pending"]),
                  f"{p['oldest_pending_idle_ms'] / 1000:.1f} s" if p["pending"] else "-", str(p["dead_letters"]))
    con.print(t)
    con.print(f"runners alive: {', '.join(s['runners']) or 'none'}")
    con.print(f"ingest handed on up to slot: {s['ingest_handed_slot'] if s['ingest_handed_slot'] is not None else '-'}")
    for g in s["gaps"]:
        con.print(f"[red]gap[/red]: slots {g['from_slot']}..{g['to_slot'] if g['to_slot'] is not None else 'live'} "
                  f"could not be replayed ({g['reason'][:120]})")
    for d in s["dead_letters"]:
        con.print(f"[red]dead letter[/red] p{d['partition']} {d['id']} mint {d['mint']} after {d['deliveries']} "
                  f"deliveries: {d['error'][:200]}")
