"""The PostgreSQL outbox: every statement the dispatcher and the CLI run on the alert tables.

An alert and one delivery per channel name are inserted in the producer's transaction
(``enqueue``), so an alert exists exactly when its deliveries do. A dispatcher claims a
due delivery with ``FOR UPDATE SKIP LOCKED`` (several may run), marks it ``sending`` with
a lease, sends, and then writes the attempt and the new state in *one* statement
(``RECORD``): the request in flight plus that one round trip is the whole window in
which a crash can cause a duplicate. A ``sending`` row whose lease ran out belonged to a dispatcher
that died; it is claimed again, which is the at-least-once half of the contract.

``attempts`` counts the requests of the current round (``retry-dead`` starts a new one);
``alert_attempts`` keeps every request ever made. The failures that count toward
``max_attempts`` are the round's non-429 attempts, read back from ``alert_attempts``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import asyncpg

from .render import dumps

NOTIFY = "pw_outbox"

_INSERT_ALERT = """
INSERT INTO alerts (id, trigger, trigger_version, mint, signature, ix, slot, block_time, severity,
                    channels, features, token_name, token_symbol)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $13)
ON CONFLICT (id) DO NOTHING"""

CLAIM = """
WITH c AS (
    SELECT alert_id, state FROM alert_deliveries
     WHERE channel = $1
       AND ((state = 'pending' AND next_attempt_at <= now())
            OR (state = 'sending' AND claimed_until < now()))
     ORDER BY next_attempt_at, alert_id
     LIMIT $2
     FOR UPDATE SKIP LOCKED)
UPDATE alert_deliveries d
   SET state = 'sending', claimed_by = $3, claimed_until = now() + make_interval(secs => $4)
  FROM c, alerts a
 WHERE d.alert_id = c.alert_id AND d.channel = $1 AND a.id = d.alert_id
RETURNING c.state AS previous_state, d.attempts,
          (SELECT count(*) FILTER (WHERE coalesce(x.status, 0) <> 429)
             FROM (SELECT t.status FROM alert_attempts t
                    WHERE t.alert_id = d.alert_id AND t.channel = d.channel
                    ORDER BY t.id DESC LIMIT d.attempts) x) AS failures,
          a.id, a.trigger, a.trigger_version, a.mint, a.signature, a.ix, a.slot, a.block_time,
          a.severity, a.features, a.token_name, a.token_symbol"""

# $1 alert, $2 channel, $3 status, $4 error, $5 duration ms, $6 new state, $7 external id,
# $8 dead reason, $9 seconds until the next attempt, $10 this dispatcher
RECORD = """
WITH attempt AS (
    INSERT INTO alert_attempts (alert_id, channel, status, error, duration_ms)
    VALUES ($1, $2, $3, $4, $5))
UPDATE alert_deliveries
   SET state = $6, attempts = attempts + 1, last_status = $3, last_error = $4,
       external_id = coalesce($7, external_id),
       sent_at = CASE WHEN $6 = 'sent' THEN now() END,
       dead_reason = $8,
       next_attempt_at = now() + make_interval(secs => $9),
       claimed_by = NULL, claimed_until = NULL
 WHERE alert_id = $1 AND channel = $2 AND state <> 'sent' AND (claimed_by = $10 OR $6 = 'sent')"""

RENEW = """
UPDATE alert_deliveries SET claimed_until = now() + make_interval(secs => $2)
 WHERE claimed_by = $1 AND state = 'sending'"""

RELEASE = """
UPDATE alert_deliveries SET state = 'pending', claimed_by = NULL, claimed_until = NULL
 WHERE alert_id = $1 AND channel = $2 AND claimed_by = $3 AND state = 'sending'"""

_DUE = "(state = 'pending' OR (state = 'sending' AND claimed_until < now()))"

KILL_UNCONFIGURED = f"""
UPDATE alert_deliveries
   SET state = 'dead', claimed_by = NULL, claimed_until = NULL,
       dead_reason = CASE WHEN channel = ANY($2::text[])
                          THEN format('channel %L is disabled in the config (enabled = false)', channel)
                          ELSE format('channel %L is not configured', channel) END
 WHERE {_DUE} AND NOT (channel = ANY($1::text[]))
