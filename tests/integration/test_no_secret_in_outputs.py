"""No credential from any URL reaches an output: a password planted in each URL, every output grepped.

On SQLite and PostgreSQL. Planted: the database URL's password (PostgreSQL; a trust-auth server ignores it), the Redis URL's
password, the news feed's ``user:password@`` and ``?token=`` (a real HTTP server on loopback that
answers 503, so the feed's error path runs), and an exchange API URL with credentials (a ccxt
exchange pointed at a closed port, so its error quotes the URL). Grepped: every row of every table,
every log record (all loggers, DEBUG), stdout/stderr, the ``portfolio_state`` metadata and the
Dagster event log of a real run, and the CLI's output, including its error lines.
"""

from __future__ import annotations

import base64
import http.server
import json
import logging
import threading
from typing import Any, Iterator

import ccxt
import dagster as dg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from tests.integration.ledger_checks import assert_book_is_a_replay_of_its_fills
from tradepipe.adapters.db.engine import get_engine, upgrade
from tradepipe.adapters.db.models import Base
from tradepipe.adapters.market import CcxtMarket, SyntheticMarket
from tradepipe.assets.portfolio import portfolio_metadata, portfolio_state
from tradepipe.cli.main import main as cli
from tradepipe.core.redaction import redact
from tradepipe.resources import build_resources
from tradepipe.trading.runner import TradingRunner
from tradepipe.config.settings import load_settings

BAR0 = 1_700_000_040_000
M = 60_000
DB_PASSWORD = "PlantedDbPw41"
REDIS_PASSWORD = "PlantedRedisPw42"
FEED_PASSWORD = "PlantedFeedPw43"
FEED_TOKEN = "PlantedFeedToken44"
EXCHANGE_PASSWORD = "PlantedExchangePw45"
SECRETS = (DB_PASSWORD, REDIS_PASSWORD, FEED_PASSWORD, FEED_TOKEN, EXCHANGE_PASSWORD)


class MixedMarket:
    """BTC and ETH from the synthetic market, SOL from a ccxt exchange whose API URL carries credentials."""

    name = "synthetic"

    def __init__(self) -> None:
        self.synthetic = SyntheticMarket(seed=7, symbols=["BTC/USDT", "ETH/USDT", "SOL/USDT"])
        exchange = ccxt.binance({"enableRateLimit": False, "timeout": 2000})
        exchange.urls["api"] = {key: f"http://apikey:{EXCHANGE_PASSWORD}@127.0.0.1:1/api" for key in exchange.urls["api"]}
        self.exchange = CcxtMarket("binance", exchange=exchange, max_retries=0)

    def closed_bars(self, symbol: str, timeframe: str, end_ms: int, limit: int) -> Any:
        source = self.exchange if symbol == "SOL/USDT" else self.synthetic
        return source.closed_bars(symbol, timeframe, end_ms, limit)


