"""Notifiers against real servers: aiosmtpd for e-mail, a local HTTP server speaking Slack's webhook protocol.

No mocks: each test starts a server on 127.0.0.1 (a free port), lets the notifier talk to
it, and reads what the server received.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import json
import logging
import shutil
import socket
import ssl
import subprocess
import threading
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

import notifiers
from monitor.config import ChannelConfig
from monitor.errors import ConfigError, NotifyError
from monitor.model import DevelopmentView, SourceRef
from notifiers import NOTIFIERS, AlertMessage, RateLimited, build_notifiers
from notifiers.console import ConsoleNotifier
from notifiers.email import EmailNotifier
from notifiers.jsonl import JsonlNotifier
from notifiers.slack import SlackNotifier

ROOT = Path(__file__).resolve().parent.parent

VIEW = DevelopmentView(
    id=42,
    story_id=7,
    story_title="Riverton flood barrier\n fails",
    kind="changed_figure",
    text="The council now says 1,200 homes were evacuated, up from 300.",
    score=0.8234,
    source="Riverton Gazette",
    article_id=501,
    article_url="https://gazette.example/flood?id=2&lang=en",
    article_title="Flood: 1,200 homes evacuated",
    published_at=datetime(2026, 11, 23, 10, 5, tzinfo=UTC),
    detected_at=datetime(2026, 11, 23, 10, 7, tzinfo=UTC),
    closest_text="The council said 300 homes were evacuated.",
    closest_similarity=0.7412,
    sources=(
        SourceRef("Riverton Gazette", "https://gazette.example/flood?id=2&lang=en", 501),
        SourceRef("Valley Herald", "https://herald.example/x", 502),
        SourceRef("Valley Herald", "https://herald.example/x-updated", 503),
        SourceRef("Wire <AP>", None, 504),
    ),
)
MESSAGE = AlertMessage(rule="floods", channel="ops", alert_id=17, development=VIEW)
NEW_STORY = dataclasses.replace(
    VIEW, kind="new_story", closest_text=None, closest_similarity=None, sources=VIEW.sources[:1]
)

PASSWORD = "s3cret-Pa55word"
SLACK_PATH = "/services/T0001/B0002/XXXXsecretTOKEN"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- a Slack incoming-webhook server --------------------------------------------------------


class SlackWebhookServer:
    """Speaks Slack's incoming-webhook protocol on 127.0.0.1.

    POST of JSON to the hook's path → 200 "ok"; any other path → 404 "no_service", as Slack
    does. `replies` queues scripted answers (status, headers, body) for the next requests;
    a reply with status 0 holds the request until the server stops (a hung service).
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}{SLACK_PATH}"
        self.bodies: list[dict] = []
        self.replies: deque[tuple[int, dict[str, str], str]] = deque()
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> SlackWebhookServer:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path != SLACK_PATH:
                    return self._answer(404, {}, "no_service")
                if self.headers.get("Content-Type") != "application/json":
                    return self._answer(400, {}, "invalid_payload")
                hook.bodies.append(json.loads(body))
                status, headers, text = hook.replies.popleft() if hook.replies else (200, {}, "ok")
                if status == 0:
                    hook._release.wait(10)
                    return None
                return self._answer(status, headers, text)

            def _answer(self, status: int, headers: dict[str, str], text: str) -> None:
                data = text.encode()
                self.send_response(status)
                for name, value in {"Content-Type": "text/plain", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = None


@pytest.fixture
def slack_server() -> Iterator[SlackWebhookServer]:
    server = SlackWebhookServer().start()
    yield server
    server.stop()


def slack_notifier(monkeypatch, url: str, **options) -> SlackNotifier:
    monkeypatch.setenv("NEWSMON_TEST_SLACK_URL", url)
    return SlackNotifier("ops", {"webhook_url_env": "NEWSMON_TEST_SLACK_URL", **options})


# --- an SMTP server (aiosmtpd) --------------------------------------------------------------


class Mailbox:
    """aiosmtpd handler: keeps what it receives; `refuse` maps a recipient to the reply it gets."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse: dict[str, str] = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted for delivery"


def accept_newsmon(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (b"newsmon", PASSWORD.encode())
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd replies 535 itself


@pytest.fixture(scope="session")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl), for the STARTTLS and SSL servers."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture
def smtp_server():
    """Start an aiosmtpd server with the given options; returns (mailbox, port)."""
    started: list[Controller] = []

    def start(**options) -> tuple[Mailbox, int]:
        mailbox, port = Mailbox(), free_port()
        controller = Controller(mailbox, hostname="127.0.0.1", port=port, **options)
        controller.start()
        started.append(controller)
        return mailbox, port

    yield start
    for controller in started:
        controller.stop()


def email_notifier(port: int, **options) -> EmailNotifier:
    defaults = {"host": "127.0.0.1", "port": port, "security": "none", "from": "newsmon@example.org"}
    return EmailNotifier("mail", {**defaults, "to": ["desk@example.org"], **options})


# --- the registry ---------------------------------------------------------------------------


def test_registry_names_every_kind_once_and_documents_it():
    docs = (ROOT / "docs" / "notifiers.md").read_text(encoding="utf-8")
    for kind, notifier_class in NOTIFIERS.items():
        assert notifier_class.kind == kind
        assert notifier_class.__doc__ and "Options:" in notifier_class.__doc__
        assert f"## `{kind}`" in docs, f"docs/notifiers.md has no section for {kind}"
    assert sorted(notifiers.__all__) == sorted(
        ["NOTIFIERS", "AlertMessage", "Notifier", "RateLimited", "build_notifiers", "close_notifiers"]
    )


def test_build_notifiers_builds_the_default_channels(tmp_path):
    built = build_notifiers(
        {
            "console": ChannelConfig(kind="console"),
            "jsonl": ChannelConfig(kind="jsonl", path=str(tmp_path / "a")),
        }
    )
    assert [type(n) for n in built.values()] == [ConsoleNotifier, JsonlNotifier]
    assert all(isinstance(n, notifiers.Notifier) for n in built.values())


@pytest.mark.parametrize(
    ("channel", "field", "message"),
    [
        ({"kind": "pager"}, "channels.x.kind", "unknown kind 'pager' (console, email, jsonl, slack)"),
        ({"kind": "console", "colour": True}, "channels.x.colour", "unknown key"),
        ({"kind": "email", "host": "h", "form": "a@b.c", "to": "x@y.z"}, "channels.x.form",
         "unknown key (did you mean 'from'?)"),
        ({"kind": "console", "stream": "printer"}, "channels.x.stream",
         "Input should be 'stdout' or 'stderr'"),
        ({"kind": "jsonl"}, "channels.x.path", "Field required"),
        ({"kind": "email", "host": "h", "from": "a@b.c"}, "channels.x.to", "Field required"),
        ({"kind": "email", "host": "h", "from": "a@b.c", "to": "nobody"}, "channels.x.to",
         "not an e-mail address: 'nobody'"),
        ({"kind": "email", "host": "h", "from": "a@b.c", "to": "x@y.z\nBcc: all@y.z"}, "channels.x.to",
         "an address cannot contain a line break"),
        ({"kind": "email", "host": "h", "from": "a@b.c", "to": "x@y.z", "password": PASSWORD}, "channels.x",
         "the password is a secret: name an environment variable (password_env) or a file (password_file) "
         "that holds it, never the password itself"),
        ({"kind": "email", "host": "h", "from": "a@b.c", "to": "x@y.z", "username": "u"}, "channels.x",
         "set exactly one of password_env or password_file"),
        ({"kind": "email", "host": "h", "from": "a@b.c", "to": "x@y.z", "password_env": "P"}, "channels.x",
         "a password is set but no username"),
        ({"kind": "email", "host": "h", "from": "a@b.c", "to": "x@y.z", "username": "u", "password_env": "P",
          "security": "none"}, "channels.x",
         "refusing to send a password unencrypted: use security 'starttls' or 'ssl'"),
        ({"kind": "email", "host": "h", "from": "a@b.c", "to": "x@y.z", "username": "u",
          "password_env": "NEWSMON_TEST_UNSET"}, "channels.x.password_env",
         "environment variable NEWSMON_TEST_UNSET is not set"),
        ({"kind": "slack"}, "channels.x", "set exactly one of webhook_url_env or webhook_url_file"),
        ({"kind": "slack", "webhook_url": "https://hooks.slack.com" + SLACK_PATH}, "channels.x",
         "the webhook URL is a secret: name an environment variable (webhook_url_env) or a file "
         "(webhook_url_file) that holds it, never the URL itself"),
        ({"kind": "slack", "webhook_url_file": "/nonexistent/hook"}, "channels.x.webhook_url_file",
         "cannot read /nonexistent/hook: No such file or directory"),
        ({"kind": "slack", "webhook_url_env": "NEWSMON_TEST_HTTP_HOOK"}, "channels.x.webhook_url_env",
         "the webhook URL must be an https:// URL"),
    ],
)  # fmt: skip
def test_bad_channel_settings_name_the_file_and_field(channel, field, message, monkeypatch):
    monkeypatch.delenv("NEWSMON_TEST_UNSET", raising=False)
    monkeypatch.setenv("NEWSMON_TEST_HTTP_HOOK", "http://hooks.example.com" + SLACK_PATH)
    with pytest.raises(ConfigError) as caught:
        build_notifiers({"x": ChannelConfig(**channel)}, config_path="newsmon.toml")
    error = caught.value
    assert (error.path, error.field, error.message) == ("newsmon.toml", field, message)
    assert str(error) == f"config error in newsmon.toml: {field}: {message}"
    assert PASSWORD not in str(error) and "secretTOKEN" not in str(error)


def test_a_failed_build_closes_what_it_built(monkeypatch, slack_server):
    monkeypatch.setenv("NEWSMON_TEST_SLACK_URL", slack_server.url)
    channels = {
        "ops": ChannelConfig(kind="slack", webhook_url_env="NEWSMON_TEST_SLACK_URL"),
        "bad": ChannelConfig(kind="nope"),
    }
    with pytest.raises(ConfigError):
        build_notifiers(channels)  # filterwarnings=error would catch an unclosed client


# --- console and jsonl ----------------------------------------------------------------------


def test_console_prints_a_readable_block(capsys):
    ConsoleNotifier("console", {}).send(MESSAGE)
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "[Changed figure] Riverton flood barrier fails  (story 7)",
        "  New:        The council now says 1,200 homes were evacuated, up from 300.",
        "  Source:     Riverton Gazette — https://gazette.example/flood?id=2&lang=en",
        "  Published:  2026-11-23 10:05 UTC   score 0.82",
        '  Why new:    closest earlier report (0.74 similar): "The council said 300 homes were evacuated."',
        "  Also from:  Valley Herald (https://herald.example/x), Wire <AP>",
        "  Alert:      #17, rule 'floods' → ops",
        "",
    ]


def test_console_says_when_there_is_no_earlier_report(capsys):
    ConsoleNotifier("console", {"stream": "stderr"}).send(dataclasses.replace(MESSAGE, development=NEW_STORY))
    err = capsys.readouterr().err
    assert "  Why new:    no earlier report (first report of this story)\n" in err
    assert "Also from" not in err  # one outlet: nothing corroborates yet


def test_jsonl_appends_one_object_per_alert_and_creates_the_folder(tmp_path):
    path = tmp_path / "deep" / "alerts.jsonl"
    notifier = JsonlNotifier("jsonl", {"path": str(path)})
    notifier.send(MESSAGE)
    notifier.send(dataclasses.replace(MESSAGE, alert_id=18, rule="all"))
    lines = path.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert records[0] == VIEW.to_json() | {"rule": "floods", "channel": "ops", "alert_id": 17}
    assert (records[1]["alert_id"], records[1]["rule"]) == (18, "all")


def test_jsonl_failure_is_retryable(tmp_path):
    (tmp_path / "file").write_text("")
    notifier = JsonlNotifier("jsonl", {"path": str(tmp_path / "file" / "alerts.jsonl")})
    with pytest.raises(NotifyError) as caught:
        notifier.send(MESSAGE)
    assert not caught.value.permanent
    assert caught.value.message.startswith(f"cannot append to {tmp_path / 'file' / 'alerts.jsonl'}: ")


# --- e-mail ---------------------------------------------------------------------------------


def test_email_is_received_with_subject_headers_and_body(smtp_server):
    mailbox, port = smtp_server()
    email_notifier(port, to=["desk@example.org", "Night Desk <night@example.org>"]).send(MESSAGE)

    assert mailbox.envelopes == [("newsmon@example.org", ["desk@example.org", "night@example.org"])]
    mail = mailbox.messages[0]
    assert mail["Subject"] == "[newsmon] changed_figure: Riverton flood barrier fails"
    assert mail["From"] == "newsmon@example.org"
    assert mail["To"] == "desk@example.org, Night Desk <night@example.org>"
    assert (mail["X-Newsmon-Alert"], mail["X-Newsmon-Rule"], mail["X-Newsmon-Story"]) == ("17", "floods", "7")
    assert mail["Message-ID"] and mail["Date"]
    body = mail.get_content()
    assert "New:        The council now says 1,200 homes were evacuated, up from 300." in body
    assert "Why new:    closest earlier report (0.74 similar)" in body


def test_email_over_starttls_with_login(smtp_server, certificate, monkeypatch, caplog):
    mailbox, port = smtp_server(
        tls_context=server_tls(certificate),
        require_starttls=True,
        authenticator=accept_newsmon,
        auth_required=True,
    )
    monkeypatch.setenv("NEWSMON_TEST_SMTP_PASSWORD", PASSWORD)
    notifier = email_notifier(
        port,
        security="starttls",
        username="newsmon",
        password_env="NEWSMON_TEST_SMTP_PASSWORD",
        ca_file=str(certificate[0]),
    )
    caplog.set_level(logging.DEBUG)
    notifier.send(MESSAGE)
    assert len(mailbox.messages) == 1
    assert PASSWORD not in repr(notifier) and PASSWORD not in repr(vars(notifier))
    assert PASSWORD not in caplog.text


def test_email_over_ssl_with_password_file(smtp_server, certificate, tmp_path):
    # aiosmtpd counts only STARTTLS as TLS when offering AUTH, so allow AUTH on its SSL port.
    mailbox, port = smtp_server(
        ssl_context=server_tls(certificate), authenticator=accept_newsmon, auth_require_tls=False
    )
    (tmp_path / "password").write_text(PASSWORD + "\n")
    notifier = email_notifier(
        port,
        security="ssl",
        username="newsmon",
        password_file=str(tmp_path / "password"),
        ca_file=str(certificate[0]),
    )
    notifier.send(MESSAGE)
    assert len(mailbox.messages) == 1


def test_email_authentication_failure_is_permanent_and_hides_the_password(
    smtp_server, certificate, monkeypatch, caplog
):
    _, port = smtp_server(
        tls_context=server_tls(certificate), authenticator=accept_newsmon, auth_required=True
    )
    monkeypatch.setenv("NEWSMON_TEST_SMTP_PASSWORD", PASSWORD + "-wrong")
    notifier = email_notifier(
        port,
        security="starttls",
        username="newsmon",
        password_env="NEWSMON_TEST_SMTP_PASSWORD",
        ca_file=str(certificate[0]),
    )
    caplog.set_level(logging.DEBUG)
    with pytest.raises(NotifyError) as caught:
        notifier.send(MESSAGE)
    error = caught.value
    assert error.permanent
    assert error.message.startswith("authentication failed: 535")
    assert PASSWORD not in str(error) and PASSWORD not in caplog.text


def test_email_untrusted_certificate_is_retryable(smtp_server, certificate):
    # Without ca_file the self-signed certificate is not trusted: a setup problem, but one
    # that an operator fixes on the server side while the alert waits.
    _, port = smtp_server(tls_context=server_tls(certificate))
    with pytest.raises(NotifyError) as caught:
        email_notifier(port, security="starttls").send(MESSAGE)
    assert not caught.value.permanent
    assert "CERTIFICATE_VERIFY_FAILED" in caught.value.message


def test_email_server_without_starttls_is_permanent(smtp_server):
    _, port = smtp_server()
    with pytest.raises(NotifyError) as caught:
        email_notifier(port, security="starttls").send(MESSAGE)
    assert caught.value.permanent
    assert caught.value.message == "server does not support it: STARTTLS extension not supported by server."


@pytest.mark.parametrize(
    ("reply", "permanent"),
    [("550 5.1.1 No such mailbox", True), ("451 4.7.1 Greylisted, try again later", False)],
)
def test_email_refused_recipient(smtp_server, reply, permanent):
    mailbox, port = smtp_server()
    mailbox.refuse["desk@example.org"] = reply
    with pytest.raises(NotifyError) as caught:
        email_notifier(port).send(MESSAGE)
    assert caught.value.permanent is permanent
    assert caught.value.message == f"recipients refused: desk@example.org: {reply}"


def test_email_partly_refused_counts_as_delivered(smtp_server, caplog):
    mailbox, port = smtp_server()
    mailbox.refuse["gone@example.org"] = "550 5.1.1 No such mailbox"
    email_notifier(port, to=["desk@example.org", "gone@example.org"]).send(MESSAGE)  # no error
    assert mailbox.envelopes[0][1] == ["desk@example.org"]
    assert "refused for ['gone@example.org']" in caplog.text


def test_email_connection_refused_is_retryable():
    port = free_port()  # nothing listens there
    with pytest.raises(NotifyError) as caught:
        email_notifier(port).send(MESSAGE)
    assert not caught.value.permanent
    assert caught.value.message == f"cannot connect to 127.0.0.1:{port}: Connection refused"


def test_email_timeout_is_retryable():
    # A server that accepts the connection and never says hello.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        with pytest.raises(NotifyError) as caught:
            email_notifier(port, timeout=0.3).send(MESSAGE)
    assert not caught.value.permanent
    assert caught.value.message.startswith(f"cannot connect to 127.0.0.1:{port}: ")
    assert caught.value.message.endswith("timed out")


# --- Slack ----------------------------------------------------------------------------------


def test_slack_posts_blocks_and_fallback_text(slack_server, monkeypatch):
    notifier = slack_notifier(monkeypatch, slack_server.url)
    notifier.send(MESSAGE)
    notifier.close()
    [body] = slack_server.bodies
    assert body["text"] == (
        "Changed figure: Riverton flood barrier fails"
        " — The council now says 1,200 homes were evacuated, up from 300."
    )
    blocks = body["blocks"]
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Changed figure: Riverton flood barrier fails"},
    }
    assert blocks[1]["text"]["text"] == "The council now says 1,200 homes were evacuated, up from 300."
    assert blocks[2]["text"]["text"].startswith("*Why new:* closest earlier report (0.74 similar)")
    assert blocks[3]["elements"][0]["text"] == (
        "<https://gazette.example/flood?id=2&lang=en|Riverton Gazette>"
        " · 2026-11-23 10:05 UTC · score 0.82 · story 7"
    )
    # Slack's mrkdwn escapes: <, > and & in text; the link keeps its URL.
    assert blocks[4]["elements"][0]["text"] == (
        "Also reported by <https://herald.example/x|Valley Herald>, Wire &lt;AP&gt;"
    )
    assert blocks[5]["elements"][0]["text"] == "alert #17 · rule floods"


def test_slack_clips_texts_to_slacks_limits(slack_server, monkeypatch):
    long = dataclasses.replace(VIEW, story_title="T" * 400, text="word " * 2000)
    notifier = slack_notifier(monkeypatch, slack_server.url)
    notifier.send(dataclasses.replace(MESSAGE, development=long))
    notifier.close()
    blocks = slack_server.bodies[0]["blocks"]
    assert len(blocks[0]["text"]["text"]) == 150
    assert len(blocks[1]["text"]["text"]) <= 3000
    assert blocks[1]["text"]["text"].endswith("…")


def test_slack_url_from_a_file(slack_server, tmp_path):
    (tmp_path / "hook").write_text(slack_server.url + "\n")
    notifier = SlackNotifier("ops", {"webhook_url_file": str(tmp_path / "hook")})
    notifier.send(MESSAGE)
    notifier.close()
    assert len(slack_server.bodies) == 1


@pytest.mark.parametrize(
    ("reply", "permanent", "message"),
    [
        ((500, {}, "internal error"), False, "HTTP 500: internal error"),
        ((503, {}, ""), False, "HTTP 503: (no body)"),
        ((403, {}, "invalid_token"), True, "HTTP 403: invalid_token"),
        ((410, {}, "channel_is_archived"), True, "HTTP 410: channel_is_archived"),
        ((400, {}, "invalid_blocks"), True, "HTTP 400: invalid_blocks"),
        ((302, {"Location": "https://slack.com/"}, ""), True,
         "unexpected redirect (HTTP 302); is the webhook URL right?"),
    ],
)  # fmt: skip
def test_slack_errors(slack_server, monkeypatch, reply, permanent, message):
    slack_server.replies.append(reply)
    notifier = slack_notifier(monkeypatch, slack_server.url)
    with pytest.raises(NotifyError) as caught:
        notifier.send(MESSAGE)
    notifier.close()
    assert (caught.value.permanent, caught.value.message) == (permanent, message)
    assert not isinstance(caught.value, RateLimited)


@pytest.mark.parametrize(
    ("header", "retry_after"),
    [({"Retry-After": "30"}, 30.0), ({}, None), ({"Retry-After": "soon"}, None),
     ({"Retry-After": "Thu, 01 Jan 1970 00:00:00 GMT"}, 0.0)],
)  # fmt: skip
def test_slack_rate_limit_is_retryable_with_retry_after(slack_server, monkeypatch, header, retry_after):
    slack_server.replies.append((429, header, "rate_limited"))
    notifier = slack_notifier(monkeypatch, slack_server.url)
    with pytest.raises(RateLimited) as caught:
        notifier.send(MESSAGE)
    notifier.close()
    assert not caught.value.permanent
    assert caught.value.retry_after == retry_after
    assert caught.value.message == "rate limited (HTTP 429): rate_limited"


def test_slack_unknown_hook_is_permanent_and_the_url_is_never_shown(slack_server, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)  # httpx logs each request's URL at INFO: it must not see ours
    wrong = slack_server.url.replace("TOKEN", "TOKEN-revoked")
    notifier = slack_notifier(monkeypatch, wrong)
    with pytest.raises(NotifyError) as caught:
        notifier.send(MESSAGE)
    notifier.close()
    error = caught.value
    assert (error.permanent, error.message) == (True, "HTTP 404: no_service")
    for text in (str(error), repr(notifier), repr(vars(notifier)), caplog.text):
        assert "secretTOKEN" not in text and "/services/" not in text


def test_slack_down_is_retryable_and_hides_the_url(monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    port = free_port()  # nothing listens there
    notifier = slack_notifier(monkeypatch, f"http://127.0.0.1:{port}{SLACK_PATH}")
    with pytest.raises(NotifyError) as caught:
        notifier.send(MESSAGE)
    notifier.close()
    assert not caught.value.permanent
    assert caught.value.message.startswith("cannot reach Slack: ConnectError: ")
    assert "secretTOKEN" not in str(caught.value) and "secretTOKEN" not in caplog.text


def test_slack_timeout_is_retryable(slack_server, monkeypatch):
    slack_server.replies.append((0, {}, ""))  # hang
    notifier = slack_notifier(monkeypatch, slack_server.url, timeout=0.3)
    with pytest.raises(NotifyError) as caught:
        notifier.send(MESSAGE)
    notifier.close()
    assert (caught.value.permanent, caught.value.message) == (False, "no answer within 0.3s")
