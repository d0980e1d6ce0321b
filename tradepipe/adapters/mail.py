"""SMTP delivery with the standard library: implicit TLS (port 465) or STARTTLS, a timeout, one clear error.

The password is used for ``login`` only: it is never part of an error message, a log line or ``repr``.
STARTTLS is required when asked for: a server that does not offer it gets no credentials in clear.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Literal, Sequence

Security = Literal["implicit", "starttls", "none"]
IMPLICIT_TLS_PORT = 465


class MailDeliveryError(RuntimeError):
    """A message was not delivered. ``kind``: refused, timeout, tls, auth, rejected, smtp, not_configured."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = ""
    starttls: bool = True
    implicit_tls: bool | None = None
    """None: implicit TLS on port 465, else STARTTLS when ``starttls``."""
    timeout_s: float = 20.0
    ca_file: str | None = None
    """A CA bundle to trust instead of the system's (a relay with its own certificate authority)."""

    @property
    def security(self) -> Security:
        implicit = self.port == IMPLICIT_TLS_PORT if self.implicit_tls is None else self.implicit_tls
        if implicit:
            return "implicit"
        return "starttls" if self.starttls else "none"

    @property
    def from_address(self) -> str:
        return self.sender or self.user or f"tradepipe@{self.host}"

    def describe(self) -> str:
        """Where mail goes, for logs and the CLI (never the password)."""
        who = f"{self.user}@" if self.user else ""
        return f"smtp://{who}{self.host}:{self.port} ({self.security}, timeout {self.timeout_s:g} s)"


def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def _context(settings: SmtpSettings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=settings.ca_file)


def send_message(settings: SmtpSettings, message: EmailMessage | bytes, recipients: Sequence[str]) -> None:
    """Deliver ``message`` to ``recipients`` or raise ``MailDeliveryError`` (nothing else)."""
    if not recipients:
        raise MailDeliveryError("not_configured", "no recipients")
    # SMTP wants CRLF line ends; smtplib leaves a bytes payload's bare LFs alone.
    # email.policy builds its header parser on import (~0.8 s on a busy host): only a send needs it,
    # and every trading-cycle run imports this module.
    from email.policy import SMTP as SMTP_POLICY

    payload = message.as_bytes(policy=SMTP_POLICY) if isinstance(message, EmailMessage) else message
    try:
        client: smtplib.SMTP
        if settings.security == "implicit":
            client = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout_s, context=_context(settings))
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s)
        with client:
            client.ehlo()
            if settings.security == "starttls":
                if not client.has_extn("starttls"):
                    raise MailDeliveryError("tls", f"{settings.host}:{settings.port} does not offer STARTTLS (set TRADEPIPE_SMTP_STARTTLS=0 only for a trusted local relay)")
                client.starttls(context=_context(settings))
                client.ehlo()
            if settings.user:
                client.login(settings.user, settings.password or "")
            refused = client.sendmail(settings.from_address, list(recipients), payload)
        if refused:
            raise MailDeliveryError("rejected", f"recipients refused: {sorted(refused)}")
    except MailDeliveryError:
        raise
    except smtplib.SMTPAuthenticationError as exc:
        raise MailDeliveryError("auth", f"authentication failed for {settings.user!r} at {settings.host}:{settings.port}: {exc.smtp_code} {_redact(_text(exc.smtp_error), settings.password)}") from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise MailDeliveryError("rejected", f"recipients refused: {sorted(exc.recipients)}") from None
    except (socket.timeout, TimeoutError):
        raise MailDeliveryError("timeout", f"{settings.host}:{settings.port} did not answer within {settings.timeout_s:g} s") from None
    except ssl.SSLError as exc:
        raise MailDeliveryError("tls", f"TLS with {settings.host}:{settings.port} failed: {exc.reason or exc}") from None
    except ConnectionRefusedError:
        raise MailDeliveryError("refused", f"connection to {settings.host}:{settings.port} refused") from None
    except (smtplib.SMTPException, OSError) as exc:
        if "timed out" in str(exc):  # smtplib reports a silent server as "Connection unexpectedly closed: timed out"
            raise MailDeliveryError("timeout", f"{settings.host}:{settings.port} did not answer within {settings.timeout_s:g} s") from None
        raise MailDeliveryError("smtp", f"{settings.host}:{settings.port}: {_redact(str(exc), settings.password)}") from None


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
