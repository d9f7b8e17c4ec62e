"""Rendering for Discord and Telegram, with hostile token names and symbols."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from pocketwatcher.alerting.render import (
    AlertView,
    discord_payload,
    dumps,
    embed_size,
    format_value,
    plain_text,
    telegram_html,
    utf16_len,
)

MINT = "7GCihgDB8fe6KNjn2MYtkzZcRjQy3t9GHdC8uHYmW2hr"
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"
HOSTILE = [
    ("<b>bold</b> & <script>alert(1)</script>", "<i>"),
    ("*bold* _it_ __u__ ~~s~~ `code` ||spoiler|| > quote # head", "*_`"),
    ("[click](https://evil.example) @everyone @here <@123456> <#987>", "@here"),
    ("A" * 10_000, "B" * 500),
    (("\U0001f680\U0001f438" + FAMILY + "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f")
     * 300, "\U0001f680" * 50),
    ("\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645", "\u05e9\u05dc\u05d5\u05dd"),
    ("\u202eevil\u202c spoof \u2066x\u2069", "\u202eKCUF"),
    ("zero\u200bwidth\ufeff soft\u00adhyphen", "Z\u200bW"),
    ("line\nbreak\ttab\x00nul\x1b[31mansi", "s\ny"),
    ("lone \ud800 surrogate", "\udfff"),
    ("&amp; &lt;b&gt; &#60;", "&"),
]


def view(name=None, symbol=None, **kw) -> AlertView:
    base = dict(id="0123456789abcdef0123456789abcdef", trigger="buyer_burst", version=3, mint=MINT,
                signature="5sig", slot=321, block_time=1_700_000_000, severity="info",
                features={"mcap_sol": 123.4, "price_sol": 2.8e-08, "age_s": 302, "unique_buyers_60s": 14,
                          "net_flow_sol_60s": 3.25, "top_buyer_share_60s": 0.31, "price_change_pct_5m": 42.0,
                          "dev_sold": False},
                token_name=name, token_symbol=symbol)
    base.update(kw)
    return AlertView(**base)


class _TelegramHTML(HTMLParser):
    """Checks the subset of HTML Telegram accepts: b, i, code, pre, a[href]; balanced."""

    ALLOWED = {"b", "i", "code", "pre", "a"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack, self.text, self.hrefs = [], [], []

    def handle_starttag(self, tag, attrs):
        assert tag in self.ALLOWED, tag
        if tag == "a":
            self.hrefs.append(dict(attrs)["href"])
        self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack.pop() == tag, tag

    def handle_data(self, data):
        self.text.append(data)


def parse_telegram(html: str) -> _TelegramHTML:
    assert re.search(r"&(?!(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);)", html) is None, "bare & in HTML"
    p = _TelegramHTML()
    p.feed(html)
    p.close()
    assert not p.stack
    return p


def _discord_text(payload: dict) -> str:
    e = payload["embeds"][0]
    return "\n".join([e["title"], e["description"], e["footer"]["text"]]
                     + [f["name"] + "\n" + f["value"] for f in e["fields"]])


@pytest.mark.parametrize(("name", "symbol"), HOSTILE)
def test_discord_embed_is_safe_and_within_limits(name, symbol):
    payload = discord_payload(view(name, symbol))
    json.loads(dumps(payload))  # serialisable: no lone surrogates, no NaN
    e = payload["embeds"][0]
    assert utf16_len(e["title"]) <= 256 and utf16_len(e["description"]) <= 4096
    assert len(e["fields"]) <= 25 and embed_size(e) <= 6000
    assert all(utf16_len(f["name"]) <= 256 and utf16_len(f["value"]) <= 1024 for f in e["fields"])
    assert payload["allowed_mentions"] == {"parse": []}
    assert e["footer"]["text"] == "alert 0123456789abcdef0123456789abcdef"
    text = _discord_text(payload)
    for bad in ("\u202e", "\u202c", "\u2066", "\u200b", "\ufeff", "\x00", "\x1b", "\ud800", "\udfff"):
        assert bad not in text
    m = re.fullmatch(r".*? \u00b7 (.*) \(\$(.*)\)", e["title"])  # "<emoji> trigger · name ($symbol)"
    shown = re.sub(r"\\.", "", m.group(1) + m.group(2))  # what is left once Discord consumes the escapes
    for meta in ("*", "`", "~", "|", "[", "]", "(", ")", "<", "@", ">", "#", "_"):
        assert meta not in shown, (meta, e["title"])
    if "@everyone" in name:
        assert "[click](" not in text and "\\@everyone" in text
    links = next(f["value"] for f in e["fields"] if f["name"] == "Links")
    assert f"(https://solscan.io/token/{MINT})" in links and f"(https://pump.fun/coin/{MINT})" in links
    assert f"(https://dexscreener.com/solana/{MINT})" in links
    assert e["url"] == f"https://pump.fun/coin/{MINT}" and MINT in e["description"]


@pytest.mark.parametrize(("name", "symbol"), HOSTILE)
def test_telegram_html_is_valid_escaped_and_within_4096(name, symbol):
    v = view(name, symbol)
    html = telegram_html(v)
    assert utf16_len(html) <= 4096
    p = parse_telegram(html)
    shown = "".join(p.text)
    assert "alert 0123456789abcdef0123456789abcdef" in shown and MINT in shown
    assert p.hrefs[:3] == [f"https://solscan.io/token/{MINT}", f"https://pump.fun/coin/{MINT}",
                           f"https://dexscreener.com/solana/{MINT}"]
    for bad in ("\u202e", "\u200b", "\x00", "\x1b", "\ud800"):
        assert bad not in html
    shown_name, shown_symbol = v.names()
    assert shown_name in shown and shown_symbol in shown  # escaped, not dropped
    plain = plain_text(v)
    assert utf16_len(plain) <= 4096 and plain.rstrip().endswith("alert 0123456789abcdef0123456789abcdef")
    assert shown_name in plain


def test_emoji_survive_and_count_as_utf16():
    v = view("\U0001f680 Moon " + FAMILY, "\U0001f438")
    assert "\U0001f680 Moon " + FAMILY in discord_payload(v)["embeds"][0]["title"]
    assert FAMILY in telegram_html(v)
    long = view("\U0001f680" * 2000)  # 2,000 code points, 4,000 UTF-16 units
    name, _ = long.names()
    assert utf16_len(name) <= 64 and name.endswith("\u2026")


def test_right_to_left_names_are_isolated_and_overrides_removed():
    v = view("\u0645\u0631\u062d\u0628\u0627\u202e", "\u202eABC")
    name, symbol = v.names()
    assert name == "\u2068\u0645\u0631\u062d\u0628\u0627\u2069"  # first-strong isolate .. pop isolate
    assert symbol == "ABC"
    assert "\u2068\u0645\u0631\u062d\u0628\u0627\u2069" in telegram_html(v)


def test_long_feature_lists_are_shortened_with_a_count():
    features = {f"feature_{i:03d}": i * 1.5 for i in range(600)}
    v = view("N", "S", features=features)
    e = discord_payload(v)["embeds"][0]
    assert embed_size(e) <= 6000 and "more" in e["description"]
    html = telegram_html(v)
    assert utf16_len(html) <= 4096 and re.search(r"\u2026 and \d+ more", html)
    parse_telegram(html)
    assert html.rstrip().endswith("alert <code>0123456789abcdef0123456789abcdef</code>")


def test_values_are_shown_with_their_units():
    assert format_value("mcap_sol", 123.4) == "123 SOL"
    assert format_value("price_sol", 2.8e-08) == "0.0000000280 SOL"
    assert format_value("age_s", 302) == "5m 2s"
    assert format_value("top_buyer_share_60s", 0.31) == "31.0%"
    assert format_value("price_change_pct_5m", 42.0) == "+42.0%"
    assert format_value("unique_buyers_60s", 14) == "14"
    assert format_value("dev_sold", True) == "yes"
    assert format_value("mcap_sol", float("nan")) == "n/a"
    html = telegram_html(view("N", "S"))
    assert "Market cap: <b>123 SOL</b>" in html and "Age: <b>5m 2s</b>" in html
    assert "unique_buyers_60s: <b>14</b>" in html  # why it fired


def test_no_name_falls_back_to_the_short_mint_and_odd_mints_are_escaped():
    e = discord_payload(view())["embeds"][0]
    assert "7GCi\u2026W2hr" in e["title"]
    v = view(mint="<b>not-a-mint</b> & /../x")
    html = telegram_html(v)
    parse_telegram(html)
    assert "https://pump.fun/coin/%3Cb%3Enot-a-mint%3C%2Fb%3E%20%26%20%2F..%2Fx" in html
