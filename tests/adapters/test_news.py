"""News adapter, offline: feeds are files written by the test or bytes handed to a fake fetch."""

from __future__ import annotations

import json
import urllib.error
from pathlib import Path

import pytest

from tradepipe.adapters.news import NewsFeedError, load_headlines
from tradepipe.core.types import Headline

NOW = 1_736_172_000_000  # 2025-01-06T14:00:00Z
HOUR = 3_600_000

RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel>
  <title>Crypto Wire</title>
  <item><title>Bitcoin ETF inflows hit record</title><pubDate>Mon, 06 Jan 2025 10:00:00 GMT</pubDate></item>
  <item><title>Exchange hack drains &amp; freezes wallets</title><pubDate>Mon, 06 Jan 2025 08:30:00 +0100</pubDate></item>
  <item><title>Yesterday's old story</title><pubDate>Sat, 04 Jan 2025 09:00:00 GMT</pubDate></item>
  <item><title>Tomorrow's story, not known yet</title><pubDate>Mon, 06 Jan 2025 15:00:00 GMT</pubDate></item>
  <item><title>Undated rumour</title></item>
</channel></rss>
"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Chain Log</title>
  <entry><title>Ether upgrade ships</title><updated>2025-01-06T12:00:00Z</updated></entry>
</feed>
"""


def test_no_feed_means_no_headlines_so_the_agent_abstains():
    assert load_headlines(None, NOW) is None
    assert load_headlines("  ", NOW) is None


def test_rss_file_gives_recent_dated_headlines_oldest_first(tmp_path: Path):
    feed = tmp_path / "wire.xml"
    feed.write_bytes(RSS)
    assert load_headlines(str(feed), NOW) == (
        Headline("Exchange hack drains & freezes wallets", NOW - 13 * HOUR // 2, "Crypto Wire"),  # 08:30 +01:00 is 07:30Z
        Headline("Bitcoin ETF inflows hit record", NOW - 4 * HOUR, "Crypto Wire"),
    )
    assert [h.title for h in load_headlines(f"file://{feed}", NOW, max_age_hours=5)] == ["Bitcoin ETF inflows hit record"]


def test_url_feed_is_fetched_and_parsed(tmp_path: Path):
    asked: list[str] = []

    def fetch(url: str) -> bytes:
        asked.append(url)
        return ATOM

    headlines = load_headlines("https://news.example/feed.atom", NOW, fetch=fetch)
    assert asked == ["https://news.example/feed.atom"]
    assert headlines == (Headline("Ether upgrade ships", NOW - 2 * HOUR, "Chain Log"),)


def test_unreachable_feed_raises_news_feed_error():
    def offline(url: str) -> bytes:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    with pytest.raises(NewsFeedError, match="cannot fetch: URLError") as raised:
        load_headlines("https://news.example/rss", NOW, fetch=offline)
    assert raised.value.feed == "https://news.example/rss"


def test_content_that_is_no_feed_raises_news_feed_error(tmp_path: Path):
    with pytest.raises(NewsFeedError, match="not an RSS or Atom feed"):
        load_headlines("http://news.example/rss", NOW, fetch=lambda url: b"<html><body>Service Unavailable</body></html>")
    broken = tmp_path / "broken.xml"
    broken.write_text("<rss><chan")
    with pytest.raises(NewsFeedError, match="not an RSS or Atom feed"):
        load_headlines(str(broken), NOW)


def test_a_working_feed_without_recent_news_is_an_empty_tuple(tmp_path: Path):
    feed = tmp_path / "quiet.xml"
    feed.write_bytes(b'<rss version="2.0"><channel><title>Quiet</title></channel></rss>')
    assert load_headlines(str(feed), NOW) == ()


def test_line_files_take_tab_separated_and_json_lines(tmp_path: Path):
    feed = tmp_path / "headlines.txt"
    feed.write_text(
        "# my notes\n"
        "2025-01-06T13:00:00Z\tSOL network halts for an hour\n"
        "\n"
        + json.dumps({"published": "2025-01-06T12:00:00+00:00", "title": "BNB burn completed", "source": "desk"})
        + "\n"
        + json.dumps({"published": NOW - HOUR // 2, "title": "XRP ruling appealed"})
        + "\n"
        "2025-01-06T11:00:00\tNaive timestamps are UTC\n"
        "2025-01-01T00:00:00Z\tToo old\n"
    )
    assert load_headlines(str(feed), NOW) == (
        Headline("Naive timestamps are UTC", NOW - 3 * HOUR, "headlines.txt"),
        Headline("BNB burn completed", NOW - 2 * HOUR, "desk"),
        Headline("SOL network halts for an hour", NOW - HOUR, "headlines.txt"),
        Headline("XRP ruling appealed", NOW - HOUR // 2, ""),
    )


def test_malformed_lines_and_missing_files_raise_news_feed_error(tmp_path: Path):
    feed = tmp_path / "headlines.txt"
    feed.write_text("2025-01-06T13:00:00Z\tfine\nyesterday: something happened\n")
    with pytest.raises(NewsFeedError, match="line 2: expected"):
        load_headlines(str(feed), NOW)
    feed.write_text('{"title": "no date"}\n')
    with pytest.raises(NewsFeedError, match="line 1"):
        load_headlines(str(feed), NOW)
    with pytest.raises(NewsFeedError, match="cannot read"):
        load_headlines(str(tmp_path / "absent.txt"), NOW)
