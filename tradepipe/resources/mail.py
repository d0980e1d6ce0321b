"""[`mail`] The SMTP relay reports go out through, and who receives them.

The password is a ``dg.EnvVar`` (TRADEPIPE_SMTP_PASSWORD): the Resources page and run config show the
variable's name, never its value. Non-secret values set here (from TRADEPIPE_SMTP_* and
TRADEPIPE_REPORT_RECIPIENTS) win; what is left empty is taken from the ``email_config`` row that
``tradepipe email configure`` stores (see ``effective``).
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field

from tradepipe.adapters.mail import SmtpSettings


class MailResource(dg.ConfigurableResource):
    host: str | None = None
    port: int | None = None
    """None: the stored port, else 587."""
    user: str | None = None
    password: str | None = Field(default=None, repr=False)
    sender: str | None = None
    starttls: bool | None = None
    implicit_tls: bool | None = None
    """None: implicit TLS on port 465, STARTTLS elsewhere (unless starttls is off)."""
    timeout_s: float = 20.0
    ca_file: str | None = None
    recipients: list[str] = []

    def effective(self, stored: dict[str, Any] | None) -> tuple[SmtpSettings | None, list[str]]:
        """SMTP settings and recipients, this resource's values over the stored ``email_config`` ones.

        ``None`` settings: no host anywhere, so nothing can be sent."""
        stored = stored or {}
        host = self.host or stored.get("smtp_host")
        recipients = list(self.recipients) or list(stored.get("recipients") or [])
        if not host:
            return None, recipients
        settings = SmtpSettings(
            host=host,
            port=self.port or stored.get("smtp_port") or 587,
            user=self.user or stored.get("smtp_user"),
            password=self.password,
            sender=self.sender or stored.get("sender") or "",
            starttls=self.starttls if self.starttls is not None else stored.get("use_starttls", True),
            implicit_tls=self.implicit_tls,
            timeout_s=self.timeout_s,
            ca_file=self.ca_file,
        )
        return settings, recipients
