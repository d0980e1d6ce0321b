"""Market adapters, offline.

* synthetic: determinism whatever the order of questions, closed-only bars, a realistic shape;
* replay: the recorded candles of ``shared/data`` bar for bar, closed-only, both clocks;
* ccxt: a real ``ccxt.binance`` with markets parsed by ccxt from a recorded exchangeInfo answer,
  and only its kline HTTP endpoint replaced by recorded-format payloads, so ccxt's own
  ``fetch_ohlcv`` request building and ``parse_ohlcv`` run; network faults are raised there.

Tests that read ``shared/data`` use conftest's ``shared_data`` fixture: skipped with a one-line
reason when the folder is absent, failed instead under TRADEPIPE_TEST_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import copy
import csv
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradepipe.adapters.market import (
    DEFAULT_SYMBOLS,
    CcxtMarket,
    MarketData,
    MarketDataError,
    ReplayMarket,
    SyntheticMarket,
    build_market,
    market_rules_from_ccxt,
)
from tradepipe.core.timeframes import last_closed_bar_open, timeframe_ms
from tradepipe.core.types import BarHistory

HOUR = 3_600_000
END = 1_767_225_600_000  # 2026-01-01T00:00:00Z
FIELDS = ("timestamps", "open", "high", "low", "close", "volume")


def assert_same_bars(actual: BarHistory, expected: BarHistory) -> None:
    """Bit-for-bit equal: determinism means the same floats, not close ones."""
    assert len(actual) == len(expected)
    for name in FIELDS:
        assert np.array_equal(getattr(actual, name), getattr(expected, name)), name


def bar_slice(bars: BarHistory, start: int, stop: int) -> BarHistory:
    return BarHistory(bars.symbol, bars.timeframe, *(getattr(bars, name)[start:stop] for name in FIELDS))


def log_returns(bars: BarHistory) -> np.ndarray:
    return np.diff(np.log(bars.close))


# --------------------------------------------------------------------------------------------
# Synthetic
# --------------------------------------------------------------------------------------------


def test_every_source_is_a_market_data():
    assert isinstance(SyntheticMarket(), MarketData)
    assert SyntheticMarket().name == "synthetic"
    assert ReplayMarket(".").name == "replay"


def test_synthetic_is_deterministic_across_instances_and_differs_by_seed():
    first = SyntheticMarket(seed=11).closed_bars("ETH/USDT", "1h", END, 300)
    again = SyntheticMarket(seed=11).closed_bars("ETH/USDT", "1h", END, 300)
    other_seed = SyntheticMarket(seed=12).closed_bars("ETH/USDT", "1h", END, 300)
    assert_same_bars(again, first)
    assert not np.array_equal(other_seed.close, first.close)


def test_synthetic_bar_is_the_same_whatever_window_or_order_asks_for_it():
    long = SyntheticMarket().closed_bars("SOL/USDT", "1h", END, 1200)  # spans three 512-bar walk blocks
    fresh = SyntheticMarket()  # asked in another order, with empty caches
    for position in (1199, 700, 512, 511, 3, 0):
        single = fresh.closed_bars("SOL/USDT", "1h", int(long.timestamps[position]) + HOUR, 1)
        assert_same_bars(single, bar_slice(long, position, position + 1))
    window = fresh.closed_bars("SOL/USDT", "1h", int(long.timestamps[899]) + HOUR, 250)
    assert_same_bars(window, bar_slice(long, 650, 900))


def test_synthetic_other_symbols_do_not_change_a_symbol():
    alone = SyntheticMarket().closed_bars("BTC/USDT", "4h", END, 200)
    busy = SyntheticMarket()
    for symbol in ("XRP/USDT", "ETH/USDT", "NEW/USDT"):
        busy.closed_bars(symbol, "4h", END - 7 * HOUR, 333)
    assert_same_bars(busy.closed_bars("BTC/USDT", "4h", END, 200), alone)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    end_ms=st.integers(min_value=1_500_000_000_000, max_value=4_000_000_000_000),
    limit=st.integers(min_value=1, max_value=600),
    timeframe=st.sampled_from(["1m", "5m", "15m", "1h", "4h", "1d"]),
)
def test_synthetic_returns_only_bars_closed_by_end(end_ms: int, limit: int, timeframe: str):
    bars = SyntheticMarket().closed_bars("BTC/USDT", timeframe, end_ms, limit)
    step = timeframe_ms(timeframe)
    assert len(bars) == limit
    assert bars.last_timestamp == last_closed_bar_open(end_ms, timeframe)
    assert bars.last_timestamp + step <= end_ms < bars.last_timestamp + 2 * step  # closed, and the newest closed
    assert np.all(np.diff(bars.timestamps) == step)


def test_synthetic_bar_closing_exactly_at_end_is_included_one_ms_earlier_it_is_not():
    market = SyntheticMarket()
    assert market.closed_bars("BTC/USDT", "1h", END, 1).last_timestamp == END - HOUR
    assert market.closed_bars("BTC/USDT", "1h", END - 1, 1).last_timestamp == END - 2 * HOUR


@pytest.mark.parametrize("timeframe", ["5m", "1h", "1d"])
def test_synthetic_ohlcv_is_consistent_and_one_price_path(timeframe: str):
    market = SyntheticMarket()
    for symbol in (*DEFAULT_SYMBOLS, "NEW/USDT"):
        bars = market.closed_bars(symbol, timeframe, END, 2000)
        for name in FIELDS[1:]:
            assert np.all(np.isfinite(getattr(bars, name))), name
        assert np.all(bars.low <= np.minimum(bars.open, bars.close))
        assert np.all(bars.high >= np.maximum(bars.open, bars.close))
        assert np.all(bars.low > 0) and np.all(bars.volume > 0)
        assert np.array_equal(bars.open[1:], bars.close[:-1])  # close_t = close_{t-1} * exp(r_t)


def test_synthetic_prices_are_plausible_and_unknown_symbols_get_their_own_level():
    market = SyntheticMarket()
    btc = market.closed_bars("BTC/USDT", "1h", END, 20_000)
    xrp = market.closed_bars("XRP/USDT", "1h", END, 20_000)
    assert 15_000 < btc.close.min() and btc.close.max() < 250_000
    assert 0.1 < xrp.close.min() and xrp.close.max() < 3
    doge = market.closed_bars("DOGE/USDT", "1h", END, 10)
    assert_same_bars(SyntheticMarket().closed_bars("DOGE/USDT", "1h", END, 10), doge)
    assert doge.last_close != market.closed_bars("PEPE/USDT", "1h", END, 10).last_close


def test_synthetic_symbols_are_correlated_but_not_identical():
    market = SyntheticMarket()
    returns = {symbol: log_returns(market.closed_bars(symbol, "1h", END, 3000)) for symbol in DEFAULT_SYMBOLS}
    btc_eth = np.corrcoef(returns["BTC/USDT"], returns["ETH/USDT"])[0, 1]
    assert 0.3 < btc_eth < 0.95
    for a in DEFAULT_SYMBOLS:
        for b in DEFAULT_SYMBOLS:
            if a < b:
                assert 0 < np.corrcoef(returns[a], returns[b])[0, 1] < 1, (a, b)


def test_synthetic_volatility_switches_regimes_and_has_jumps():
    returns = pd.Series(log_returns(SyntheticMarket().closed_bars("BTC/USDT", "1h", END, 20_000)))
    weekly_vol = returns.groupby(np.arange(returns.size) // 168).std()
    assert weekly_vol.quantile(0.9) / weekly_vol.quantile(0.1) > 2  # calm and turbulent weeks
    assert returns.kurt() > 3  # fat tails from the jumps (a normal distribution has 0)


def test_trend_and_mean_reversion_each_win_somewhere():
    """Neither kind of agent is always right: the market has trending and range-bound stretches."""
    log_close = np.log(SyntheticMarket().closed_bars("BTC/USDT", "1h", END, 20_000).close)
    next_return = np.diff(log_close)
    momentum = np.sign(log_close[24:-1] - log_close[:-25]) * next_return[24:]
    deviation = log_close - pd.Series(log_close).rolling(20).mean().to_numpy()
    reversion = -np.sign(deviation[20:-1]) * next_return[20:]

    def share_of_winning_windows(pnl: np.ndarray) -> float:
        return float(np.mean([pnl[i : i + 240].sum() > 0 for i in range(0, pnl.size - 240, 240)]))

    assert 0.25 < share_of_winning_windows(momentum) < 0.75
    assert 0.25 < share_of_winning_windows(reversion) < 0.75


def test_synthetic_rejects_bad_requests():
    market = SyntheticMarket()
    with pytest.raises(ValueError, match="limit"):
        market.closed_bars("BTC/USDT", "1h", END, 0)
    with pytest.raises(ValueError, match="timeframe"):
        market.closed_bars("BTC/USDT", "1x", END, 10)
    with pytest.raises(MarketDataError) as error:
        market.closed_bars("BTCUSDT", "1h", END, 10)
    assert error.value.symbol == "BTCUSDT" and "BASE/QUOTE" in error.value.reason


# --------------------------------------------------------------------------------------------
# Replay
# --------------------------------------------------------------------------------------------

FIRST_BARS = [  # BTC_USDT-1h.csv of binance_2018_octobot, first rows, as recorded
    (1525759200000, 9334.02, 9382.0, 9305.0, 9340.0, 950.755904),
    (1525762800000, 9340.22, 9387.02, 9339.97, 9370.0, 802.894792),
    (1525766400000, 9370.0, 9414.4, 9360.0, 9398.95, 948.345796),
]
LAST_CLOSED_BAR = (1529352000000, 6694.62, 6733.0, 6689.0, 6720.05, 1264.828242)
UNFINISHED_BAR = (1529355600000, 6722.06, 6730.0, 6715.49, 6716.46, 356.282817)  # the known defect: half a bar's volume
FILE_BARS = 1000


def rows_of(bars: BarHistory) -> list[tuple[float, ...]]:
    return [tuple(getattr(bars, name)[i].item() for name in FIELDS) for i in range(len(bars))]


@pytest.fixture(scope="module")
def octobot_2018(shared_data: Path) -> Path:
    return shared_data / "ohlcv" / "binance_2018_octobot"


@pytest.mark.shared_data
def test_replay_serves_the_recorded_bars_that_closed_by_end(octobot_2018: Path):
    market = ReplayMarket(octobot_2018, mode="stepped")
    first = FIRST_BARS[0][0]
    assert rows_of(market.closed_bars("BTC/USDT", "1h", first + 3 * HOUR, 10)) == FIRST_BARS
    assert rows_of(market.closed_bars("BTC/USDT", "1h", first + 3 * HOUR - 1, 10)) == FIRST_BARS[:2]
    assert rows_of(market.closed_bars("BTC/USDT", "1h", first + 3 * HOUR, 2)) == FIRST_BARS[1:]
    with pytest.raises(MarketDataError, match="closed by"):
        market.closed_bars("BTC/USDT", "1h", first + HOUR - 1, 10)


@pytest.mark.shared_data
def test_replay_keeps_or_drops_the_unfinished_last_candle_as_told(octobot_2018: Path):
    later = UNFINISHED_BAR[0] + 100 * HOUR
    as_recorded = ReplayMarket(octobot_2018, mode="stepped")
    assert rows_of(as_recorded.closed_bars("BTC/USDT", "1h", later, 2)) == [LAST_CLOSED_BAR, UNFINISHED_BAR]
    assert len(as_recorded.timeline("BTC/USDT", "1h")) == FILE_BARS

    dropped = ReplayMarket(octobot_2018, mode="stepped", drop_last_bar=True)
    assert rows_of(dropped.closed_bars("BTC/USDT", "1h", later, 1)) == [LAST_CLOSED_BAR]
    timeline = dropped.timeline("BTC/USDT", "1h")
    assert len(timeline) == FILE_BARS - 1 and timeline[0] == FIRST_BARS[0][0] and timeline[-1] == LAST_CLOSED_BAR[0]
    assert np.all(np.diff(timeline) == HOUR)


@pytest.mark.shared_data
def test_replay_stepping_the_timeline_never_sees_a_later_bar(octobot_2018: Path):
    market = ReplayMarket(octobot_2018, mode="stepped")
    for bar_open in market.timeline("ETH/USDT", "1h")[::97]:
        bars = market.closed_bars("ETH/USDT", "1h", int(bar_open) + HOUR, 50)
        assert bars.last_timestamp == bar_open


@pytest.mark.shared_data
def test_replay_wallclock_plays_the_file_on_the_real_clock_and_wraps(octobot_2018: Path):
    market = ReplayMarket(octobot_2018)  # wallclock is the default
    recorded = ReplayMarket(octobot_2018, mode="stepped").closed_bars("BTC/USDT", "1h", UNFINISHED_BAR[0] + HOUR, FILE_BARS)
    first, span = FIRST_BARS[0][0], FILE_BARS * HOUR

    now = END + 1_234_567
    bars = market.closed_bars("BTC/USDT", "1h", now, 5)
    assert bars.last_timestamp == last_closed_bar_open(now, "1h")
    positions = (bars.timestamps - first) // HOUR % FILE_BARS
    assert np.array_equal(bars.close, recorded.close[positions]) and np.array_equal(bars.volume, recorded.volume[positions])

    seam = first + 70 * span  # the 70th copy starts here
    across = market.closed_bars("BTC/USDT", "1h", seam + 2 * HOUR, 4)
    assert list((across.timestamps - first) // HOUR % FILE_BARS) == [998, 999, 0, 1]
    assert np.all(np.diff(across.timestamps) == HOUR)
    assert len(market.closed_bars("BTC/USDT", "1h", now, 5000)) == FILE_BARS  # each file bar at most once


def test_replay_keeps_bad_rows_for_validation_and_drops_only_untimed_ones(tmp_path: Path):
    (tmp_path / "BAD_USDT-1h.csv").write_text(
        "timestamp,datetime,open,high,low,close,volume\n"
        f"{3 * HOUR},x,10,11,9,10.5,5\n"  # out of order: sorted into place
        f"{HOUR},x,10,11,9,NaN,5\n"  # NaN close
        f"{2 * HOUR},x,-1,11,9,10,5\n"  # negative price
        ",x,10,11,9,10,5\n"  # no timestamp: cannot be placed in time
        f"{4 * HOUR},x,10,8,9,abc,\n"  # high < low, unparsable close, empty volume
    )
    market = ReplayMarket(tmp_path, mode="stepped")
    bars = market.closed_bars("BAD/USDT", "1h", 10 * HOUR, 10)
    assert list(bars.timestamps) == [HOUR, 2 * HOUR, 3 * HOUR, 4 * HOUR]
    assert np.isnan(bars.close[0]) and bars.open[1] == -1 and bars.high[3] < bars.low[3]
    assert np.isnan(bars.close[3]) and np.isnan(bars.volume[3])
    assert len(market.warnings) == 1 and "1 row(s) without a usable timestamp" in market.warnings[0]


def test_replay_parquet_round_trip_and_parquet_wins_over_csv(tmp_path: Path):
    source = SyntheticMarket().closed_bars("BTC/USDT", "4h", END, 300)
    frame = pl.DataFrame({name if name != "timestamps" else "timestamp": getattr(source, name) for name in FIELDS})
    frame = frame.with_columns(datetime=pl.from_epoch("timestamp", time_unit="ms"))
    frame.write_parquet(tmp_path / "BTC_USDT-4h.parquet")
    (tmp_path / "BTC_USDT-4h.csv").write_text("timestamp,open,high,low,close,volume\n0,1,1,1,1,1\n")

    market = ReplayMarket(tmp_path, mode="stepped")
    assert market.path_for("BTC/USDT", "4h").suffix == ".parquet"
    assert_same_bars(market.closed_bars("BTC/USDT", "4h", END, 300), source)
    assert_same_bars(market.closed_bars("BTC/USDT", "4h", END - 8 * HOUR, 50), bar_slice(source, 248, 298))


def test_replay_reports_missing_files_and_columns(tmp_path: Path):
    market = ReplayMarket(tmp_path, mode="stepped")
    with pytest.raises(MarketDataError, match="no replay file .*ETH_USDT-1h"):
        market.closed_bars("ETH/USDT", "1h", END, 10)
    (tmp_path / "ETH_USDT-1h.csv").write_text("timestamp,open,close\n0,1,1\n")
    with pytest.raises(MarketDataError, match="lacks column.*high, low, volume"):
        market.closed_bars("ETH/USDT", "1h", END, 10)
    with pytest.raises(ValueError, match="replay mode"):
        ReplayMarket(tmp_path, mode="live")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# ccxt: a real binance instance, only its HTTP endpoints answered offline
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def binance_markets(shared_data: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """BTC/USDT as ccxt's own binance parser reads a recorded GET /api/v3/exchangeInfo answer."""
    info = json.loads((shared_data / "binance_api" / "exchange_info_BTCUSDT.json").read_text())
    parser = ccxt.binance({"options": {"fetchMarkets": {"types": ["spot"]}}})
    parser.publicGetExchangeInfo = lambda params={}: info  # the only request load_markets makes here
    parser.load_markets()
    return parser.markets, parser.currencies


