"""The trigger file: resolution of defaults, errors that name line and trigger, hot reload."""

from __future__ import annotations

import hashlib
import pickle
import threading
from pathlib import Path

import pytest

from pocketwatcher.triggers.config import (
    DEFAULT_TRIGGERS,
    TriggerFileError,
    TriggerRegistry,
    load_triggers,
    parse_duration,
    parse_triggers,
)

VALID = '''\
# the triggers in force
[defaults]
mcap_floor_sol = 60.0
cooldown = "10m"
channels = ["console"]
programs = []

[[trigger]]
name = "buyer_burst"
version = 2
description = """
Many distinct buyers and money flowing in.
"""
when = "unique_buyers_60s >= 25 and net_flow_sol_60s > 5"
cooldown = "15m"
channels = ["discord", "telegram"]
mcap_floor_sol = 30.0
programs = ["pumpfun"]

[[trigger]]
name = "bundled_launch"
version = 1
when = "bundle_share > 0.3 and age_s < 60"
once = true
severity = "warning"
mcap_floor_sol = 0

[[trigger]]
name = "quiet"
version = 1
when = "dev_sold"
enabled = false
'''


def test_valid_file_round_trip(tmp_path):
    path = tmp_path / "triggers.toml"
    path.write_text(VALID)
    ts = load_triggers(path)
    assert ts.source == str(path) and ts.text == VALID
    assert ts.version_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [t.name for t in ts] == ["buyer_burst", "bundled_launch", "quiet"]
    assert [t.name for t in ts.enabled] == ["buyer_burst", "bundled_launch"]

    burst = ts.get("buyer_burst")
    assert (burst.version, burst.cooldown_s, burst.once, burst.severity) == (2, 900, False, "info")
    assert burst.description == "Many distinct buyers and money flowing in.\n"
    assert burst.channels == ("discord", "telegram")
    assert burst.programs == frozenset({"pumpfun"})
    assert burst.mcap_floor_sol == 30.0
    assert burst.expr.features == {"unique_buyers_60s", "net_flow_sol_60s"}
    assert burst.features == {"unique_buyers_60s", "net_flow_sol_60s", "mcap_sol"}
    assert burst.line == 8
    values = {"unique_buyers_60s": 30, "net_flow_sol_60s": 6.0}
    assert burst.expr.evaluate(values) is True
    assert burst.condition.evaluate(values) is None  # market cap unknown: below no floor we can check
    assert burst.condition.evaluate({**values, "mcap_sol": 31.0}) is True
    assert burst.condition.evaluate({**values, "mcap_sol": 29.0}) is False
    assert burst.condition.to_sql().endswith('AND ("mcap_sol" >= 30)')

    bundled = ts.get("bundled_launch")
    assert (bundled.once, bundled.cooldown_s, bundled.severity) == (True, None, "warning")
    assert bundled.mcap_floor_sol is None  # 0 disables the global floor
    assert bundled.features == {"bundle_share", "age_s"}
    assert bundled.channels == ("console",) and bundled.programs == frozenset()

    quiet = ts.get("quiet")
    assert (quiet.enabled, quiet.cooldown_s, quiet.mcap_floor_sol) == (False, 600, 60.0)
    assert ts.features == {"unique_buyers_60s", "net_flow_sol_60s", "mcap_sol", "bundle_share", "age_s"}
    assert ts.get("nope") is None

    back = pickle.loads(pickle.dumps(ts))
    assert back.get("buyer_burst").expr.evaluate(values) is True


def test_builtin_defaults_without_a_defaults_table():
    ts = parse_triggers('[[trigger]]\nname = "a"\nversion = 1\nwhen = "buys_10s > 3"\n')
    (t,) = ts
    assert (t.cooldown_s, t.channels, t.programs, t.mcap_floor_sol) == (600, ("console",), frozenset(), None)
    assert t.condition is t.expr and t.features == {"buys_10s"}
    assert len(parse_triggers("")) == 0


def test_engine_accepts_a_trigger_set():
    from pocketwatcher.triggers.engine import TriggerEngine

    engine = TriggerEngine(parse_triggers(VALID))
    assert [t.name for t in engine.triggers] == ["buyer_burst", "bundled_launch"]


def _error(text: str) -> TriggerFileError:
    with pytest.raises(TriggerFileError) as e:
        parse_triggers(text, source="triggers.toml")
    return e.value


TRIGGER = '[[trigger]]\nname = "{name}"\nversion = 1\nwhen = "buys_60s > 3"\n'


def test_unknown_feature_message_names_file_line_trigger_and_column():
    text = "\n" * 10 + '[[trigger]]\nname = "buyer_burst"\nversion = 1\nwhen = "1 < uniq_buyers_60s"\n'
    e = _error(text)
    assert str(e) == ("triggers.toml:14: trigger 'buyer_burst': unknown feature 'uniq_buyers_60s' in 'when' "
                      "at column 5 (did you mean 'unique_buyers_60s'?)")
    assert (e.line, e.trigger) == (14, "buyer_burst")
    assert e.problem.startswith("unknown feature 'uniq_buyers_60s'")


