"""Turn an alert into what each channel sends: a Discord embed, Telegram HTML (and its
plain-text fallback), a console line, a JSON document.

Token names and symbols are chosen by whoever launched the token, so they are hostile
input: they may carry HTML or Markdown, masked links, ``@everyone``, bidi overrides that
reverse the mint printed after them, zero-width characters, lone surrogates, or run to
thousands of characters. ``clean`` makes any of them safe to show: control and format
characters go (emoji joiners stay), right-to-left text is wrapped in a bidi isolate so it
cannot reorder what follows, and lengths are capped. Each format then escapes for its
own markup. Limits are counted in UTF-16 code units, as Discord and Telegram count them,
so an emoji-heavy name cannot slip past a limit counted in code points.
"""

from __future__ import annotations

import html
import json
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

from ..triggers.catalogue import CATALOGUE

NAME_MAX, SYMBOL_MAX = 64, 16
TELEGRAM_MAX = 4096
EMBED_LIMITS = {"title": 256, "description": 4096, "fields": 25, "field_name": 256, "field_value": 1024,
                "footer": 2048, "total": 6000}
HEADLINE = ("mcap_sol", "price_sol", "age_s")
_BIDI_CONTROLS = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_KEEP_FORMAT = {"\u200d"} | {chr(c) for c in range(0xE0020, 0xE0080)}  # emoji ZWJ and flag tags
_BASE58 = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{16,88}$")
_MD_SPECIAL = re.compile(r"([\\`*_~|>#\[\]()<:@\-])")
EMOJI = {"info": "\U0001f514", "warning": "\u26a0\ufe0f"}
COLOR = {"info": 0x5865F2, "warning": 0xED4245}


def utf16_len(s: str) -> int:
    return len(s) + sum(1 for ch in s if ord(ch) > 0xFFFF)


def clip(s: str, limit: int, ellipsis: str = "\u2026") -> str:
    """``s`` cut to at most ``limit`` UTF-16 units (ellipsis included), never mid-character."""
    if utf16_len(s) <= limit:
        return s
    budget, out = limit - utf16_len(ellipsis), []
    for ch in s:
        w = 2 if ord(ch) > 0xFFFF else 1
        if budget < w:
            break
        out.append(ch)
        budget -= w
    return "".join(out).rstrip() + ellipsis


def clean(value: object, limit: int) -> str:
    """Hostile text made safe to show anywhere (before format-specific escaping)."""
    s = str(value).encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    out = []
    for ch in s:
        if ch in _BIDI_CONTROLS:
            continue
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Zl", "Zp") or ch.isspace():
            out.append(" ")
        elif cat == "Cf" and ch not in _KEEP_FORMAT:
            continue
        else:
            out.append(ch)
    s = clip(re.sub(r"\s+", " ", "".join(out)).strip(), limit)
    if any(unicodedata.bidirectional(ch) in ("R", "AL") for ch in s):
        s = "\u2068" + s + "\u2069"  # first-strong isolate: cannot reorder the text around it
    return s


