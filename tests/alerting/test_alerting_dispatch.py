"""The dispatcher against a real local HTTP server playing Discord and Telegram, with faults.

Every test ends with each alert sent exactly once (the server accepted it once) or dead
with its reason; none is left open.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from alerting_helpers import (  # noqa: F401 (the *_fixture names register fixtures)
    DISCORD_TOKEN,
    TELEGRAM_TOKEN,
    attempts,
    db_fixture,
    deliveries,
    dumps_rows,
    fake_fixture,
    make_config,
    seed,
)

from pocketwatcher.alerting import Dispatcher
from pocketwatcher.alerting.testing import Reply

pytestmark = pytest.mark.integration
PARSE_ERROR = {"ok": False, "error_code": 400, "description": "Bad Request: can't parse entities: "
               "Unsupported start tag \"x\" at byte offset 3"}


def run(db, config, ids=None, timeout=30.0, **kw) -> Dispatcher:
    d = Dispatcher(db, config, **kw)
    assert asyncio.run(d.run_until_idle(ids, timeout=timeout)), "deliveries still open"
    return d


def check_429_waits(fake, route: str) -> int:
    """After a 429 on ``route``: nothing new goes there for the asked time (a request already
    on the wire when the answer arrived is allowed), and the alert itself waits that long."""
    reqs = fake.of(route)
    seen = 0
    for r in reqs:
        if r.reply.status != 429:
            continue
        body = r.reply.body or {}
        asked = float(body.get("retry_after") or (body.get("parameters") or {}).get("retry_after")
                      or r.reply.headers.get("Retry-After", 0))
        assert asked > 0
        during = [x for x in reqs if r.answered_t + 0.05 < x.t < r.answered_t + asked]
        assert during == [], (route, asked)
        again = next(x for x in reqs if x.alert_id == r.alert_id and x.t > r.t)
        assert again.t - r.answered_t >= asked, (route, asked, again.t - r.answered_t)
        seen += 1
    return seen


def test_every_alert_sent_exactly_once_through_faults(db, fake):
    cfg = make_config(fake, timeout_s=0.4)
    fake.late_after = 0.4  # an answer that slow never reached the dispatcher
    fake.script("discord", Reply(502), Reply(500), Reply(503), Reply(429, {"retry_after": 0.3, "global": False}),
                Reply(reset=True), Reply(delay=0.8), Reply(502))
    fake.script("telegram", Reply(502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}),
                Reply(429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                            "parameters": {"retry_after": 1}}), Reply(reset=True))
    fake.script("webhook", Reply(429, headers={"Retry-After": "1"}), Reply(503), Reply(reset=True))
    ids = asyncio.run(seed(db, 12, ["discord", "telegram", "hook"]))
    run(db, cfg, ids)

    rows = deliveries(db)
    assert len(rows) == 36 and {r["state"] for r in rows.values()} == {"sent"}, dumps_rows(list(rows.values()))
    for service in ("discord", "telegram", "webhook"):
        accepted = {}
        for r in fake.of(service):
            if r.ok and r.reply.delay < fake.late_after:
                accepted[r.alert_id] = accepted.get(r.alert_id, 0) + 1
        assert accepted == {i: 1 for i in ids}, service
    # each request the server saw is one recorded attempt
    att = attempts(db)
    for channel, service in (("discord", "discord"), ("telegram", "telegram"), ("hook", "webhook")):
        assert sum(a["channel"] == channel for a in att) == len(fake.of(service))
    assert sum(r["external_id"] is not None for k, r in rows.items() if k[1] != "hook") == 24
    for route in ("discord:111", "telegram:-100123", "webhook:/hook/hook"):
        assert check_429_waits(fake, route) == 1


def test_never_retries_400_401_403_404_and_disables_gone_webhooks(db, fake):
    channels = {f"h{s}": {"kind": "webhook", "concurrency": 1} for s in (400, 401, 403, 404)}
    channels["alpha"] = {"kind": "discord", "concurrency": 1}
    channels["tg"] = {"kind": "telegram"}
    cfg = make_config(fake, channels)
    for s in (400, 401, 403, 404):
        fake.script(f"webhook:/hook/h{s}", Reply(s, {"error": f"status {s}"}))
    fake.script("discord", Reply(400, {"message": "Invalid Form Body", "code": 50035}),
                Reply(404, {"message": "Unknown Webhook", "code": 10015}))
    ids = asyncio.run(seed(db, 2, [f"h{s}" for s in (400, 401, 403, 404)]))
    ids += asyncio.run(seed(db, 6, ["alpha", "tg"], start=2))
    d = run(db, cfg)

    rows = deliveries(db)
    for s in (400, 401, 403, 404):
        assert len(fake.of(f"webhook:/hook/h{s}")) == (2 if s in (400, 403) else 1)  # 401/404 disable
        first, second = rows[(ids[0], f"h{s}")], rows[(ids[1], f"h{s}")]
        assert first["state"] == "dead" and f"answered {s}" in first["dead_reason"]
        if s in (401, 404):
            assert second["state"] == "dead" and f"channel 'h{s}' disabled" in second["dead_reason"]
        else:
            assert second["state"] == "sent"  # the next alert still goes
    discord = [r for (_, ch), r in rows.items() if ch == "alpha"]
    assert [r["state"] for r in discord] == ["dead"] * 6
    assert len(fake.of("discord")) == 2  # after the 404 nothing more goes to the webhook
    assert sum("Invalid Form Body" in r["dead_reason"] for r in discord) == 1
    assert sum(r["dead_reason"].startswith("Discord answered 404") for r in discord) == 1
    assert sum("channel 'alpha' disabled" in r["dead_reason"] for r in discord) == 4
    assert {r["state"] for (_, ch), r in rows.items() if ch == "tg"} == {"sent"}  # unaffected
    assert "alpha" in d.disabled and any("channel 'alpha' disabled" in n for n in d.notices)
    everything = dumps_rows(list(rows.values()) + attempts(db)) + repr(d.notices) + repr(d.stats())
    assert DISCORD_TOKEN not in everything and TELEGRAM_TOKEN not in everything


def test_failures_are_retried_with_backoff_then_dead_with_the_reason(db, fake):
    cfg = make_config(fake, {"hook": {"kind": "webhook", "max_attempts": 3}})
    fake.policy = lambda req: Reply(503)
    ids = asyncio.run(seed(db, 2, ["hook"]))
    run(db, cfg)
    rows = deliveries(db)
    for i in ids:
        assert rows[(i, "hook")]["state"] == "dead" and rows[(i, "hook")]["attempts"] == 3
        assert rows[(i, "hook")]["dead_reason"].startswith("gave up after 3 failed attempts; last: the webhook "
                                                            "answered 503")
        times = [r.t for r in fake.of("webhook") if r.alert_id == i]
        assert len(times) == 3
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert gaps[0] >= 0.025 and gaps[1] >= 0.05  # equal jitter: at least half of 0.05, 0.1


@pytest.mark.parametrize("signal", ["body", "header"])
def test_discord_global_limit_pauses_every_discord_channel(db, fake, signal):
    cfg = make_config(fake, {"one": {"kind": "discord", "webhook_id": "1"},
                             "two": {"kind": "discord", "webhook_id": "2"}})
    reply = {"body": Reply(429, {"retry_after": 0.5, "global": True, "message": "You are being rate limited."}),
             "header": Reply(429, {"message": "rate"}, {"Retry-After": "1", "X-RateLimit-Scope": "global"})}[signal]
    fake.script("discord:1", reply)
    fake.policy = lambda req: Reply(delay=0.02)
    asyncio.run(seed(db, 8, ["one", "two"]))
    run(db, cfg)
    hit = next(r for r in fake.of("discord") if r.reply.status == 429)
    wait = 1.0 if signal == "header" else 0.5
    during = [r for r in fake.of("discord") if hit.answered_t + 0.05 < r.t < hit.answered_t + wait]
    assert during == []  # neither webhook was called while the global limit lasted
    assert {r["state"] for r in deliveries(db).values()} == {"sent"}


def test_discord_route_limit_pauses_only_that_webhook(db, fake):
    cfg = make_config(fake, {"one": {"kind": "discord", "webhook_id": "1"},
                             "two": {"kind": "discord", "webhook_id": "2"}})
    fake.script("discord:1", Reply(429, {"retry_after": 0.6, "global": False}))
    fake.policy = lambda req: Reply(delay=0.03)
    asyncio.run(seed(db, 8, ["one", "two"]))
    run(db, cfg)
    hit = next(r for r in fake.of("discord:1") if r.reply.status == 429)
    window = lambda route: [r for r in fake.of(route) if hit.answered_t + 0.05 < r.t < hit.answered_t + 0.6]  # noqa: E731
    assert window("discord:1") == [] and len(window("discord:2")) >= 2
    assert {r["state"] for r in deliveries(db).values()} == {"sent"}


def test_telegram_falls_back_to_plain_text_and_follows_chat_migration(db, fake):
    cfg = make_config(fake, {"tg": {"kind": "telegram", "concurrency": 1, "chat_id": -100}})
    fake.script("telegram", Reply(400, PARSE_ERROR), Reply(200),
                Reply(400, {"ok": False, "error_code": 400, "description": "Bad Request: group chat was upgraded "
                            "to a supergroup chat", "parameters": {"migrate_to_chat_id": -1009999}}))
    ids = asyncio.run(seed(db, 3, ["tg"]))
    d = run(db, cfg)
    reqs = fake.of("telegram")
    assert reqs[0].body["parse_mode"] == "HTML" and "parse_mode" not in reqs[1].body
    assert reqs[1].alert_id == ids[0] and "<b>" not in reqs[1].body["text"]
    assert reqs[2].body["chat_id"] == -100 and reqs[3].body["chat_id"] == -1009999
    assert [r.body["chat_id"] for r in reqs[4:]] == [-1009999]
    assert all(r.body["disable_web_page_preview"] is True for r in reqs)
    rows = deliveries(db)
    assert {r["state"] for r in rows.values()} == {"sent"}
    assert "sent as plain text" in rows[(ids[0], "tg")]["last_error"]
    assert any("set chat_id = -1009999" in n for n in d.notices)
    assert [r.alert_id for r in reqs if r.ok] == ids


def test_pacing_keeps_a_discord_webhook_under_5_per_2s(db, fake):
    cfg = make_config(fake, {"alpha": {"kind": "discord", "rate": None, "concurrency": 3}})
    asyncio.run(seed(db, 7, ["alpha"]))
    run(db, cfg)
    times = [r.t for r in fake.of("discord")]
    assert len(times) == 7 and all(r.ok for r in fake.of("discord"))
    assert max(sum(1 for u in times if t <= u < t + 2.0) for t in times) <= 5
    assert times[-1] - times[0] >= 2.0


def test_a_slow_channel_does_not_hold_up_the_others(db, fake):
    cfg = make_config(fake, {"fast": {"kind": "discord"}, "slow": {"kind": "webhook", "concurrency": 1,
                                                                     "timeout_s": 2.0}})
    fake.policy = lambda req: Reply(delay=0.25) if req.service == "webhook" else None
    asyncio.run(seed(db, 6, ["fast", "slow"]))
    t0 = time.monotonic()
    run(db, cfg)
    fast_done = max(r.t for r in fake.of("discord")) - t0
    slow_done = max(r.t for r in fake.of("webhook")) - t0
    assert fast_done < 1.0 and slow_done > 1.2


def test_unconfigured_channels_go_dead_with_the_reason(db, fake):
    cfg = make_config(fake, {"hook": {"kind": "webhook"}})
    ids = asyncio.run(seed(db, 2, ["hook", "nowhere"]))
    run(db, cfg)
    rows = deliveries(db)
    assert [rows[(i, "nowhere")]["dead_reason"] for i in ids] == ["channel 'nowhere' is not configured"] * 2
    assert [rows[(i, "hook")]["state"] for i in ids] == ["sent", "sent"]


def test_several_dispatchers_deliver_each_alert_once(db, fake):
    cfg = make_config(fake, {"alpha": {"kind": "discord"}, "hook": {"kind": "webhook"}})
    fake.policy = lambda req: Reply(delay=0.005)
    ids = asyncio.run(seed(db, 40, ["alpha", "hook"]))

    async def three():
        ds = [Dispatcher(db, cfg, name=f"d{i}") for i in range(3)]
        return await asyncio.gather(*(d.run_until_idle(ids, timeout=30) for d in ds)), ds

    done, ds = asyncio.run(three())
    assert all(done)
    assert fake.delivered() == {i: 2 for i in ids}  # once on each channel
    assert sum(1 for d in ds if sum(c["sent"] for c in d.counts.values())) >= 2  # the work was shared


def test_a_slow_send_keeps_its_claim(db, fake):
    """The lease (0.6 s) is shorter than the answer (1.2 s): the heartbeat must keep other
    dispatchers from taking the delivery over and sending it again."""
    cfg = make_config(fake, {"hook": {"kind": "webhook", "timeout_s": 3.0}}, lease_s=0.6)
    fake.policy = lambda req: Reply(delay=1.2)
    ids = asyncio.run(seed(db, 1, ["hook"]))

    async def two():
        return await asyncio.gather(*(Dispatcher(db, cfg).run_until_idle(ids, timeout=10) for _ in range(2)))

    assert all(asyncio.run(two()))
    assert len(fake.of("webhook")) == 1


def test_retry_dead_starts_a_new_round(db, fake):
    from pocketwatcher.alerting.cli import alerts_retry_dead

    cfg = make_config(fake, {"hook": {"kind": "webhook", "max_attempts": 2}})
    fake.script("webhook", Reply(500), Reply(500))
    ids = asyncio.run(seed(db, 1, ["hook"]))
    run(db, cfg)
    assert deliveries(db)[(ids[0], "hook")]["state"] == "dead"
    assert alerts_retry_dead(db) == 1
    run(db, cfg)
    row = deliveries(db)[(ids[0], "hook")]
    assert row["state"] == "sent" and row["attempts"] == 1 and row["dead_reason"] is None
    assert len(attempts(db)) == 3  # the history keeps every request


def test_secrets_never_reach_logs_errors_or_the_database(db, fake, caplog):
    caplog.set_level(logging.DEBUG)
    cfg = make_config(fake, {"alpha": {"kind": "discord"}, "tg": {"kind": "telegram"},
                             "gone": {"kind": "discord", "webhook_id": "9", "token": "AnotherSecretToken-xyz123"}})
    fake.script("discord:111", Reply(reset=True), Reply(400, {"message": "bad"}))
    fake.script("telegram", Reply(401, {"ok": False, "error_code": 401, "description": "Unauthorized"}))
    fake.script("discord:9", Reply(404, {"message": "Unknown Webhook", "code": 10015}))
    asyncio.run(seed(db, 3, ["alpha", "tg", "gone"]))
    d = run(db, cfg)
    text = caplog.text + dumps_rows(list(deliveries(db).values()) + attempts(db)) + repr(d.notices)
    assert "HTTP Request: POST" in caplog.text  # httpx did log its requests, redacted
    for secret in (DISCORD_TOKEN, TELEGRAM_TOKEN, "AnotherSecretToken-xyz123", TELEGRAM_TOKEN.split(":")[1]):
        assert secret not in text
