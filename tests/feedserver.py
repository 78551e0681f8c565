"""A real HTTP/1.1 server on 127.0.0.1 (random port) whose routes each test programs.

    with FeedServer() as server:
        server.feed("/rss", body, etag='"v1"')          # answers 304 to a matching If-None-Match
        server.redirect("/old", "/rss", status=301)
        server.route("/flaky", lambda seen: Reply(503, headers={"Retry-After": "120"}))
        url = server.url("/rss")
        ...
        server.requests_to("/rss")                      # what the client sent, in order

It runs in a thread with the standard library only, so the code under test talks to a real
socket: real headers, real gzip, real redirects, a real slow peer.
"""

from __future__ import annotations

import gzip
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Seen:
    """A request as the server received it (header names lower-cased)."""

    path: str
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)  # when it arrived


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    chunked: bool = False  # no Content-Length: the body is sent in chunks of `chunk_size`
    chunk_size: int = 65536
    byte_delay: float = 0.0  # > 0: send one byte, then wait this long (a trickling server)
    delay: float = 0.0  # wait this long before answering


Handler = Callable[[Seen], Reply]


class FeedServer:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.scheme = "https" if tls else "http"
        self._routes: dict[str, Handler] = {}
        self._lock = threading.Lock()
        self.requests: list[Seen] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.stopping = threading.Event()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _RequestHandler)
        self._http.daemon_threads = True
        self._http.feed_server = self  # type: ignore[attr-defined]
        if tls is not None:  # each accepted connection does its handshake in its handler thread
            self._http.socket = tls.wrap_socket(self._http.socket, server_side=True, do_handshake_on_connect=False)
        # A short poll interval: shutdown() waits for one, and every test stops a server.
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.02}, name="feedserver", daemon=True
        )

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> FeedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()  # ends trickling replies
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        return self._http.server_address[1]

    def url(self, path: str = "/", *, host: str = "127.0.0.1", userinfo: str = "") -> str:
        return f"{self.scheme}://{userinfo + '@' if userinfo else ''}{host}:{self.port}{path}"

    # -- programming routes ------------------------------------------------------------------
    def route(self, path: str, handler: Handler) -> None:
        with self._lock:
            self._routes[path] = handler

    def reply(self, path: str, reply: Reply) -> None:
        self.route(path, lambda _seen: reply)

    def feed(
        self,
        path: str,
        body: bytes | Callable[[], bytes],
        *,
        content_type: str = "application/rss+xml; charset=utf-8",
        etag: str | None = None,
        last_modified: str | None = None,
        honour_conditional: bool = True,
        gzip_body: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Serve a feed; `body` may be a function called on every request (a changing feed).

        With `etag` / `last_modified` it sends those validators and answers 304 when the
        request's match, unless `honour_conditional` is False (a server that ignores them).
        """

        def handler(seen: Seen) -> Reply:
            validators = {"ETag": etag, "Last-Modified": last_modified}
            extra = {name: value for name, value in validators.items() if value} | (headers or {})
            matches = (etag and seen.headers.get("if-none-match") == etag) or (
                last_modified and not etag and seen.headers.get("if-modified-since") == last_modified
            )
            if honour_conditional and matches:
                return Reply(304, headers=extra)
            data = body() if callable(body) else body
            extra["Content-Type"] = content_type
            if gzip_body:
                data = gzip.compress(data)
                extra["Content-Encoding"] = "gzip"
            return Reply(200, data, extra)

        self.route(path, handler)

    def redirect(self, path: str, location: str, status: int = 301) -> None:
        self.reply(path, Reply(status, headers={"Location": location}))

    # -- what happened -----------------------------------------------------------------------
    def requests_to(self, path: str) -> list[Seen]:
        with self._lock:
            return [seen for seen in self.requests if seen.path == path]

    def _handle(self, seen: Seen) -> Reply:
        with self._lock:
            self.requests.append(seen)
            handler = self._routes.get(seen.path)
        return handler(seen) if handler else Reply(404, b"no such route", {"Content-Type": "text/plain"})


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like real feed servers

    def do_GET(self) -> None:
        server: FeedServer = self.server.feed_server  # type: ignore[attr-defined]
        seen = Seen(self.path, {name.lower(): value for name, value in self.headers.items()})
        with server._lock:
            server.in_flight += 1
            server.most_in_flight = max(server.most_in_flight, server.in_flight)
        try:
            reply = server._handle(seen)
            if reply.delay and server.stopping.wait(reply.delay):
                return
            self._send(reply, server.stopping)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a deadline, a size limit): that is the point of the test
        finally:
            with server._lock:
                server.in_flight -= 1

    def _send(self, reply: Reply, stopping: threading.Event) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if reply.status == 304:
            return
        if reply.byte_delay:
            for index in range(len(reply.body)):
                self.wfile.write(reply.body[index : index + 1])
                self.wfile.flush()
                if stopping.wait(reply.byte_delay):
                    self.close_connection = True
                    return
        elif reply.chunked:
            for start in range(0, len(reply.body), reply.chunk_size):
                piece = reply.body[start : start + reply.chunk_size]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(reply.body)

    def log_message(self, format: str, *args: object) -> None:  # quiet: pytest shows failures
        pass