@pytest.mark.parametrize("text, line, trigger, problem", [
    ("colour = 1\n" + TRIGGER.format(name="a"), 1, None, "unknown key 'colour'"),
    (TRIGGER.format(name="a") + "[default]\ncooldown = 5\n", 5, None, "unknown key 'default' (did you mean 'defaults'?)"),
    ("[defaults]\ncooldown = 5\ncooldwn = 5\n", 3, None,
     "unknown key 'cooldwn' in [defaults] (did you mean 'cooldown'?)"),
    ("[defaults]\nmcap_floor_sol = -1.0\n", 2, None, "'defaults.mcap_floor_sol': input should be greater than or"),
    ("[defaults]\ncooldown = \"10 minutes\"\n", 2, None, "'defaults.cooldown': '10 minutes' is not a duration"),
    (TRIGGER.format(name="a") + TRIGGER.format(name="b") + "chanels = []\n", 9, "b",
     "unknown key 'chanels' (did you mean 'channels'?)"),
    (TRIGGER.format(name="a") + 'cooldown = "10 minutes"\n', 5, "a", "'cooldown': '10 minutes' is not a duration"),
    (TRIGGER.format(name="a") + 'once = true\ncooldown = "5m"\n', 5, "a",
     "'once = true' and 'cooldown' are both set; keep one"),
    (TRIGGER.format(name="a") + "\n" + TRIGGER.format(name="a"), 7, "a",
     "duplicate name 'a' (also at line 2); names must be unique"),
    (TRIGGER.format(name="a") + "mcap_floor_sol = -5\n", 5, "a", "'mcap_floor_sol': input should be greater"),
    (TRIGGER.format(name="a") + 'severity = "loud"\n', 5, "a", "'severity': input should be 'info' or 'warning'"),
    (TRIGGER.format(name="a") + 'channels = "discord"\n', 5, "a", "'channels': input should be a valid list"),
    (TRIGGER.format(name="a") + 'channels = ["discord", 3]\n', 5, "a", "'channels[1]': input should be a valid string"),
    (TRIGGER.format(name="Buyer Burst"), 2, "Buyer Burst", "'name' may hold only a-z, 0-9 and '_'"),
    ('[[trigger]]\nname = "a"\nversion = "1"\nwhen = "buys_60s > 3"\n', 3, "a",
     "'version': input should be a valid integer, got '1'"),
    ('[[trigger]]\nname = "a"\nversion = 0\nwhen = "buys_60s > 3"\n', 3, "a", "'version': input should be greater"),
    ('\n[[trigger]]\nname = "a"\nversion = 1\n', 2, "a", "missing required key 'when'"),
    ('[[trigger]]\nversion = 1\nwhen = "buys_60s > 3"\n', 1, "#1", "missing required key 'name'"),
    ('[[trigger]]\nname = "a"\nversion = 1\nwhen = "buys_60s > 3"\nenabled = "yes"\n', 5, "a",
     "'enabled': input should be a valid boolean"),
    ('[trigger]\nname = "a"\n', 1, None, "'trigger' must be an array of tables: write [[trigger]]"),
    ('[[trigger]]\nname = "a"\nversion = 1\nwhen = "buys_60s > 3 and dev_sold_pct"\n', 4, "a",
     "'and' needs true/false on both sides, got a number in 'when' at column 14"),
    ('[[trigger]]\nname = "a"\nversion = 1\nwhen = "buys_60s >"\n', 4, "a",
     "expected a number or a feature after '>', got the end of the expression in 'when' at column 11"),
    ('[[trigger]]\nname = "a"\nversion = 1\nwhen = "buys_60s"\n', 4, "a", "the expression must be true/false"),
    ('[[trigger]]\nname = "a"\nversion = 1\nwhen = "buys_60s > $n"\n', 4, "a", "unbound parameter '$n'"),
    ('[[trigger]]\nname = "a"\nversion = 1\ndescription = """\nx = 1\n"""\nwhen = """\nbuys_60s >\n"""\n',
     7, "a", "expected a number or a feature"),
    ('[[trigger]]\nname = "a"\nversion = 1\nwhen = "buys_60s > 3"\nnotes.extra = 1\n', 5, "a",
     "unknown key 'notes'"),
    ('[[trigger]]\nname = "a"\nversion = 1\nwhen = "buys_60s > 3"\n[trigger.filters]\nx = 1\n', 5, "a",
     "unknown key 'filters'"),
])
def test_errors_name_line_and_trigger(text, line, trigger, problem):
    e = _error(text)
    assert (e.line, e.trigger) == (line, trigger), str(e)
    assert problem in e.problem, str(e)
    prefix = f"triggers.toml:{line}: trigger '{trigger}': " if trigger else f"triggers.toml:{line}: "
    assert str(e).startswith(prefix)