@pytest.fixture
def binance(binance_markets: tuple[dict[str, Any], dict[str, Any]]) -> ccxt.binance:
    exchange = ccxt.binance({"enableRateLimit": True, "options": {"fetchMarkets": {"types": ["spot"]}}})
    exchange.set_markets(*copy.deepcopy(binance_markets))
    return exchange


@pytest.fixture(scope="module")
def recorded_klines(octobot_2018: Path) -> list[list[Any]]:
    """The 2018 BTC/USDT 1h candles in binance's raw kline format, prices as the strings binance sends."""
    with (octobot_2018 / "BTC_USDT-1h.csv").open() as file:
        rows = list(csv.DictReader(file))
    # [open time, open, high, low, close, volume, close time, quote volume, trades, taker base, taker quote, ignore]
    return [
        [int(row["timestamp"]), row["open"], row["high"], row["low"], row["close"], row["volume"]]
        + [int(row["timestamp"]) + HOUR - 1, "0", 0, "0", "0", "0"]
        for row in rows
    ]


NOW = UNFINISHED_BAR[0] + 30 * 60_000  # the exchange's clock: the file's last candle is still forming


class KlineEndpoint:
    """Stands in for binance's GET /api/v3/klines as seen at ``NOW``.

    Serves candles opened at or after ``startTime``, at most ``limit`` and ``max_page`` of them, up
    to the one still forming; ``missing`` opens are an exchange outage; ``failures`` are raised by
    the first calls, as ccxt raises them from a failed HTTP request.
    """

    def __init__(
        self,
        klines: list[list[Any]],
        max_page: int = 1000,
        failures: tuple[Exception, ...] = (),
        missing: frozenset[int] = frozenset(),
    ):
        self.klines = [kline for kline in klines if kline[0] <= NOW and kline[0] not in missing]
        self.max_page = max_page
        self.failures = list(failures)
        self.calls: list[dict[str, Any]] = []

    def __call__(self, params: dict[str, Any] = {}) -> list[list[Any]]:  # noqa: B006 - ccxt's own signature
        self.calls.append(dict(params))
        if self.failures:
            raise self.failures.pop(0)
        start = int(params.get("startTime", 0))
        return [kline for kline in self.klines if kline[0] >= start][: min(int(params["limit"]), self.max_page)]