def json_safe(obj: object) -> object:
    """Floats that JSON cannot carry become None; lone surrogates become U+FFFD."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, str):
        return obj.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(obj, Mapping):
        return {str(json_safe(k)): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


def dumps(obj: object) -> bytes:
    return json.dumps(json_safe(obj), ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class AlertView:
    """An alert as the channels see it: the ``alerts`` row (or ``Alert.to_dict()`` + token info)."""

    id: str
    trigger: str
    version: int
    mint: str
    signature: str = ""
    slot: int = 0
    block_time: int = 0
    severity: str = "info"
    features: dict = field(default_factory=dict)
    token_name: str | None = None
    token_symbol: str | None = None
    ix: str = ""

    @classmethod
    def from_record(cls, r: Mapping) -> AlertView:
        features = r.get("features") or {}
        if isinstance(features, str | bytes):
            features = json.loads(features)
        return cls(id=r["id"], trigger=r["trigger"], version=r.get("trigger_version", r.get("version", 1)),
                   mint=r["mint"], signature=r.get("signature") or "", slot=r.get("slot") or 0,
                   block_time=r.get("block_time") or 0, severity=r.get("severity") or "info",
                   features=dict(features), token_name=r.get("token_name"), token_symbol=r.get("token_symbol"),
                   ix=r.get("ix") or "")

    # -- shared pieces -------------------------------------------------------------------
    @property
    def safe_mint(self) -> str:
        return self.mint if _BASE58.match(self.mint) else clean(self.mint, 96)

    def links(self) -> dict[str, str]:
        m = quote(self.mint, safe="")
        out = {"Solscan": f"https://solscan.io/token/{m}", "pump.fun": f"https://pump.fun/coin/{m}",
               "DexScreener": f"https://dexscreener.com/solana/{m}"}
        if self.signature:
            out["tx"] = f"https://solscan.io/tx/{quote(self.signature, safe='')}"
        return out

    def names(self) -> tuple[str | None, str | None]:
        name = clean(self.token_name, NAME_MAX) if self.token_name else None
        symbol = clean(self.token_symbol, SYMBOL_MAX) if self.token_symbol else None
        return name or None, symbol or None

    def headline(self) -> list[tuple[str, str]]:
        labels = {"mcap_sol": "Market cap", "price_sol": "Price", "age_s": "Age"}
        return [(labels[k], format_value(k, self.features[k])) for k in HEADLINE if k in self.features]

    def why(self) -> list[tuple[str, str]]:
        return [(clean(k, 64), format_value(k, v)) for k, v in self.features.items() if k not in HEADLINE]

    def when(self) -> str:
        return datetime.fromtimestamp(self.block_time, UTC).isoformat() if self.block_time else ""

    def to_json(self) -> dict:
        return {"id": self.id, "trigger": self.trigger, "version": self.version, "mint": self.mint,
                "signature": self.signature, "ix": self.ix, "slot": self.slot, "block_time": self.block_time,
                "severity": self.severity, "features": self.features, "token_name": self.token_name,
                "token_symbol": self.token_symbol, "links": self.links(), "text": plain_text(self)}


# -- values ------------------------------------------------------------------------------
def _num(v: float, digits: int = 3) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:,.2f}"
    places = min(18, digits - 1 - math.floor(math.log10(abs(v))))
    return f"{v:.{places}f}"


def _duration(s: float) -> str:
    s = int(s)
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m, sec = divmod(rem, 60)
    parts = [(d, "d"), (h, "h"), (m, "m"), (sec, "s")]
    shown = [f"{n}{u}" for n, u in parts if n][:2]
    return " ".join(shown) or "0s"


def format_value(name: str, value: object) -> str:
    """A feature value with its catalogue unit: ``123 SOL``, ``+42.0%``, ``5m 2s``, ``yes``."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, int | float):
        return clean(value, 100)
    if isinstance(value, float) and not math.isfinite(value):
        return "n/a"
    spec = CATALOGUE.get(name)
    unit = spec.unit if spec else ""
    if unit == "SOL":
        return f"{_num(value)} SOL"
    if unit == "SOL/token":
        return f"{_num(value)} SOL"
    if unit == "s":
        return _duration(value)
    if unit == "%":
        return f"{value:+.1f}%"
    if unit.startswith("fraction"):
        return f"{value * 100:.1f}%"
    if isinstance(value, int) or unit in ("count", "wallets", "clusters"):
        return f"{value:,.0f}"
    return f"{value:.4g}"


# -- Discord -----------------------------------------------------------------------------
def md(s: str) -> str:
    """Escape Discord markdown (and autolinks, mentions, masked links) in shown text."""
    return _MD_SPECIAL.sub(r"\\\1", s)


def _title_text(v: AlertView, esc) -> str:
    name, symbol = v.names()
    if name and symbol:
        who = f"{esc(name)} (${esc(symbol)})"
    elif name or symbol:
        who = esc(name) if name else f"${esc(symbol)}"
    else:
        who = esc(v.safe_mint[:4] + "\u2026" + v.safe_mint[-4:])
    return who


