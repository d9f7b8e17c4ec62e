"""The trigger file: one TOML file read by the runner, the backtest, the notebooks and
the dashboard editor alike.

The file is validated whole on load (pydantic, unknown keys are errors, every ``when``
compiled against the feature catalogue) so that a mistake is caught before anything
runs, and reported as ``file:line: trigger 'name': problem``. tomllib does not keep
positions, so the line of a semantic error is found again in the raw text: the n-th
``[[trigger]]`` block, then the offending key inside it (inside multi-line strings this
is approximate, and falls back to the block's header).

Resolution rules, written once here so every consumer agrees: a trigger's own
``cooldown``/``channels``/``programs``/``mcap_floor_sol`` override ``[defaults]``; a
floor of 0 (or none) means no floor; an empty program list means any program;
``once = true`` means once per mint (``cooldown_s`` is then ``None``) and may not be
combined with a ``cooldown`` of its own. Channel names are not checked here: channels
are configured elsewhere.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import threading
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from .catalogue import CATALOGUE, FeatureSpec
from .expr import Expr, ExprError, compile_expr

DEFAULT_TRIGGERS = Path(__file__).resolve().parents[2] / "triggers.toml"
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_DURATION_HELP = 'write e.g. "30s", "10m", "2h", "1d", "1h30m" or a number of seconds'


def parse_duration(value: object) -> int:
    """Whole seconds from ``"30s"``/``"10m"``/``"2h"``/``"1d"`` (combinable) or a number."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; {_DURATION_HELP}")
    if isinstance(value, int | float):
        if value < 0 or value != int(value):
            raise ValueError(f"{value!r} is not a whole number of seconds >= 0")
        return int(value)
    if isinstance(value, str):
        if value.isdigit():
            return int(value)
        m = _DURATION.fullmatch(value)
        if value and m:
            d, h, mi, s = (int(g or 0) for g in m.groups())
            return ((d * 24 + h) * 60 + mi) * 60 + s
    raise ValueError(f"{value!r} is not a duration; {_DURATION_HELP}")