def ccxt_market(exchange: ccxt.binance, endpoint: KlineEndpoint, sleeps: list[float], **options: Any) -> CcxtMarket:
    exchange.publicGetKlines = endpoint  # the spot branch of binance.fetch_ohlcv calls exactly this
    return CcxtMarket("binance", exchange=exchange, sleep=sleeps.append, **options)


def expected_rows(klines: list[list[Any]], start: int, stop: int) -> list[tuple[float, ...]]:
    return [(kline[0], *(float(value) for value in kline[1:6])) for kline in klines[start:stop]]


@pytest.mark.shared_data
def test_ccxt_paginates_with_since_and_limit(binance: ccxt.binance, recorded_klines: list[list[Any]]):
    endpoint, sleeps = KlineEndpoint(recorded_klines), []
    bars = ccxt_market(binance, endpoint, sleeps, page_limit=250).closed_bars("BTC/USDT", "1h", NOW, 900)
    assert rows_of(bars) == expected_rows(recorded_klines, 99, 999)  # the 900 closed bars, not the forming one
    starts = [recorded_klines[i][0] for i in (99, 349, 599, 849)]
    assert endpoint.calls == [
        {"interval": "1h", "limit": limit, "symbol": "BTCUSDT", "startTime": start} for start, limit in zip(starts, (250, 250, 250, 150))
    ]
    assert sleeps == []


