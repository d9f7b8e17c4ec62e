"""The parse process's stream reader (grpclib): the same updates and errors as the grpcio
``Subscription``, against the replay server over plaintext and TLS."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess

import pytest
from geyser_helpers import (
    PUMP,
    b58,
    check_errors_explained_and_token_hidden,
    check_stall_is_retryable,
    standard_capture,
)

from pocketwatcher.geyser.client import GeyserError, build_request
from pocketwatcher.geyser.h2read import h2_updates
from pocketwatcher.geyser.server import ReplayServer


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    return standard_capture(tmp_path_factory)


def collect(endpoint, request, token=None, n=None, **kw):
    async def go():
        out = []
        async for u in h2_updates(endpoint, token, request, **kw):
            out.append(u)
            if n is not None and len(out) >= n:
                break
        return out
    return asyncio.run(asyncio.wait_for(go(), 10))


def test_updates_without_pings_until_the_server_ends_the_stream(capture):
    with ReplayServer(capture, ping_interval=0.05, end_of_stream="close") as srv:
        ups = collect(srv.endpoint, build_request([b58(PUMP)], commitment="processed"))
    kinds = [u.WhichOneof("update_oneof") for u in ups]
    assert kinds == ["transaction"] + ["block_meta"] * (len(kinds) - 1) and len(kinds) >= 4
    assert ups[0].transaction.transaction.signature[0] == 1


def test_errors_are_explained_and_hide_the_token(capture):
    check_errors_explained_and_token_hidden(collect, capture)


def test_a_stalled_stream_is_reported_as_retryable():
    check_stall_is_retryable(collect)


def test_a_stopped_server_ends_the_stream_with_a_retryable_error(capture):
    srv = ReplayServer(capture, ping_interval=60)  # idle after the capture: the stream stays open

    async def go():
        got = []
        async for u in h2_updates(srv.endpoint, None, build_request([b58(PUMP)], commitment="processed")):
            got.append(u)
            if len(got) == 2:
                await asyncio.to_thread(srv.stop, 0.5)
        return got

    srv.start()
    with pytest.raises(GeyserError) as e:
        asyncio.run(asyncio.wait_for(go(), 10))
    assert e.value.retryable


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_tls_endpoint(capture, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    server_ctx.set_alpn_protocols(["h2"])
    client_ctx = ssl.create_default_context(cafile=str(cert))
    client_ctx.set_alpn_protocols(["h2"])
    with ReplayServer(capture, end_of_stream="close", ssl_context=server_ctx) as srv:
        assert srv.endpoint.startswith("https://")
        ups = collect(srv.endpoint, build_request([b58(PUMP)], commitment="processed"), ssl_context=client_ctx)
        assert ups[0].transaction.transaction.signature[0] == 1
        with pytest.raises(GeyserError):  # the system roots do not trust a self-signed certificate
            collect(srv.endpoint, build_request([b58(PUMP)], commitment="processed"))
