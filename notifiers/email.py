"""Send each alert as a plain-text e-mail over SMTP (stdlib smtplib)."""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from monitor.errors import NotifyError
from notifiers.base import (
    AlertMessage,
    Options,
    one_of,
    parse_options,
    read_secret,
    redact,
    refuse_inline_secret,
)
from notifiers.text import render_text, subject

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"ssl": 465, "starttls": 587, "none": 25}


def _address(value: str) -> str:
    """Accept `a@example.org` or `Name <a@example.org>`; refuse what could inject headers."""
    if any(char in value for char in "\r\n"):
        raise ValueError("an address cannot contain a line break")
    _, address = parseaddr(value)
    local, at, domain = address.rpartition("@")
    if not (local and at and domain) or any(char.isspace() for char in address):
        raise ValueError(f"not an e-mail address: {value!r}")
    return value


class EmailOptions(Options):
    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)  # default: 465 (ssl), 587 (starttls), 25
    security: Literal["starttls", "ssl", "none"] = "starttls"
    sender: str = Field(alias="from")
    to: tuple[str, ...] = Field(min_length=1)
    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    ca_file: Path | None = None  # trust this CA too (a company relay, a test server)
    timeout: float = Field(default=30.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _no_inline_password(cls, data: Any) -> Any:
        return refuse_inline_secret(data, "password", "password")

    @field_validator("to", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("sender")
    @classmethod
    def _check_sender(cls, value: str) -> str:
        return _address(value)

    @field_validator("to")
    @classmethod
    def _check_to(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_address(address) for address in value)

    @model_validator(mode="after")
    def _credentials(self) -> EmailOptions:
        if self.username is None:
            if self.password_env is not None or self.password_file is not None:
                raise ValueError("a password is set but no username")
            return self
        one_of(self, "password_env", "password_file")
        if self.security == "none":
            raise ValueError("refusing to send a password unencrypted: use security 'starttls' or 'ssl'")
        return self


class EmailNotifier:
    """One plain-text e-mail per alert, subject `[newsmon] <kind>: <story title>`.

    Options: `host`, `port` (default 587, or 465 with ssl, 25 with none), `security`
    ("starttls" default, "ssl", "none"), `from`, `to` (an address or a list), `username`
    with `password_env` or `password_file`, `ca_file`, `timeout` (seconds, default 30).

    Outcomes: authentication refused, a 5xx reply (550 no such mailbox) or a server without
    STARTTLS are permanent; no connection, a timeout, a dropped connection or a 4xx reply
    (greylisting, mailbox busy) are retried.
    """

    kind = "email"

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        self.name = name
        self.options = parse_options(EmailOptions, name, options)
        self._password = None
        if self.options.username is not None:
            self._password = read_secret(
                name, "password", self.options.password_env, self.options.password_file
            )
        self.port = self.options.port or DEFAULT_PORTS[self.options.security]

    def compose(self, message: AlertMessage) -> EmailMessage:
        view = message.feed_event or message.development
        assert view is not None
        mail = EmailMessage()
        mail["Subject"] = subject(view)
        mail["From"] = self.options.sender
        mail["To"] = ", ".join(self.options.to)
        mail["Date"] = formatdate(localtime=False, usegmt=True)
        mail["Message-ID"] = make_msgid(domain="newsmon.invalid")
        # For the reader's filters, and to find a mail again from `newsmon alerts list`.
        mail["X-Newsmon-Alert"] = str(message.alert_id)
        mail["X-Newsmon-Rule"] = message.rule
        if message.development is not None:
            mail["X-Newsmon-Story"] = str(message.development.story_id)
        else:
            mail["X-Newsmon-Feed"] = str(view.feed_id)
        mail.set_content(render_text(message))
        return mail

    def send(self, message: AlertMessage) -> None:
        mail = self.compose(message)
        try:
            smtp = self._connect()
        except OSError as error:  # refused, unreachable, DNS, timeout, TLS handshake
            raise self._error(
                f"cannot connect to {self.options.host}:{self.port}: {_describe(error)}"
            ) from None
        try:
            if self.options.security == "starttls":
                smtp.starttls(context=self._tls_context())
            if self._password is not None:
                smtp.login(self.options.username or "", self._password.get_secret_value())
            refused = smtp.send_message(mail)
        except smtplib.SMTPAuthenticationError as error:
            raise self._error(f"authentication failed: {_reply(error)}", permanent=True) from None
        except smtplib.SMTPRecipientsRefused as error:
            replies = error.recipients.values()
            permanent = all(code >= 500 for code, _ in replies)
            detail = "; ".join(f"{to}: {code} {_text(text)}" for to, (code, text) in error.recipients.items())
            raise self._error(f"recipients refused: {detail}", permanent=permanent) from None
        except smtplib.SMTPResponseException as error:  # sender refused, data refused, …
            raise self._error(f"server replied {_reply(error)}", permanent=error.smtp_code >= 500) from None
        except smtplib.SMTPNotSupportedError as error:  # no STARTTLS, no AUTH: a setup problem
            raise self._error(f"server does not support it: {error}", permanent=True) from None
        except OSError as error:  # smtplib.SMTPServerDisconnected and socket errors
            raise self._error(f"connection failed: {_describe(error)}") from None
        finally:
            _quit_quietly(smtp)
        if refused:
            # Some recipients took the mail: sending again would duplicate it for them, so this
            # counts as delivered; the refusals are worth a warning.
            log.warning("channel %s: alert %s refused for %s", self.name, message.alert_id, sorted(refused))

    def _connect(self) -> smtplib.SMTP:
        if self.options.security == "ssl":
            return smtplib.SMTP_SSL(
                self.options.host, self.port, timeout=self.options.timeout, context=self._tls_context()
            )
        return smtplib.SMTP(self.options.host, self.port, timeout=self.options.timeout)

    def _tls_context(self) -> ssl.SSLContext:
        cafile = str(self.options.ca_file) if self.options.ca_file else None
        return ssl.create_default_context(cafile=cafile)

    def _error(self, text: str, permanent: bool = False) -> NotifyError:
        secret = self._password.get_secret_value() if self._password else None
        return NotifyError(self.name, redact(text, [secret]), permanent=permanent)

    def close(self) -> None:
        pass  # one connection per alert; nothing stays open

    def __repr__(self) -> str:
        return f"<EmailNotifier {self.name!r} {self.options.host}:{self.port}>"


def _text(raw: bytes | str) -> str:
    return (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw).strip()


def _reply(error: smtplib.SMTPResponseException) -> str:
    return f"{error.smtp_code} {_text(error.smtp_error)}"


def _describe(error: OSError) -> str:
    return error.strerror or str(error) or type(error).__name__


def _quit_quietly(smtp: smtplib.SMTP) -> None:
    """Say goodbye without letting a failed QUIT undo a delivered mail (smtplib's `with` would)."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