@pytest.mark.shared_data
def test_ccxt_asks_again_when_the_exchange_returns_short_pages(binance: ccxt.binance, recorded_klines: list[list[Any]]):
    endpoint = KlineEndpoint(recorded_klines, max_page=300)
    bars = ccxt_market(binance, endpoint, []).closed_bars("BTC/USDT", "1h", NOW, 900)
    assert rows_of(bars) == expected_rows(recorded_klines, 99, 999)
    assert [call["limit"] for call in endpoint.calls] == [900, 600, 300]


@pytest.mark.shared_data
def test_ccxt_drops_the_candle_still_forming(binance: ccxt.binance, recorded_klines: list[list[Any]]):
    outage = frozenset(kline[0] for kline in recorded_klines[992:995])  # so a 10-bar page reaches the forming candle
    endpoint = KlineEndpoint(recorded_klines, missing=outage)
    market = ccxt_market(binance, endpoint, [])
    served = binance.fetch_ohlcv("BTC/USDT", "1h", since=recorded_klines[989][0], limit=10)
    assert served[-1][0] == UNFINISHED_BAR[0]  # ccxt itself hands the forming candle over
    bars = market.closed_bars("BTC/USDT", "1h", NOW, 10)
    assert rows_of(bars) == expected_rows(recorded_klines, 989, 992) + expected_rows(recorded_klines, 995, 999)


