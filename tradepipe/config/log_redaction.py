"""Every log record of the process passes through ``redact`` before any handler sees it.

Libraries log what they request: ccxt's DEBUG log line is ``GET http://key:secret@host/...``, a driver
may quote its connection string. A log record factory is the one place every record (tradepipe's,
a library's, Dagster's) is made, so redacting there covers them all without a filter per logger.
"""

from __future__ import annotations

import logging
from typing import Any

from tradepipe.core.redaction import might_hold_secret, redact

_installed = False


def install_log_redaction() -> None:
    """Wrap the log record factory once per process (importing ``tradepipe`` does it)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed format string: leave it to the handler to report
            return record
        if might_hold_secret(message):  # most records hold none of the shapes a credential takes: skip the patterns
            cleaned = redact(message)
            if cleaned != message:
                record.msg, record.args = cleaned, ()
        return record

    logging.setLogRecordFactory(make_record)
    _installed = True
