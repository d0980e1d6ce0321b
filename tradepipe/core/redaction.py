"""Removing credentials from text before it reaches a message, a log line, a table or the UI.

One helper for every outside address tradepipe handles (database, Redis, news feed, exchange): the
user-info part of a URL that carries a password (``scheme://user:password@host``), the values of query
parameters that carry secrets (``?token=...``, ``&signature=...``) and of secret headers or fields in a
printed dict or JSON (``'X-MBX-APIKEY': '...'``, ``"secret": "..."``, as ccxt logs its requests) are
replaced by ``***``. A user name alone is no secret and stays readable (``postgresql://tradepipe@db/x``).
Error texts from drivers and HTTP libraries often quote the address they failed on, so every such text
passes through here.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

# scheme://user:password@ ... : everything between "//" and the last "@" before the host part, when it
# holds a password (a ":"); "scheme://user@host" names a user and is left as it is.
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<userinfo>[^\s/?#@'\"<>:]*:[^\s/?#@'\"<>]*)@")
# key=value in a query string (or in a libpq-style "password=..." connection string).
_SECRET_PARAMETER = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd|pass|token|access_token|auth|apikey|api_key|api-key|key|secret|"
    r"signature|sig|client_secret)=)(?P<value>[^\s&#'\"<>]+)",
    re.IGNORECASE,
)


# 'name': 'value' or "name": "value" (a printed dict of HTTP headers or parameters, JSON) whose name says
# it is a key, a secret, a signature, a token or a password: X-MBX-APIKEY, apiKey, ACCESS-SIGN, secret...
_SECRET_FIELD = re.compile(
    r"(?P<key>(?P<quote>['\"])[\w.-]*(?:api[-_]?key|secret|sign|token|passw(?:or)?d|passphrase|auth)[\w.-]*(?P=quote)\s*:\s*)"
    r"(?P<open>['\"])(?P<value>[^'\"]*)(?P=open)",
    re.IGNORECASE,
)
_HINTS = ("@", "=", "key", "secret", "sign", "token", "passw", "auth")


def might_hold_secret(text: str) -> bool:
    """False when ``text`` cannot hold anything ``redact`` masks: lets a log filter skip the patterns."""
    lowered = text.lower()
    return any(hint in lowered for hint in _HINTS)


def secrets_in(url: str) -> list[str]:
    """The secret parts of ``url``: its user-info, its password alone, and secret query values.

    Some errors quote a secret without its URL around it (``http.client``'s "nonnumeric port:
    'password@host'"), so callers that know the address pass it to ``redact`` to mask these too."""
    found: list[str] = []
    for match in _USERINFO.finditer(url or ""):
        userinfo = match["userinfo"]
        _, _, password = userinfo.partition(":")
        if password:  # the user name alone is no secret (and "postgres" is also in "postgresql")
            found += [userinfo, password]
    found.extend(match["value"] for match in _SECRET_PARAMETER.finditer(url or ""))
    # Longest first, so a password is not masked inside its own user-info before the whole is.
    return sorted({secret for secret in found if len(secret) >= 3}, key=len, reverse=True)


def redact(text: str, *known_urls: str | None) -> str:
    """``text`` with every URL credential and secret-looking query value replaced by ``***``;
    the secrets of ``known_urls`` (the addresses the text may be about) wherever they appear."""
    if not text:
        return text
    for url in known_urls:
        for secret in secrets_in(url or ""):
            text = text.replace(secret, MASK)
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    text = _SECRET_FIELD.sub(lambda m: f"{m['key']}{m['open']}{MASK}{m['open']}", text)
    return _SECRET_PARAMETER.sub(lambda m: f"{m['key']}{MASK}", text)


def redact_value(value: Any) -> Any:
    """``redact`` applied to every string inside nested dicts, lists and tuples (metadata, JSON columns)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(item) for item in value)
    return value


__all__ = ["MASK", "might_hold_secret", "redact", "redact_value", "secrets_in"]