@pytest.mark.shared_data
def test_ccxt_end_in_the_past_gets_only_bars_closed_then(binance: ccxt.binance, recorded_klines: list[list[Any]]):
    market = ccxt_market(binance, KlineEndpoint(recorded_klines), [])
    bars = market.closed_bars("BTC/USDT", "1h", recorded_klines[500][0] + HOUR + 59_000, 3)
    assert rows_of(bars) == expected_rows(recorded_klines, 498, 501)


@pytest.mark.shared_data
def test_ccxt_retries_network_errors_and_rate_limits_with_exponential_backoff(binance: ccxt.binance, recorded_klines: list[list[Any]]):
    failures = (ccxt.NetworkError("binance GET /api/v3/klines connection reset"), ccxt.RateLimitExceeded("binance 429 Too Many Requests"))
    endpoint, sleeps = KlineEndpoint(recorded_klines, failures=failures), []
    bars = ccxt_market(binance, endpoint, sleeps, backoff_s=0.5).closed_bars("BTC/USDT", "1h", NOW, 5)
    assert rows_of(bars) == expected_rows(recorded_klines, 994, 999)
    assert sleeps == [0.5, 1.0]
    assert len(endpoint.calls) == 3


@pytest.mark.shared_data
@pytest.mark.parametrize("error", [ccxt.DDoSProtection, ccxt.ExchangeNotAvailable, ccxt.OnMaintenance, ccxt.RequestTimeout])
def test_ccxt_retries_every_transient_error(binance: ccxt.binance, recorded_klines: list[list[Any]], error: type[Exception]):
    sleeps: list[float] = []
    market = ccxt_market(binance, KlineEndpoint(recorded_klines, failures=(error("transient"),)), sleeps)
    bars = market.closed_bars("BTC/USDT", "1h", NOW, 5)
    assert len(bars) == 5 and sleeps == [1.0]


