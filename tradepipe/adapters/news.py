"""Headlines for the sentiment agent, from a local file or an RSS/Atom feed.

``load_headlines`` answers three different situations differently, because the agent must tell
them apart:

* no feed configured (``None`` or a blank string) -> ``None``: the sentiment agent abstains;
* a feed that works -> a tuple of headlines published in ``[now - max_age, now]`` (possibly
  empty: no news is a fact, not a failure);
* a feed that is configured but unreadable -> :class:`NewsFeedError`; the caller records the
  reason and the agent abstains for this cycle.

Headlines dated after ``now_ms`` are dropped (a backtest must not read tomorrow's news), and so
are entries without a date (they cannot be placed in time).

Local files (a path, or ``file://`` + path), UTF-8:

* RSS or Atom XML (the text starts with ``<``), parsed with feedparser; or
* one headline per line, either ``ISO-8601 timestamp<TAB>title`` or a JSON object
  ``{"published": ..., "title": ..., "source": ...}`` (``source`` optional). ``published`` is an
  ISO-8601 string (``2024-03-01T12:00:00Z``; no offset means UTC) or integer milliseconds since
  the epoch. Blank lines and lines starting with ``#`` are skipped; any other malformed line
  makes the whole file an error that names the line.

``http://`` and ``https://`` feeds are downloaded with ``fetch`` (default: urllib, 10 s timeout)
and parsed with feedparser. A malformed feed (feedparser's "bozo" flag, e.g. a truncated
download) still yields the entries that could be read; content that is no RSS/Atom at all, or
a malformed feed with no readable entry, is an error.
"""

from __future__ import annotations

import base64
import calendar
import http.client
import json
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable


from tradepipe.core.redaction import redact
from tradepipe.core.types import Headline

__all__ = ["NewsFeedError", "fetch_url", "load_headlines"]

_HOUR_MS = 3_600_000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
Fetch = Callable[[str], bytes]


class NewsFeedError(Exception):
    """``feed`` is configured but cannot be read; the caller records ``reason`` and the sentiment agent abstains."""

    def __init__(self, feed: str, reason: str) -> None:
        # The feed address may carry credentials (user:password@, ?token=), and so may the error
        # text that quotes it: both are redacted before they can reach a signal reason or metadata.
        feed, reason = redact(feed), redact(reason, feed)
        super().__init__(f"news feed {feed}: {reason}")
        self.feed = feed
        self.reason = reason


DEFAULT_TIMEOUT_S = 10.0


def fetch_url(url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> bytes:
    """The body at ``url`` (one GET, no retries: a missed cycle of news costs little)."""
    address, authorization = _split_credentials(url)
    headers = {"User-Agent": "tradepipe/0.1 feedparser"}
    if authorization:
        headers["Authorization"] = authorization
    request = urllib.request.Request(address, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return bytes(response.read())


def _split_credentials(url: str) -> tuple[str, str | None]:
    """``http://user:password@host/feed`` -> (``http://host/feed``, a Basic ``Authorization`` value).

    urllib cannot send URL credentials itself: it would take ``password@host`` for a port."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return url, None
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    token = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
    address = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return address, "Basic " + base64.b64encode(token.encode()).decode("ascii")


def load_headlines(
    feed: str | None,
    now_ms: int,
    max_age_hours: float = 24,
    fetch: Fetch = fetch_url,
) -> tuple[Headline, ...] | None:
    """Headlines from ``feed`` published in ``[now_ms - max_age_hours, now_ms]``, oldest first.

    ``None`` when no feed is configured; raises :class:`NewsFeedError` when one is configured but
    cannot be fetched, read or parsed.
    """
    if feed is None or not feed.strip():
        return None
    feed = feed.strip()
    headlines = _from_url(feed, fetch) if feed.startswith(("http://", "https://")) else _from_file(feed)
    oldest = now_ms - int(max_age_hours * _HOUR_MS)
    recent = (headline for headline in headlines if oldest <= headline.published_ms <= now_ms)
    return tuple(sorted(recent, key=lambda headline: (headline.published_ms, headline.title)))


def _from_url(url: str, fetch: Fetch) -> list[Headline]:
    try:
        content = fetch(url)
    except (OSError, ValueError, http.client.HTTPException) as error:  # URLError, HTTPError, timeouts are OSErrors
        raise NewsFeedError(url, f"cannot fetch: {type(error).__name__}: {error}") from error
    return _from_feed_xml(url, content)


def _from_file(feed: str) -> list[Headline]:
    path = Path(feed.removeprefix("file://"))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise NewsFeedError(feed, f"cannot read {path}: {error}") from error
    if text.lstrip().startswith("<"):
        return _from_feed_xml(feed, text.encode("utf-8"))
    return [_from_line(feed, number, line) for number, line in enumerate(text.splitlines(), 1) if _is_headline_line(line)]


def _from_feed_xml(feed: str, content: bytes) -> list[Headline]:
    import feedparser  # only a feed in XML needs it; every trading-cycle run imports this module

    # Bytes, never a str: feedparser treats a str that looks like a path or URL as one and opens it.
    parsed = feedparser.parse(content)
    broken = parsed.get("bozo") and not parsed.entries  # malformed and nothing readable in it
    if broken or not parsed.get("version"):
        detail = f": {parsed.get('bozo_exception')}" if parsed.get("bozo") else ""
        raise NewsFeedError(feed, f"not an RSS or Atom feed{detail}")
    source = str(parsed.feed.get("title") or feed)
    return [headline for entry in parsed.entries if (headline := _from_entry(entry, source)) is not None]


def _from_entry(entry: Any, source: str) -> Headline | None:
    title = str(entry.get("title") or "").strip()
    published = entry.get("published_parsed") or entry.get("updated_parsed")  # a UTC struct_time
    if not title or published is None:
        return None
    return Headline(title=title, published_ms=calendar.timegm(published) * 1000, source=source)


def _is_headline_line(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _from_line(feed: str, number: int, line: str) -> Headline:
    try:
        if line.lstrip().startswith("{"):
            record = json.loads(line)
            published, title, source = record["published"], record["title"], record.get("source", "")
        else:
            published, title = line.split("\t", 1)
            source = Path(feed).name
        headline = Headline(title=str(title).strip(), published_ms=_epoch_ms(published), source=str(source))
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        expected = "expected 'ISO-timestamp<TAB>title' or JSON with published and title"
        raise NewsFeedError(feed, f"line {number}: {expected} ({error!r})") from error
    if not headline.title:
        raise NewsFeedError(feed, f"line {number}: empty title")
    return headline


def _epoch_ms(published: Any) -> int:
    """ISO-8601 text (UTC when it has no offset) or integer milliseconds, as ms since the epoch."""
    if isinstance(published, int) and not isinstance(published, bool):
        return published
    moment = datetime.fromisoformat(str(published).strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - _EPOCH) // timedelta(milliseconds=1)  # exact: no float seconds in between
