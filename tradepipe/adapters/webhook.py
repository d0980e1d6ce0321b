"""A generic JSON webhook over the standard library (urllib), with a timeout and bounded retries.

The body carries the message under ``text`` (Slack, Mattermost and most chat bridges) and
``content`` (Discord), plus ``event`` and ``details`` for anything that parses JSON. Discord
ignores the extra keys; Slack and Mattermost ignore ``content``.

The URL is a secret (it authorises posting): it is never logged, never put in an exception message,
and a delivery failure is described by its kind (HTTP status, refused, timeout), not by the URL.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Mapping

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_ATTEMPTS = 3


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    attempts: int
    error: str | None = None


def payload(event: str, text: str, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"text": text, "content": text, "event": event, "details": dict(details or {})}


def _post_once(url: str, body: bytes, timeout_s: float) -> None:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", "User-Agent": "tradepipe-alerts"}
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (http(s) only, checked by the caller)
        response.read()


def _describe(exc: BaseException) -> str:
    """What went wrong, without the URL."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        if isinstance(reason, ConnectionRefusedError):
            return "connection refused"
        if isinstance(reason, (socket.timeout, TimeoutError)):
            return "timed out"
        if isinstance(reason, socket.gaierror):
            return "host name not resolved"
        return f"network error ({type(reason).__name__})"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    return f"{type(exc).__name__}"


def post_json(
    url: str,
    body: Mapping[str, Any],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    attempts: int = DEFAULT_ATTEMPTS,
    backoff_s: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """POST ``body`` as JSON; retry network errors and 5xx/429 with doubling back-off. Never raises."""
    if not url.startswith(("http://", "https://")):
        return Delivery(False, 0, "webhook URL must start with http:// or https://")
    data = json.dumps(body, default=str).encode("utf-8")
    error = None
    for attempt in range(1, attempts + 1):
        try:
            _post_once(url, data, timeout_s)
            return Delivery(True, attempt)
        except Exception as exc:  # noqa: BLE001 - an alert must never take the pipeline down
            error = _describe(exc)
            retryable = not isinstance(exc, urllib.error.HTTPError) or exc.code >= 500 or exc.code == 429
            if not retryable:
                return Delivery(False, attempt, error)
        if attempt < attempts:
            sleep(backoff_s * 2 ** (attempt - 1))
    return Delivery(False, attempts, error)