@pytest.mark.shared_data
def test_ccxt_gives_up_after_the_last_retry_with_a_clear_error(binance: ccxt.binance, recorded_klines: list[list[Any]]):
    endpoint, sleeps = KlineEndpoint(recorded_klines, failures=(ccxt.RequestTimeout("binance GET klines timed out (10000 ms)"),) * 5), []
    with pytest.raises(MarketDataError) as raised:
        ccxt_market(binance, endpoint, sleeps).closed_bars("BTC/USDT", "1h", NOW, 5)
    assert sleeps == [1.0, 2.0, 4.0, 8.0]
    assert len(endpoint.calls) == 5
    assert raised.value.symbol == "BTC/USDT"
    for part in ("binance", "'BTC/USDT'", "failed 5 times", "RequestTimeout", "timed out (10000 ms)"):
        assert part in raised.value.reason


@pytest.mark.shared_data
def test_ccxt_unknown_symbol_fails_at_once(binance: ccxt.binance, recorded_klines: list[list[Any]]):
    endpoint, sleeps = KlineEndpoint(recorded_klines), []
    market = ccxt_market(binance, endpoint, sleeps)
    with pytest.raises(MarketDataError, match="binance does not list DOGE/USDT") as raised:
        market.closed_bars("DOGE/USDT", "1h", NOW, 5)  # ccxt's market() raises BadSymbol before any request
    assert raised.value.symbol == "DOGE/USDT" and endpoint.calls == [] and sleeps == []

    endpoint.failures = [ccxt.BadSymbol('binance {"code":-1121,"msg":"Invalid symbol."}')]  # delisted since the markets loaded
    with pytest.raises(MarketDataError, match="Invalid symbol"):
        market.closed_bars("BTC/USDT", "1h", NOW, 5)
    assert len(endpoint.calls) == 1 and sleeps == []