@pytest.fixture
def feed_server() -> Iterator[tuple[str, list[str]]]:
    """A feed that needs Basic auth and is failing (503); records the Authorization headers it got."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            seen.append(self.headers.get("Authorization", ""))
            self.send_response(503)
            self.end_headers()
            self.wfile.write(b"feed is down")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://reader:{FEED_PASSWORD}@127.0.0.1:{server.server_address[1]}/feed.xml?token={FEED_TOKEN}", seen
    finally:
        server.shutdown()
        server.server_close()


def every_row(url: str) -> str:
    """Every value of every table, as text."""
    chunks = []
    with get_engine(url).connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(sa.select(table)):
                chunks.append(json.dumps([str(v) for v in row], default=str))
    return "\n".join(chunks)


def assert_clean(where: str, text: str) -> None:
    leaked = [secret for secret in SECRETS if secret in text]
    assert not leaked, f"{where} leaks {leaked}"


def test_no_planted_credential_reaches_any_output(
    database_url: str, redis_url: str, feed_server: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    feed_url, authorizations = feed_server
    if database_url.startswith("postgresql"):  # SQLite has no password to plant
        database_url = database_url.replace("postgresql://postgres@", f"postgresql://postgres:{DB_PASSWORD}@")
        assert DB_PASSWORD in database_url
    upgrade(database_url)
    planted_redis = redis_url.replace("redis://", f"redis://default:{REDIS_PASSWORD}@")
    for name, value in {
        "TRADEPIPE_DATABASE_URL": database_url, "TRADEPIPE_REDIS_URL": planted_redis, "TRADEPIPE_NEWS_FEED": feed_url,
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()

    # 1. the cycle entry point with the exchange plant: SOL's bars come from the credentialed exchange URL
    runner = TradingRunner(settings, market=MixedMarket())  # type: ignore[arg-type]
    outcome = runner.run_cycle(BAR0)
    assert outcome.status == "traded"
    assert "SOL/USDT" in outcome.skipped and "http://***@127.0.0.1:1/api" in outcome.skipped["SOL/USDT"]
    feed_reasons = [s["reason"] for s in outcome.last_signals if s["agent"] == "sentiment"]
    assert feed_reasons and all("news feed http://***@127.0.0.1:" in r and "token=***" in r for r in feed_reasons)
    # the feed got its credentials the proper way: as HTTP Basic auth, not in the request line
    assert authorizations and authorizations[0] == "Basic " + base64.b64encode(f"reader:{FEED_PASSWORD}".encode()).decode()
    assert_clean("the cycle's metadata", "\n".join(f"{k}: {v}" for k, v in portfolio_metadata(outcome, "synthetic").items()))

    # 2. a real Dagster run of portfolio_state (synthetic market; database, Redis and feed planted)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [portfolio_state], instance=instance, resources=build_resources(settings, "test"),
        run_config={"ops": {"portfolio_state": {"config": {"bar_open_ms": BAR0 + M}}}},
    )
    assert result.success
    (materialization,) = result.asset_materializations_for_node("portfolio_state")
    assert_clean("portfolio_state metadata", "\n".join(f"{k}: {v}" for k, v in materialization.metadata.items()))
    assert_clean("the Dagster event log", "\n".join(str(entry) for entry in instance.all_logs(result.run_id)))

    # ...and the resources the UI's Resources page lists, in every environment (URLs with credentials: their EnvVar)
    for environment in ("local", "deployment"):
        assert_clean(f"the {environment} resources", repr(build_resources(settings, environment)))

    # 3. the CLI, working and failing
    runner_cli = CliRunner()
    outputs = [runner_cli.invoke(cli, args).output for args in (["status"], ["status", "--json"], ["weights", "show"])]
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", f"postgresql://postgres:{DB_PASSWORD}@127.0.0.1:1/tradepipe")
    failing = runner_cli.invoke(cli, ["status"])
    assert failing.exit_code == 3
    outputs.append(failing.output)
    for output in outputs:
        assert_clean("CLI output", output)

    # 4. every table, every log record, everything printed
    ledger = every_row(database_url)
    assert "headline feed failed" in ledger and "127.0.0.1:1/api" in ledger  # the errors were recorded...
    assert_clean("the ledger tables", ledger)  # ...without their credentials
    assert_clean("log records", "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records))
    printed = capfd.readouterr()
    assert_clean("stdout/stderr", printed.out + printed.err)
    assert_book_is_a_replay_of_its_fills(database_url, "main")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("postgresql://trader:pw@db:5432/x", "postgresql://***@db:5432/x"),
        ("redis://:pw@cache:6379/0", "redis://***@cache:6379/0"),
        ("GET https://api.x.com/v3/order?symbol=BTC&signature=abc123&timestamp=1", "GET https://api.x.com/v3/order?symbol=BTC&signature=***&timestamp=1"),
        ("feed http://u:p@h/f?token=t0k&x=1: down", "feed http://***@h/f?token=***&x=1: down"),
        ("no url here", "no url here"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_redact_masks_a_secret_quoted_without_its_url() -> None:
    # http.client: "nonnumeric port: 'password@host'" has no scheme for the pattern to catch
    assert redact("nonnumeric port: 'hunter22@feeds.example'", "http://me:hunter22@feeds.example/rss") == "nonnumeric port: '***@feeds.example'"
