"""Where reports are emailed (``email_config``): the SMTP settings a user stores with ``tradepipe email configure``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tradepipe.adapters.db.models import (
    EmailConfigRow,
)


_EMAIL_FIELDS = ("smtp_host", "smtp_port", "smtp_user", "use_starttls", "sender", "recipients", "enabled")


def load_email_config(session: Session) -> dict[str, Any] | None:
    """The stored non-secret email settings (the newest row), or None; a disabled row counts as none."""
    row = session.scalars(select(EmailConfigRow).order_by(EmailConfigRow.id.desc()).limit(1)).first()
    if row is None or not row.enabled:
        return None
    return {name: getattr(row, name) for name in _EMAIL_FIELDS}


def store_email_config(session: Session, **values: Any) -> EmailConfigRow:
    """Update the one email_config row (create it on first use) with the given non-secret values."""
    unknown = set(values) - set(_EMAIL_FIELDS)
    if unknown:
        raise ValueError(f"email_config has no column for {sorted(unknown)} (the password comes from TRADEPIPE_SMTP_PASSWORD)")
    row = session.scalars(select(EmailConfigRow).order_by(EmailConfigRow.id.desc()).limit(1)).first()
    if row is None:
        row = EmailConfigRow(smtp_host=values.get("smtp_host") or "")
        session.add(row)
    for name, value in values.items():
        setattr(row, name, value)
    session.flush()
    return row