@pytest.mark.shared_data
def test_ccxt_other_refusals_and_empty_answers_are_market_data_errors(binance: ccxt.binance, recorded_klines: list[list[Any]]):
    endpoint, sleeps = KlineEndpoint(recorded_klines, failures=(ccxt.ExchangeError("binance says no"),)), []
    market = ccxt_market(binance, endpoint, sleeps)
    with pytest.raises(MarketDataError, match="refused fetch_ohlcv: ExchangeError: binance says no"):
        market.closed_bars("BTC/USDT", "1h", NOW, 5)
    with pytest.raises(MarketDataError, match="returned no 1h bars"):
        market.closed_bars("BTC/USDT", "1h", FIRST_BARS[0][0], 5)  # before the first recorded candle
    assert sleeps == []


@pytest.mark.shared_data
def test_market_rules_come_from_binance_own_rules(binance_markets: tuple[dict[str, Any], dict[str, Any]]):
    rules = market_rules_from_ccxt(binance_markets[0]["BTC/USDT"])
    assert rules.symbol == "BTC/USDT"
    assert rules.amount_step == Decimal("0.00001") and str(rules.amount_step.normalize()) == "0.00001"
    assert rules.price_tick == Decimal("0.01")
    assert rules.min_amount == Decimal("0.00001")
    assert rules.min_cost == Decimal("10")


def test_market_rules_from_decimal_places_and_missing_figures():
    market = {"symbol": "X/USDT", "precision": {"amount": 3, "price": 2}, "limits": {"amount": {"min": None}, "cost": {"min": 5.5}}}
    rules = market_rules_from_ccxt(market, precision_mode=ccxt.DECIMAL_PLACES)
    assert (rules.amount_step, rules.price_tick) == (Decimal("0.001"), Decimal("0.01"))
    assert (rules.min_amount, rules.min_cost) == (Decimal("0"), Decimal("5.5"))
    bare = market_rules_from_ccxt({"symbol": "Y/USDT", "precision": {}, "limits": {}})
    assert bare.amount_step == Decimal("0.00000001") and bare.min_cost == Decimal("0")


def test_ccxt_market_creates_a_rate_limited_exchange_and_rejects_unknown_ids():
    market = CcxtMarket("binance")  # constructing makes no request
    assert market.name == "ccxt" and market.exchange.id == "binance" and market.exchange.enableRateLimit is True
    with pytest.raises(ValueError, match="ccxt .* has no exchange 'binanse'; did you mean binance"):
        CcxtMarket("binanse")


def test_build_market_picks_the_source(tmp_path: Path):
    synthetic = build_market("synthetic", seed=3, symbols=["BTC/USDT"])
    assert isinstance(synthetic, SyntheticMarket) and synthetic.seed == 3 and synthetic.symbols == ("BTC/USDT",)
    replay = build_market("replay", replay_dir=tmp_path, replay_mode="stepped")
    assert isinstance(replay, ReplayMarket) and replay.mode == "stepped"
    assert build_market("ccxt", exchange_id="kraken").name == "ccxt"
    with pytest.raises(ValueError, match="replay_dir"):
        build_market("replay")
    with pytest.raises(ValueError, match="exchange_id"):
        build_market("ccxt")
    with pytest.raises(ValueError, match="unknown market source 'csv'"):
        build_market("csv")
