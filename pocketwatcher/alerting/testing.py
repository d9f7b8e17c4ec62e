"""A local server that plays Discord webhooks, the Telegram Bot API and a JSON webhook, and
injects faults: for tests, the benchmark and trying a config without spamming a chat.

It listens on real sockets (127.0.0.1, any free port) so the channels run their real
HTTP code. Each request is recorded with the alert id it carries and the reply it got.
A reply is chosen from scripted queues (per route, then per service, then for any
request), then a ``policy`` function, then the service's normal answer:

    server.script("discord", Reply(502), Reply(429, {"retry_after": 0.3, "global": False}))
    server.script("telegram:-100", Reply(reset=True))
    server.policy = lambda req: Reply(503) if random.random() < 0.2 else None

A ``Reply`` may delay (beyond a client's timeout), reset the connection (RST, no
answer), or answer any status, headers and body.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_DISCORD = re.compile(r"/webhooks/(\d+)/[^/?]+")
_TELEGRAM = re.compile(r"/bot[^/]+/(\w+)")
_ALERT_IN_TEXT = re.compile(r"alert (?:<code>)?([A-Za-z0-9_.:-]+)")


@dataclass
class Reply:
    status: int = 200
    body: dict | str | None = None  # None: the service's normal answer
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    reset: bool = False


@dataclass
class Request:
    t: float  # time.monotonic() on arrival
    service: str  # discord | telegram | webhook
    route: str  # "discord:<webhook id>", "telegram:<chat id>", "webhook:<path>"
    path: str
    query: dict
    body: dict
    alert_id: str | None
    reply: Reply | None = None
    answered: bool = False
    answered_t: float = 0.0  # when the answer was written

    @property
    def ok(self) -> bool:
        return self.reply is not None and 200 <= self.reply.status < 300 and not self.reply.reset


class FakeChatServer:
    def __init__(self, policy: Callable[[Request], Reply | None] | None = None) -> None:
        self.policy = policy
        self.requests: list[Request] = []
        self.scripts: dict[str, deque[Reply]] = {}
        self.lock = threading.Lock()
        self.late_after = float("inf")  # replies delayed this long count as not delivered
        self._ids = 1000
        self._httpd: ThreadingHTTPServer | None = None

    # -- life -------------------------------------------------------------------------------
    def start(self) -> FakeChatServer:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        httpd.owner = self
        httpd.handle_error = lambda *a: None
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._httpd = httpd
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeChatServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def discord_url(self, webhook_id: str = "111", token: str = "discord-secret-token") -> str:
        return f"{self.url}/api/webhooks/{webhook_id}/{token}"

    # -- scripting and reading ----------------------------------------------------------------
    def script(self, key: str, *replies: Reply) -> None:
        """Queue replies for a route ("discord:111"), a service ("telegram") or any request ("*")."""
        with self.lock:
            self.scripts.setdefault(key, deque()).extend(replies)

    def delivered(self) -> Counter:
        """Alert id → how many times the service accepted it (2xx answered in time)."""
        with self.lock:
            return Counter(r.alert_id for r in self.requests if r.ok and r.reply.delay < self.late_after)

    def of(self, route_or_service: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if route_or_service in (r.route, r.service)]

    # -- serving ------------------------------------------------------------------------------
    def _receive(self, path: str, raw: bytes) -> tuple[Request, Reply]:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        parts = urlsplit(path)
        if m := _DISCORD.search(parts.path):
            service, route = "discord", f"discord:{m.group(1)}"
            footer = ((body.get("embeds") or [{}])[0].get("footer") or {}).get("text", "")
            alert = footer.split(" ", 1)[1] if footer.startswith("alert ") else None
        elif _TELEGRAM.search(parts.path):
            service, route = "telegram", f"telegram:{body.get('chat_id')}"
            m = _ALERT_IN_TEXT.search(body.get("text", ""))
            alert = m.group(1) if m else None
        else:
            service, route, alert = "webhook", f"webhook:{parts.path}", body.get("id")
        req = Request(time.monotonic(), service, route, parts.path, parse_qs(parts.query), body, alert)
        with self.lock:
            self.requests.append(req)
            reply = None
            for key in (route, service, "*"):
                q = self.scripts.get(key)
                if q:
                    reply = q.popleft()
                    break
        if reply is None and self.policy is not None:
            reply = self.policy(req)
        req.reply = reply or Reply()
        return req, req.reply

    def _normal(self, req: Request, reply: Reply) -> tuple[bytes, dict]:
        if reply.body is not None:
            body = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
            return body.encode(), {"Content-Type": "application/json"}
        with self.lock:
            self._ids += 1
            n = self._ids
        if reply.status >= 300:
            doc: dict = {"message": "error", "code": 0}
        elif req.service == "discord":
            doc = {"id": str(n), "type": 0, "channel_id": "1", "content": ""}
        elif req.service == "telegram":
            doc = {"ok": True, "result": {"message_id": n, "chat": {"id": req.body.get("chat_id")}}}
        else:
            doc = {"ok": True}
        return json.dumps(doc).encode(), {"Content-Type": "application/json"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # headers and body go out as two writes: without this, Nagle + delayed ACK add 40 ms each
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        owner: FakeChatServer = self.server.owner
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        req, reply = owner._receive(self.path, raw)
        if reply.delay:
            time.sleep(reply.delay)
        if reply.reset:
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            return
        body, headers = owner._normal(req, reply)
        try:
            self.send_response(reply.status)
            for k, v in {**headers, **reply.headers}.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            req.answered, req.answered_t = True, time.monotonic()
        except OSError:
            self.close_connection = True