Duration = Annotated[int, BeforeValidator(parse_duration)]
Floor = Annotated[float, Field(ge=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DefaultsSection(_Section):
    """``[defaults]``: what a trigger gets for the keys it leaves out."""

    mcap_floor_sol: Floor | None = None
    cooldown: Duration = 600
    channels: list[str] = ["console"]
    programs: list[str] = []


class TriggerSection(_Section):
    """One ``[[trigger]]`` table as written (before defaults are applied)."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
    version: Annotated[int, Field(ge=1)]
    description: str = ""
    when: str
    cooldown: Duration | None = None
    once: bool = False
    channels: list[str] | None = None
    mcap_floor_sol: Floor | None = None
    programs: list[str] | None = None
    severity: Literal["info", "warning"] = "info"
    enabled: bool = True


class TriggerFile(_Section):
    defaults: DefaultsSection = DefaultsSection()
    trigger: list[TriggerSection] = []


@dataclass(frozen=True, slots=True)
class TriggerConfig:
    """A trigger ready to run: defaults applied, ``when`` compiled.

    ``condition`` is ``when`` and the market-cap floor as one expression (for SQL
    sweeps); ``features`` is what the engine must compute for it (``mcap_sol``
    included when a floor applies).
    """

    name: str
    version: int
    description: str
    when: str
    expr: Expr
    condition: Expr
    features: frozenset[str]
    cooldown_s: int | None  # None: once per mint
    once: bool
    channels: tuple[str, ...]
    mcap_floor_sol: float | None
    programs: frozenset[str]  # empty: any program
    severity: str
    enabled: bool
    line: int  # of the [[trigger]] header


@dataclass(frozen=True, slots=True)
class TriggerSet:
    """A validated trigger file; ``version_hash`` (sha256 of the content) names the config in force."""

    triggers: tuple[TriggerConfig, ...]
    version_hash: str
    source: str
    text: str

    def __iter__(self) -> Iterator[TriggerConfig]:
        return iter(self.triggers)

    def __len__(self) -> int:
        return len(self.triggers)

    def get(self, name: str) -> TriggerConfig | None:
        return next((t for t in self.triggers if t.name == name), None)

    @property
    def enabled(self) -> tuple[TriggerConfig, ...]:
        return tuple(t for t in self.triggers if t.enabled)

    @property
    def features(self) -> frozenset[str]:
        """Every feature the enabled triggers read: what the engine has to compute."""
        return frozenset().union(*(t.features for t in self.enabled))


class TriggerFileError(ValueError):
    """An invalid trigger file: ``source:line: trigger 'name': problem``.

    ``problems`` lists every problem found (this one first); the first by line is the
    one reported.
    """

    def __init__(self, source: str, line: int | None, trigger: str | None, problem: str,
                 problems: list[TriggerFileError] | None = None) -> None:
        self.source, self.line, self.trigger, self.problem = source, line, trigger, problem
        self.problems = problems or [self]
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        who = f" trigger '{self.trigger}':" if self.trigger else ""
        return f"{where}:{who} {self.problem}"

    def __reduce__(self):
        return TriggerFileError, (self.source, self.line, self.trigger, self.problem)


# -- finding lines in the raw text ------------------------------------------------------
_HEADER = re.compile(r"""\s*(\[\[?)\s*([\w.\-"' ]+?)\s*\]\]?\s*(?:#.*)?$""")
_KEY = re.compile(r"""\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*[.=]""")


class _Locator:
    """Lines of tables and keys in a TOML text, for pointing at a problem."""

    def __init__(self, text: str) -> None:
        self.sections: list[tuple[int, str, bool]] = [(1, "", False)]  # (line, name, is [[array]])
        self.keys: list[tuple[int, str, int]] = []  # (line, key, section index)
        closing = None
        for no, line in enumerate(text.splitlines(), 1):
            if closing:  # inside a multi-line string
                if line.count(closing) % 2:
                    closing = None
                continue
            if h := _HEADER.match(line):
                name = re.sub(r"\s*\.\s*", ".", h.group(2)).replace('"', "").replace("'", "")
                self.sections.append((no, name, h.group(1) == "[["))
            elif k := _KEY.match(line):
                self.keys.append((no, k.group(1).strip("\"'"), len(self.sections) - 1))
                for q in ('"""', "'''"):
                    if line.count(q) % 2:
                        closing = q
                        break

    def block(self, table: str, index: int | None) -> list[int]:
        """Section indexes of ``[table]`` (or the index-th ``[[table]]``) and its sub-tables."""
        starts = [i for i, (_, name, arr) in enumerate(self.sections) if name == table and arr == (index is not None)]
        if index is not None:
            starts = starts[index:index + 1]
        if not starts:
            return []
        out = [starts[0]]
        for i in range(starts[0] + 1, len(self.sections)):
            if not self.sections[i][1].startswith(table + "."):
                break
            out.append(i)
        return out

    def line(self, table: str | None, index: int | None, key: str | None) -> int | None:
        block = [0] if table is None else self.block(table, index)
        if not block:  # e.g. written as an inline table: point at its key in the root
            return self.line(None, None, table) if table else None
        if key is not None:
            for no, k, sec in self.keys:
                if k == key and sec in block:
                    return no
            prefix = f"{table}." if table else ""
            for no, name, _ in self.sections:
                if name == prefix + key or name.startswith(prefix + key + "."):
                    return no
        return self.sections[block[0]][0] if table else None


# -- loading ----------------------------------------------------------------------------
def _problem(err: Mapping, fields: Mapping, table: str = "") -> tuple[str | None, str]:
    """(key, problem text) from one pydantic error, worded for someone editing the file."""
    loc = [p for p in err["loc"] if isinstance(p, str)]
    key = loc[-1] if loc else None
    full = ".".join([table, *loc] if table else loc)
    full += "".join(f"[{p}]" for p in err["loc"][len(loc):] if isinstance(p, int))
    kind, got = err["type"], err.get("input")
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(key, list(fields), n=1)
        hint = f"did you mean '{close[0]}'?" if close else "known keys: " + ", ".join(fields)
        return key, f"unknown key '{key}'{f' in [{table}]' if table else ''} ({hint})"
    if kind == "missing":
        return key, f"missing required key '{key}'"
    if kind == "list_type" and loc == ["trigger"]:
        return key, "'trigger' must be an array of tables: write [[trigger]] (two brackets)"
    if kind == "value_error":
        return key, f"'{full}': {err['ctx']['error']}"
    if kind == "string_pattern_mismatch":
        return key, f"'{full}' may hold only a-z, 0-9 and '_', got {got!r}"
    msg = err["msg"][0].lower() + err["msg"][1:]
    return key, f"'{full}': {msg}, got {got!r}"


def parse_triggers(text: str, source: str = "<string>",
                   catalogue: Mapping[str, FeatureSpec] = CATALOGUE) -> TriggerSet:
    """Validate and resolve a trigger file's text; raise ``TriggerFileError`` if it is invalid."""
    source = str(source)
    try:
        data = tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = re.search(r"\(at line (\d+), column \d+\)|\(at end of document\)", msg)
        line = int(m.group(1)) if m and m.group(1) else (text.count("\n") + 1 if m else None)
        problem = msg[:m.start()].rstrip() if m else msg
        raise TriggerFileError(source, line, None, f"TOML syntax: {problem}") from None
    loc = _Locator(text)
    raw = data.get("trigger") if isinstance(data.get("trigger"), list) else []

    def name_of(i: int) -> str:
        t = raw[i] if i < len(raw) else None
        n = t.get("name") if isinstance(t, dict) else None
        return n if isinstance(n, str) else f"#{i + 1}"

    try:
        parsed = TriggerFile.model_validate(data)
    except ValidationError as e:
        errors = []
        for err in e.errors():
            path = err["loc"]
            if path[0] == "trigger" and len(path) > 1 and isinstance(path[1], int):
                key, problem = _problem({**err, "loc": path[2:]}, TriggerSection.model_fields)
                errors.append(TriggerFileError(source, loc.line("trigger", path[1], key), name_of(path[1]), problem))
            elif path[0] == "defaults" and len(path) > 1:
                key, problem = _problem({**err, "loc": path[1:]}, DefaultsSection.model_fields, "defaults")
                errors.append(TriggerFileError(source, loc.line("defaults", None, key), None, problem))
            else:
                key, problem = _problem(err, TriggerFile.model_fields)
                errors.append(TriggerFileError(source, loc.line(None, None, key), None, problem))
        _raise(errors)
    triggers, errors, seen = [], [], {}
    for i, t in enumerate(parsed.trigger):
        def fail(key: str, problem: str, i: int = i, t: TriggerSection = t) -> None:
            errors.append(TriggerFileError(source, loc.line("trigger", i, key), t.name, problem))

        if t.name in seen:
            fail("name", f"duplicate name '{t.name}' (also at line {seen[t.name]}); names must be unique")
        seen.setdefault(t.name, loc.line("trigger", i, "name"))
        if t.once and t.cooldown is not None:
            fail("once", "'once = true' and 'cooldown' are both set; keep one")
        try:
            triggers.append(_resolve(t, parsed.defaults, catalogue, loc.line("trigger", i, None) or 1))
        except ExprError as e:
            fail("when", e.where("in 'when'"))
    _raise(errors)
    return TriggerSet(tuple(triggers), hashlib.sha256(text.encode()).hexdigest(), source, text)


def _raise(errors: list[TriggerFileError]) -> None:
    if errors:
        errors.sort(key=lambda e: e.line or 0)
        first = errors[0]
        raise TriggerFileError(first.source, first.line, first.trigger, first.problem, errors)


def _resolve(t: TriggerSection, d: DefaultsSection, catalogue: Mapping[str, FeatureSpec],
             line: int) -> TriggerConfig:
    expr = compile_expr(t.when, catalogue)
    floor = t.mcap_floor_sol if "mcap_floor_sol" in t.model_fields_set else d.mcap_floor_sol
    floor = floor or None
    condition = expr
    if floor is not None:
        condition = compile_expr(f"({t.when}) and mcap_sol >= $mcap_floor_sol", catalogue,
                                 {"mcap_floor_sol": floor})
    return TriggerConfig(
        name=t.name, version=t.version, description=t.description, when=t.when, expr=expr,
        condition=condition, features=condition.features,
        cooldown_s=None if t.once else (t.cooldown if t.cooldown is not None else d.cooldown),
        once=t.once, channels=tuple(t.channels if t.channels is not None else d.channels),
        mcap_floor_sol=floor, programs=frozenset(t.programs if t.programs is not None else d.programs),
        severity=t.severity, enabled=t.enabled, line=line)


def load_triggers(path: Path | str = DEFAULT_TRIGGERS,
                  catalogue: Mapping[str, FeatureSpec] = CATALOGUE) -> TriggerSet:
    """Read and validate a trigger file; raise ``TriggerFileError`` naming the line on any problem."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise TriggerFileError(str(path), None, None,
                               f"cannot read it: {e.strerror or e} (pass --triggers PATH)") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TriggerFileError(str(path), data.count(b"\n", 0, e.start) + 1, None,
                               "not UTF-8 text; save the file as UTF-8") from None
    return parse_triggers(text, str(path), catalogue)


class TriggerRegistry:
    """The trigger set in force, swapped whole on a valid reload and kept on an invalid one."""

    def __init__(self, path: Path | str = DEFAULT_TRIGGERS,
                 catalogue: Mapping[str, FeatureSpec] = CATALOGUE) -> None:
        self.path = Path(path)
        self._catalogue = catalogue
        self._lock = threading.Lock()
        self._current = load_triggers(self.path, catalogue)  # nothing in force yet: an error raises

    @property
    def current(self) -> TriggerSet:
        return self._current

    def reload(self) -> tuple[bool, str]:
        """Load the file again: ``(True, what changed)`` or ``(False, the error)``, old set kept."""
        with self._lock:  # one reload at a time, so an older read never replaces a newer one
            old = self._current
            try:
                new = load_triggers(self.path, self._catalogue)
            except TriggerFileError as e:
                return False, f"{e}; keeping the {len(old)} triggers in force (version {old.version_hash[:12]})"
            if new.version_hash == old.version_hash:
                return True, f"{self.path}: unchanged (version {old.version_hash[:12]})"
            self._current = new
        return True, (f"{self.path}: loaded {len(new)} triggers ({len(new.enabled)} enabled), "
                      f"version {new.version_hash[:12]}")