RETURNING channel"""

KILL_CHANNEL = f"""
UPDATE alert_deliveries SET state = 'dead', dead_reason = $2, claimed_by = NULL, claimed_until = NULL
 WHERE channel = $1 AND {_DUE}"""


async def enqueue(conn: asyncpg.Connection, alert: Mapping | object, channels: Sequence[str], *,
                  token_name: str | None = None, token_symbol: str | None = None) -> bool:
    """Insert an alert (an ``Alert`` or its ``to_dict()``) and one pending delivery per channel,
    in the caller's transaction; False if the alert was already there (replays are no-ops)."""
    a = alert if isinstance(alert, Mapping) else alert.to_dict()
    names = list(dict.fromkeys(channels))
    status = await conn.execute(
        _INSERT_ALERT, a["id"], a["trigger"], int(a["version"]), a["mint"], a.get("signature", ""),
        a.get("ix", ""), int(a.get("slot", 0)), int(a.get("block_time", 0)), a.get("severity", "info"),
        names, dumps(a.get("features") or {}).decode(), token_name or a.get("token_name"),
        token_symbol or a.get("token_symbol"))
    if status.endswith(" 0"):
        return False
    await conn.execute("INSERT INTO alert_deliveries (alert_id, channel) SELECT $1, unnest($2::text[]) "
                       "ON CONFLICT DO NOTHING", a["id"], names)
    await conn.execute("SELECT pg_notify($1, '')", NOTIFY)
    return True


async def retry_dead(conn: asyncpg.Connection, channel: str | None = None) -> int:
    """Put dead deliveries back in the queue for a new round of attempts; return how many."""
    status = await conn.execute(
        "UPDATE alert_deliveries SET state = 'pending', attempts = 0, next_attempt_at = now(), "
        "dead_reason = NULL, claimed_by = NULL, claimed_until = NULL "
        "WHERE state = 'dead' AND ($1::text IS NULL OR channel = $1)", channel)
    await conn.execute("SELECT pg_notify($1, '')", NOTIFY)
    return int(status.split()[-1])


async def recent(conn: asyncpg.Connection, limit: int = 20) -> list[dict]:
    """The latest alerts with the state of each delivery."""
    rows = await conn.fetch("""
        SELECT a.id, a.trigger, a.mint, a.token_name, a.token_symbol, a.block_time, a.created_at,
               coalesce(json_agg(json_build_object(
                   'channel', d.channel, 'state', d.state, 'attempts', d.attempts,
                   'reason', coalesce(d.dead_reason, d.last_error)) ORDER BY d.channel)
                   FILTER (WHERE d.channel IS NOT NULL), '[]')::text AS deliveries
          FROM (SELECT * FROM alerts ORDER BY created_at DESC, id LIMIT $1) a
          LEFT JOIN alert_deliveries d ON d.alert_id = a.id
         GROUP BY a.id, a.trigger, a.mint, a.token_name, a.token_symbol, a.block_time, a.created_at
         ORDER BY a.created_at DESC, a.id""", limit)
    return [{**dict(r), "deliveries": json.loads(r["deliveries"])} for r in rows]


async def open_count(conn: asyncpg.Connection, alert_ids: Sequence[str] | None = None) -> int:
    """Deliveries not yet final (of ``alert_ids``, or all)."""
    return await conn.fetchval(
        "SELECT count(*) FROM alert_deliveries WHERE state IN ('pending', 'sending') "
        "AND ($1::text[] IS NULL OR alert_id = ANY($1::text[]))", alert_ids)


async def summary(conn: asyncpg.Connection, alert_ids: Sequence[str]) -> dict[str, dict]:
    """Per channel: sent, dead, still open, attempts made, and the distinct dead reasons."""
    rows = await conn.fetch("""
        SELECT d.channel,
               count(*) FILTER (WHERE d.state = 'sent') AS sent,
               count(*) FILTER (WHERE d.state = 'dead') AS dead,
               count(*) FILTER (WHERE d.state IN ('pending', 'sending')) AS open,
               (SELECT count(*) FROM alert_attempts t
                 WHERE t.channel = d.channel AND t.alert_id = ANY($1::text[])) AS attempts,
               array_remove(array_agg(DISTINCT d.dead_reason), NULL) AS reasons
          FROM alert_deliveries d WHERE d.alert_id = ANY($1::text[])
         GROUP BY d.channel ORDER BY d.channel""", list(alert_ids))
    out = {}
    for r in rows:
        out[r["channel"]] = {"sent": r["sent"], "dead": r["dead"], "attempts": r["attempts"]}
        if r["open"]:
            out[r["channel"]]["open"] = r["open"]
        if r["reasons"]:
            out[r["channel"]]["dead_reasons"] = list(r["reasons"])[:5]
    return out