def discord_payload(v: AlertView, username: str | None = None, avatar_url: str | None = None) -> dict:
    lim = EMBED_LIMITS
    title = clip(f"{EMOJI.get(v.severity, '')} {md(v.trigger)} \u00b7 {_title_text(v, md)}".strip(), lim["title"])
    why = [f"\u2022 `{k.replace('`', '')}` **{md(val)}**" for k, val in v.why()]
    head = [f"**Why it fired** ({md(v.trigger)} v{v.version})"]
    tail = ["", f"Mint `{v.safe_mint.replace('`', '')}`"]
    fields = [{"name": k, "value": md(val), "inline": True} for k, val in v.headline()]
    fields.append({"name": "Links", "value": " \u00b7 ".join(f"[{k}]({u})" for k, u in v.links().items()),
                   "inline": False})
    if v.slot:
        fields.append({"name": "Slot", "value": str(v.slot), "inline": True})
    fields = [{"name": clip(f["name"], lim["field_name"]), "value": clip(f["value"], lim["field_value"]),
               "inline": f["inline"]} for f in fields[: lim["fields"]]]
    footer = clip(f"alert {v.id}", lim["footer"])
    fixed = utf16_len(title) + utf16_len(footer) + sum(utf16_len(f["name"]) + utf16_len(f["value"])
                                                        for f in fields)
    budget = min(lim["description"], lim["total"] - fixed)
    description = _fit_lines(head, why, tail, budget, sep="\n")
    embed = {"title": title, "url": v.links()["pump.fun"], "description": description, "color":
             COLOR.get(v.severity, COLOR["info"]), "fields": fields, "footer": {"text": footer}}
    if v.block_time:
        embed["timestamp"] = v.when()
    payload: dict = {"embeds": [embed], "allowed_mentions": {"parse": []}}
    if username:
        payload["username"] = clip(username, 80)
    if avatar_url:
        payload["avatar_url"] = avatar_url
    return payload


def embed_size(embed: dict) -> int:
    """Characters Discord counts toward the 6,000 total of an embed."""
    n = utf16_len(embed.get("title", "")) + utf16_len(embed.get("description", ""))
    n += utf16_len(embed.get("footer", {}).get("text", "")) + utf16_len(embed.get("author", {}).get("name", ""))
    return n + sum(utf16_len(f["name"]) + utf16_len(f["value"]) for f in embed.get("fields", []))


def _fit_lines(head: list[str], body: list[str], tail: list[str], budget: int, sep: str) -> str:
    """head + as many body lines as fit + tail, within ``budget`` UTF-16 units."""
    full = sep.join(head + body + tail)
    if utf16_len(full) <= budget:
        return full
    kept = list(body)
    while kept:
        kept.pop()
        more = f"\u2026 and {len(body) - len(kept)} more"
        text = sep.join(head + kept + [more] + tail)
        if utf16_len(text) <= budget:
            return text
    return clip(sep.join(head + tail), budget)


# -- Telegram ----------------------------------------------------------------------------
def _h(s: str) -> str:
    return html.escape(s, quote=False)


def _attr(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def telegram_html(v: AlertView) -> str:
    """``sendMessage`` text for ``parse_mode=HTML`` (tags b, code, a only), within 4,096."""
    head = [f"{EMOJI.get(v.severity, '')} <b>{_h(v.trigger)}</b> \u00b7 <b>{_title_text(v, _h)}</b>",
            f"<code>{_h(v.safe_mint)}</code>", "", f"<b>Why it fired</b> (v{v.version})"]
    why = [f"\u2022 {_h(k)}: <b>{_h(val)}</b>" for k, val in v.why()]
    stats = " \u00b7 ".join(f"{k}: <b>{_h(val)}</b>" for k, val in v.headline())
    links = " \u00b7 ".join(f'<a href="{_attr(u)}">{_h(k)}</a>' for k, u in v.links().items())
    tail = ["", *([stats] if stats else []), links, f"alert <code>{_h(v.id)}</code>"]
    return _fit_lines(head, why, tail, TELEGRAM_MAX, sep="\n")


def plain_text(v: AlertView) -> str:
    """The same message without markup: Telegram's fallback, the webhook's ``text``."""
    head = [f"{EMOJI.get(v.severity, '')} {v.trigger} \u00b7 {_title_text(v, str)}", v.safe_mint, "",
            f"Why it fired (v{v.version})"]
    why = [f"\u2022 {k}: {val}" for k, val in v.why()]
    stats = " \u00b7 ".join(f"{k}: {val}" for k, val in v.headline())
    links = "\n".join(f"{k}: {u}" for k, u in v.links().items())
    tail = ["", *([stats] if stats else []), links, f"alert {v.id}"]
    return _fit_lines(head, why, tail, TELEGRAM_MAX, sep="\n")


def console_line(v: AlertView) -> str:
    """One line per alert for a terminal or a log file."""
    stats = " ".join(f"{k.lower().replace(' ', '_')}={val}" for k, val in v.headline())
    why = ", ".join(f"{k}={val}" for k, val in v.why())
    return (f"{v.when() or '-'} {v.severity.upper()} {v.trigger} {_title_text(v, str)} mint={v.safe_mint} "
            f"{stats} why: {why} alert={v.id}").replace("  ", " ")
