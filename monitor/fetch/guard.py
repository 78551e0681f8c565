"""The private-address guard, applied where the connection is made (so DNS rebinding cannot slip past).

A check before the request resolves the name once and the connection resolves it again: a name
that answers with a public address first and 127.0.0.1 a moment later gets through. Here the
transport's network backend resolves the name itself, refuses it if any address is not globally
routable, and connects to an address it has just checked. TLS still verifies the certificate
against the host name: httpcore passes the URL's host to `start_tls` as `server_hostname`
(SNI and verification), whatever address the TCP connection went to.

Whether private addresses are allowed is per fetch (`allowing_private(True)`, a context variable
the connecting task inherits), because one shared client serves every caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ipaddress
import socket
import ssl
from collections.abc import Iterable, Iterator

import httpcore
import httpx

_ALLOW_PRIVATE: contextvars.ContextVar[bool] = contextvars.ContextVar("newsmon_allow_private", default=False)


class PrivateAddressRefused(httpcore.ConnectError):
    """httpx maps it to httpx.ConnectError and keeps it as the cause, with this sentence."""


@contextlib.contextmanager
def allowing_private(allowed: bool) -> Iterator[None]:
    token = _ALLOW_PRIVATE.set(allowed)
    try:
        yield
    finally:
        _ALLOW_PRIVATE.reset(token)


def not_global(addresses: Iterable[str]) -> str | None:
    """The first address that is loopback, private, link-local, reserved or otherwise not global."""
    for text in addresses:
        address = ipaddress.ip_address(text.split("%")[0])  # an IPv6 scope id is not part of the address
        mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is loopback too
        if not (mapped or address).is_global:
            return str(address)
    return None


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's own backend, but every TCP connection goes to an address checked just before."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        if _ALLOW_PRIVATE.get():
            return await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        try:
            async with asyncio.timeout(timeout):
                infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"DNS lookup of {host} timed out") from None
        except socket.gaierror as error:
            raise httpcore.ConnectError(str(error)) from error
        addresses = list(dict.fromkeys(info[4][0] for info in infos))  # in the resolver's order, once each
        bad = not_global(addresses)
        if bad is not None:
            resolved = "" if bad == host else f" ({bad})"  # "localhost (127.0.0.1)", "127.0.0.1"
            raise PrivateAddressRefused(f"refused: {host} is a private or local address{resolved}")
        last: Exception | None = None
        for address in addresses:  # the checked addresses, in turn (no re-resolution in between)
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last = error
        assert last is not None  # getaddrinfo never answers with no address
        raise last

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise PrivateAddressRefused("refused: Unix sockets are never fetched")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport (its exception mapping and streams) over a pool with the guarded backend.

    httpx has no public switch for the network backend, so the pool it built is replaced by an
    equal one that has it; tests/test_fetch_http.py proves the guard is in the path.
    """

    def __init__(self, *, verify: bool | ssl.SSLContext, http2: bool, limits: httpx.Limits) -> None:
        context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify=verify)
        super().__init__(verify=context, http2=http2, limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=http2,
            network_backend=GuardedBackend(),
        )
