"""Fetch one HTTP(S) feed: conditional GET, redirects, limits, then parse.

    client = make_client()                      # one per process, passed to every fetch
    gate = HostGate(total=16, per_host=2)       # shared too: politeness towards each host
    result = await fetch_http(client, url, etag=feed.etag, last_modified=feed.last_modified,
                              body_hash=feed.body_hash, gate=gate)

`fetch_http` never raises for anything a feed or a network can do: it returns `Fetched`,
`NotModified` or `Failed(error=<one sentence>)`. Errors never show a URL's user or password.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from monitor import USER_AGENT
from monitor.errors import FeedError
from monitor.fetch import Failed, Fetched, FetchResult, NotModified
from monitor.fetch.guard import GuardedTransport, PrivateAddressRefused, allowing_private
from monitor.fetch.parse import DEFAULT_MAX_ENTRIES, parse_feed

DEFAULT_MAX_BYTES = 10_000_000
DEFAULT_MAX_REDIRECTS = 5
DEFAULT_DEADLINE_SECONDS = 30.0
# A feed's own hint (<ttl>, max-age, Expires) above this is a typo or a trap, not a wish.
MAX_TTL_SECONDS = 7 * 86400
ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)
# An article page (full text, feed discovery) is HTML first; a feed type is still welcome.
PAGE_ACCEPT = "text/html, application/xhtml+xml, application/xml;q=0.9, */*;q=0.5"
_REDIRECTS = {301, 302, 303, 307, 308}
_PERMANENT = {301, 308}


def make_client(
    *,
    connect_timeout: float = 10.0,
    read_timeout: float = 20.0,
    max_connections: int = 64,
    max_keepalive_connections: int = 16,
    http2: bool = True,
    user_agent: str = USER_AGENT,
    verify: bool | ssl.SSLContext = True,
) -> httpx.AsyncClient:
    """The one shared client. The total per-fetch deadline is `fetch_http(deadline_seconds=)`.

    httpx asks for gzip, deflate and brotli on its own (brotli is installed with httpx[brotli]).
    Redirects are off here: `fetch_http` follows them itself to see which were permanent.
    Connections go through `guard.GuardedTransport`, which refuses private addresses at connect
    time unless the fetch allows them; proxies from the environment are therefore not used.
    """
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_keepalive_connections)
    return httpx.AsyncClient(
        headers={"User-Agent": user_agent, "Accept": ACCEPT},
        timeout=httpx.Timeout(read_timeout, connect=connect_timeout, pool=connect_timeout),
        follow_redirects=False,
        transport=GuardedTransport(verify=verify, http2=http2, limits=limits),
    )


class HostGate:
    """At most `per_host` fetches to one host at a time, and `total` overall.

    The host slot is taken before the global one, so a task queueing for a busy host never
    holds a global slot that another host's feed could use.
    """

    def __init__(self, total: int = 16, per_host: int = 2) -> None:
        self.per_host = per_host
        self._total = asyncio.Semaphore(total)
        self._hosts: dict[str, tuple[asyncio.Semaphore, int]] = {}

    @contextlib.asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        semaphore, users = self._hosts.get(host, (None, 0))
        semaphore = semaphore or asyncio.Semaphore(self.per_host)
        self._hosts[host] = (semaphore, users + 1)
        try:
            async with semaphore, self._total:
                yield
        finally:
            semaphore, users = self._hosts[host]
            if users == 1:
                del self._hosts[host]  # forget idle hosts, so the map stays as small as the work
            else:
                self._hosts[host] = (semaphore, users - 1)


class _Refused(Exception):
    """A fetch that ends early with a sentence (and maybe a retry hint)."""

    def __init__(self, failed: Failed) -> None:
        super().__init__(failed.error)
        self.failed = failed


@dataclass(frozen=True)
class _Download:
    url: str  # where the body finally came from
    permanent_url: str | None  # set when every redirect on the way was permanent
    status: int
    headers: httpx.Headers
    body: bytes | None  # None for a 304


async def fetch_http(
    client: httpx.AsyncClient,
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    body_hash: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
    allow_private: bool = False,
    gate: HostGate | None = None,
    known_entries: frozenset[str] | set[str] = frozenset(),
) -> FetchResult:
    """Poll one feed. A 304, or a 200 whose body hashes to `body_hash`, is NotModified (not parsed).

    `known_entries`: entry digests of the last stored poll; those entries are not parsed again.

    `allow_private=False` refuses hosts that resolve to loopback, private or link-local
    addresses (a shared deployment must not be steered at its own network), checked on every
    connection the fetch makes, redirects included (monitor/fetch/guard.py); tests turn it off.
    """
    try:
        start = httpx.URL(url)
    except httpx.InvalidURL:
        return Failed("not a valid URL")
    if start.scheme not in ("http", "https") or not start.host:
        return Failed("not an http(s) URL")
    async with gate.slot(start.host) if gate else contextlib.nullcontext():
        try:
            async with asyncio.timeout(deadline_seconds):
                download = await _download(
                    client, start, etag, last_modified, max_bytes, max_redirects, allow_private
                )
        except TimeoutError:
            return Failed(f"timed out after {deadline_seconds:g} s")
        except _Refused as refused:
            return refused.failed
        except httpx.HTTPError as error:
            return Failed(describe_http_error(error, client.timeout, start))
        except httpx.InvalidURL:  # not an HTTPError in httpx's tree; raised for odd redirect targets
            return Failed("redirect to an invalid URL")
    ttl = _cache_ttl(download.headers)
    new_etag = download.headers.get("etag") or etag
    new_last_modified = download.headers.get("last-modified") or last_modified
    if download.body is None:
        return NotModified(new_etag, new_last_modified, ttl, new_url=download.permanent_url)
    digest = hashlib.sha256(download.body).hexdigest()
    if digest == body_hash:
        return NotModified(new_etag, new_last_modified, ttl, new_url=download.permanent_url)
    headers = {key: value for key, value in download.headers.items() if key != "content-encoding"}
    try:  # feedparser is pure Python (~0.5 ms an entry): keep it off the event loop
        parsed = await asyncio.to_thread(
            parse_feed, download.body, download.url, headers, max_entries=max_entries, known=known_entries
        )
    except FeedError as error:
        return Failed(error.message)
    return Fetched(
        entries=parsed.entries,
        title=parsed.title,
        etag=download.headers.get("etag"),
        last_modified=download.headers.get("last-modified"),
        body_hash=digest,
        new_url=download.permanent_url,
        ttl_seconds=_largest(parsed.ttl_seconds, ttl),
        warnings=parsed.warnings,
        entry_digests=parsed.entry_digests,
    )


async def fetch_page(
    client: httpx.AsyncClient,
    url: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
    allow_private: bool = False,
) -> tuple[str, bytes]:
    """A web page's final URL and body, with a feed's limits (for feed discovery).

    Raises FeedError(url, sentence) for anything that is not a 2xx page.
    """
    try:
        start = httpx.URL(url)
        async with asyncio.timeout(deadline_seconds):
            download = await _download(client, start, None, None, max_bytes, max_redirects, allow_private,
                                       headers={"Accept": PAGE_ACCEPT})
    except TimeoutError:
        raise FeedError(redact(url), f"timed out after {deadline_seconds:g} s") from None
    except _Refused as refused:
        raise FeedError(redact(url), refused.failed.error) from None
    except httpx.HTTPError as error:
        raise FeedError(redact(url), describe_http_error(error, client.timeout, start)) from None
    except httpx.InvalidURL:
        raise FeedError(redact(url), "not a valid URL") from None
    return download.url, download.body or b""


async def _download(
    client: httpx.AsyncClient,
    start: httpx.URL,
    etag: str | None,
    last_modified: str | None,
    max_bytes: int,
    max_redirects: int,
    allow_private: bool,
    headers: dict[str, str] | None = None,
) -> _Download:
    conditional = dict(headers or {})  # sent with every hop, like the validators
    if etag:
        conditional["If-None-Match"] = etag
    if last_modified:
        conditional["If-Modified-Since"] = last_modified
    with allowing_private(allow_private):  # read by the connection guard, in this task
        return await _follow(client, start, conditional, max_bytes, max_redirects)


async def _follow(client: httpx.AsyncClient, start: httpx.URL, conditional: dict[str, str], max_bytes: int,
                  max_redirects: int) -> _Download:
    url, seen, all_permanent = start, {_without_userinfo(start)}, True
    for _ in range(max_redirects + 1):
        request = client.build_request("GET", url, headers=conditional)
        response = await client.send(request, stream=True, follow_redirects=False)
        try:
            status = response.status_code
            if status in _REDIRECTS:
                url = _redirect_target(response, url)
                all_permanent = all_permanent and status in _PERMANENT
                if _without_userinfo(url) in seen:
                    raise _Refused(Failed(f"redirect loop (back to {_without_userinfo(url)})"))
                seen.add(_without_userinfo(url))
                continue
            permanent_url = _without_userinfo(url) if url != start and all_permanent else None
            if status == 304:
                # Reading the (empty) body lets the connection go back to the pool; closing a
                # response that was never read makes httpcore drop the connection, and every
                # 304 would then pay for a new TCP (and TLS) connection.
                await response.aread()
                return _Download(_without_userinfo(url), permanent_url, status, response.headers, None)
            _raise_for_status(response)
            body = await _read_limited(response, max_bytes)
            return _Download(_without_userinfo(url), permanent_url, status, response.headers, body)
        finally:
            await response.aclose()
    raise _Refused(Failed(f"too many redirects (more than {max_redirects})"))


def _redirect_target(response: httpx.Response, current: httpx.URL) -> httpx.URL:
    location = response.headers.get("location", "").strip()
    if not location:
        raise _Refused(Failed(f"HTTP {response.status_code} redirect without a Location"))
    try:
        target = current.join(location)
    except httpx.InvalidURL:
        raise _Refused(Failed("redirect to an invalid URL")) from None
    if target.scheme not in ("http", "https"):
        raise _Refused(Failed(f"redirect to {target.scheme}:// refused"))
    if not target.host:
        raise _Refused(Failed("redirect to an invalid URL"))
    if target.userinfo == b"" and (target.scheme, target.host, target.port) == (
        current.scheme,
        current.host,
        current.port,
    ):
        # Same origin: keep the credentials the feed URL carried (httpx does the same).
        target = target.copy_with(username=current.username or None, password=current.password)
    return target


def _raise_for_status(response: httpx.Response) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 410:
        raise _Refused(Failed("HTTP 410: the feed is gone", gone=True))
    if status in (429, 503):
        raise _Refused(Failed(f"HTTP {status}", retry_after_seconds=_retry_after(response.headers)))
    raise _Refused(Failed(f"HTTP {status}"))


async def _read_limited(response: httpx.Response, max_bytes: int) -> bytes:
    """The decoded body, refused as soon as it passes `max_bytes` (so a huge or endless body costs little)."""
    too_large = _Refused(Failed(f"response larger than {human_size(max_bytes)}"))
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def describe_http_error(error: httpx.HTTPError, timeout: httpx.Timeout, url: httpx.URL) -> str:
    """One sentence for a transport error, from the most telling exception in its chain."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for e in chain:
        if isinstance(e, PrivateAddressRefused):
            return str(e)
    if any(isinstance(e, socket.gaierror) for e in chain):
        return "DNS lookup failed"
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "connection refused"
    for e in chain:
        if isinstance(e, ssl.SSLCertVerificationError):
            return f"TLS certificate not accepted: {e.verify_message}"
        if isinstance(e, ssl.SSLError):
            return "TLS handshake failed"
    if isinstance(error, httpx.ConnectTimeout | httpx.PoolTimeout):
        return f"timed out after {timeout.connect:g} s while connecting"
    if isinstance(error, httpx.TimeoutException):
        return f"timed out after {timeout.read:g} s waiting for the server"
    if isinstance(error, httpx.RemoteProtocolError) and any(isinstance(e, httpx.InvalidURL) for e in chain):
        return "redirect to an invalid URL"  # httpx checks a Location header as it reads the reply
    if isinstance(error, httpx.ReadError):
        return "the connection broke while reading the response"
    if isinstance(error, httpx.WriteError):
        return "the connection broke while sending the request"
    if isinstance(error, httpx.RemoteProtocolError):
        return "the server broke the HTTP protocol or closed the connection"
    if isinstance(error, httpx.DecodingError):
        return "could not decompress the response"
    if isinstance(error, httpx.ConnectError):
        return "could not connect"
    if url.userinfo:  # an unknown error's text might quote the credentials: name the type only
        return f"HTTP client error ({type(error).__name__})"
    first_line = (str(error).strip().splitlines() or [""])[0]
    return f"HTTP client error ({type(error).__name__}): {first_line}".rstrip(": ")


