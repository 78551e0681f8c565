"""The private-address guard at connect time: real sockets, real redirects, real TLS on 127.0.0.1.

There is no check before the request any more; the transport resolves each name once, refuses a
non-global address and connects to the address it checked, so DNS rebinding has no second lookup
to exploit. Some tests let the loopback server play a public host (`loopback_counts_as_public`):
the only way to have a "public" first hop without the internet.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from feedserver import FeedServer, Reply

from monitor.fetch import Failed, Fetched, guard
from monitor.fetch.http import fetch_http, make_client

RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item><guid>1</guid><title>One</title>' \
      b"<description>Text.</description></item></channel></rss>"


def fetch(url: str, verify: bool | ssl.SSLContext = True, **options):
    async def go():
        async with make_client(verify=verify) as client:
            return await fetch_http(client, url, **options)

    return asyncio.run(go())


@pytest.fixture
def server():
    with FeedServer() as running:
        running.feed("/rss", RSS)
        yield running


@pytest.fixture
def loopback_counts_as_public(monkeypatch):
    real = guard.not_global
    monkeypatch.setattr(guard, "not_global", lambda addresses: real(a for a in addresses if a not in ("127.0.0.1", "::1")))


def test_a_name_that_resolves_to_loopback_is_refused_before_anything_is_sent(server):
    refused = fetch(server.url("/rss", host="localhost"), allow_private=False)
    assert refused == Failed("refused: localhost is a private or local address (127.0.0.1)")
    assert server.requests == []  # not even a request line reached the server
    allowed = fetch(server.url("/rss", host="localhost"), allow_private=True)
    assert isinstance(allowed, Fetched) and [e.title for e in allowed.entries] == ["One"]


def test_other_non_global_addresses_are_refused_without_connecting():
    for url, address in [("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),  # cloud metadata
                         ("http://10.1.2.3/rss", "10.1.2.3"), ("http://[::1]:9/rss", "::1"),
                         ("http://[::ffff:127.0.0.1]:9/rss", "::ffff:7f00:1"), ("http://0.0.0.0:9/", "0.0.0.0")]:
        result = fetch(url, allow_private=False)
        assert isinstance(result, Failed) and "is a private or local address" in result.error, url
        assert result.error.startswith(f"refused: {address} ") or result.error.endswith(f" ({address})"), url


def test_a_redirect_to_a_private_address_is_refused(server, loopback_counts_as_public):
    server.redirect("/moved", "http://169.254.169.254/latest/meta-data/", status=302)
    server.redirect("/inside", "http://10.0.0.7:8080/admin", status=301)
    assert fetch(server.url("/moved"), allow_private=False) == \
        Failed("refused: 169.254.169.254 is a private or local address")
    assert fetch(server.url("/inside"), allow_private=False) == \
        Failed("refused: 10.0.0.7 is a private or local address")
    assert len(server.requests_to("/moved")) == 1  # the public first hop was fetched


def test_the_checked_address_is_connected_to_and_the_host_header_keeps_the_name(server, loopback_counts_as_public):
    result = fetch(server.url("/rss", host="localhost"), allow_private=False)
    assert isinstance(result, Fetched)
    assert server.requests_to("/rss")[0].headers["host"] == f"localhost:{server.port}"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """Self-signed certificates (openssl) for the name `localhost` and for another name."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    made = {}
    for name in ("localhost", "feeds.example"):
        cert, key = folder / f"{name}.pem", folder / f"{name}.key"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                        f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}", "-keyout", str(key), "-out",
                        str(cert)], check=True, capture_output=True)
        made[name] = (cert, key)
    return made


def _tls_server(certificate: tuple[Path, Path]) -> FeedServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return FeedServer(tls=context)


def test_tls_still_verifies_the_host_name_when_connecting_to_the_checked_address(certificates,
                                                                                  loopback_counts_as_public):
    for name, expected_ok in (("localhost", True), ("feeds.example", False)):
        trust = ssl.create_default_context(cafile=str(certificates[name][0]))
        with _tls_server(certificates[name]) as server:
            server.reply("/rss", Reply(200, RSS, {"Content-Type": "application/rss+xml"}))
            result = fetch(server.url("/rss", host="localhost"), verify=trust, allow_private=False)
        if expected_ok:
            assert isinstance(result, Fetched), result
        else:  # a certificate for another name: the name in the URL is what TLS checks, not the address
            assert isinstance(result, Failed) and result.error.startswith("TLS certificate not accepted"), result
            assert "localhost" in result.error