@pytest.mark.parametrize("text, line", [
    ('[[trigger]]\nname = "a"\nversion = 1\nwhen = "buys_60s > 3\n', 4),
    ('[defaults]\ncooldown = 5\ncooldown = 6\n', 3),
    ('[[trigger]]\nname = "a"\nversion = 1\nwhen = buys_60s > 3\n', 4),
    ('[[trigger]\n', 1),
])
def test_toml_syntax_errors_give_their_line(text, line):
    e = _error(text)
    assert e.line == line and e.trigger is None
    assert str(e).startswith(f"triggers.toml:{line}: TOML syntax: ")


def test_every_problem_is_kept_first_by_line_reported():
    text = (TRIGGER.format(name="a") + 'when2 = "x"\n' + TRIGGER.format(name="b") + 'cooldown = "soon"\n'
            + TRIGGER.format(name="a"))
    e = _error(text)
    assert [(p.line, p.trigger) for p in e.problems] == [(5, "a"), (10, "b")]
    assert (e.line, e.trigger) == (5, "a")
    text = TRIGGER.format(name="a").replace("> 3", "> x") + TRIGGER.format(name="a")
    assert [p.line for p in _error(text).problems] == [4, 6]  # unknown feature, then duplicate


@pytest.mark.parametrize("value, seconds", [
    ("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("0s", 0), ("600", 600),
    (45, 45), (45.0, 45), (0, 0),
])
def test_durations(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["10 minutes", "", "10M", "-5s", "5 s", "m", "1.5m", -1, 1.5, True, None])
def test_bad_durations(value):
    with pytest.raises(ValueError):
        parse_duration(value)


def test_unreadable_and_non_utf8_files(tmp_path):
    with pytest.raises(TriggerFileError, match="cannot read it"):
        load_triggers(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'# ok\n[[trigger]]\nname = "\xff"\n')
    with pytest.raises(TriggerFileError) as e:
        load_triggers(bad)
    assert e.value.line == 3 and "UTF-8" in e.value.problem


def test_version_hash_follows_the_content():
    a = parse_triggers(VALID)
    assert parse_triggers(VALID).version_hash == a.version_hash
    assert parse_triggers(VALID + "# a comment\n").version_hash != a.version_hash
    assert a.version_hash == hashlib.sha256(VALID.encode()).hexdigest()


def test_registry_keeps_the_old_set_on_a_bad_reload_and_swaps_on_a_good_one(tmp_path):
    path = tmp_path / "triggers.toml"
    path.write_text(VALID)
    reg = TriggerRegistry(path)
    first = reg.current
    assert len(first) == 3

    assert reg.reload() == (True, f"{path}: unchanged (version {first.version_hash[:12]})")
    assert reg.current is first

    path.write_text(VALID.replace("unique_buyers_60s >= 25", "uniq_buyers_60s >= 25"))
    ok, message = reg.reload()
    assert not ok
    assert message.startswith(f"{path}:14: trigger 'buyer_burst': unknown feature 'uniq_buyers_60s'")
    assert "keeping the 3 triggers in force" in message
    assert reg.current is first

    path.write_text(VALID.replace(">= 25", ">= 40"))
    ok, message = reg.reload()
    assert ok and "loaded 3 triggers (2 enabled)" in message
    assert reg.current is not first
    assert reg.current.get("buyer_burst").when.startswith("unique_buyers_60s >= 40")

    path.unlink()
    ok, message = reg.reload()
    assert not ok and "cannot read it" in message and reg.current.get("buyer_burst") is not None


def test_registry_needs_a_valid_file_to_start(tmp_path):
    path = tmp_path / "triggers.toml"
    path.write_text("[[trigger]]\n")
    with pytest.raises(TriggerFileError):
        TriggerRegistry(path)


def test_registry_reloads_from_many_threads(tmp_path):
    path = tmp_path / "triggers.toml"
    path.write_text(VALID)
    reg = TriggerRegistry(path)
    texts = [VALID.replace(">= 25", f">= {n}") for n in range(20)]
    results = []

    def worker(text: str) -> None:
        results.append(reg.reload())
        assert len(reg.current) == 3

    path.write_text(texts[-1])
    threads = [threading.Thread(target=worker, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(ok for ok, _ in results)
    assert reg.current.text == texts[-1]


def test_default_path_is_the_repository_root():
    assert DEFAULT_TRIGGERS == Path(__file__).resolve().parents[2] / "triggers.toml"


def test_the_shipped_trigger_file_is_valid():
    if not DEFAULT_TRIGGERS.exists():
        pytest.skip("no triggers.toml at the repository root")
    ts = load_triggers(DEFAULT_TRIGGERS)
    assert len(ts.enabled) >= 1