def _retry_after(headers: httpx.Headers) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    when = _http_date(value)
    if when is None:
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _cache_ttl(headers: httpx.Headers) -> int | None:
    """How long the server says the response stays fresh: Cache-Control max-age or Expires."""
    candidates: list[int] = []
    for directive in headers.get("cache-control", "").lower().split(","):
        name, _, value = directive.strip().partition("=")
        if name in ("max-age", "s-maxage") and value.strip('"').isdigit():
            candidates.append(int(value.strip('"')))
    expires = _http_date(headers.get("expires", ""))
    if expires is not None:
        now = _http_date(headers.get("date", "")) or datetime.now(UTC)  # the server's clock if it tells
        candidates.append(int((expires - now).total_seconds()))
    return _largest(*candidates)


def _largest(*seconds: int | None) -> int | None:
    present = [s for s in seconds if s is not None and s > 0]
    return min(max(present), MAX_TTL_SECONDS) if present else None


def _http_date(value: str) -> datetime | None:
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def _without_userinfo(url: httpx.URL) -> str:
    return str(url.copy_with(username=None, password=None)) if url.userinfo else str(url)


def redact(url: str) -> str:
    """The URL without user and password, for logs and messages."""
    try:
        return _without_userinfo(httpx.URL(url))
    except httpx.InvalidURL:
        return "<invalid URL>"


def human_size(size: int) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= scale:
            return f"{size / scale:g} {unit}"
    return f"{size} bytes"
