"""Market data adapters: one interface, three sources (synthetic, file replay, ccxt).

Every source answers the same question: *which bars of ``symbol`` had closed by ``end_ms``?*
A bar opening at ``t`` closes at ``t + timeframe_ms``, so ``closed_bars`` returns only bars with
``open + timeframe_ms <= end_ms``: never a bar from the future, never the candle still forming.
Bars are returned oldest first as a :class:`~tradepipe.core.types.BarHistory`.

Problems the caller should record and then skip the symbol for this cycle (exchange down after
retries, unknown symbol, no data in the range) raise :class:`MarketDataError`. Programming
errors (a bad timeframe, ``limit < 1``, an unknown source name) raise ``ValueError``.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np
import polars as pl

from tradepipe.core.redaction import redact
from tradepipe.core.timeframes import last_closed_bar_open, timeframe_ms
from tradepipe.core.types import BarHistory, MarketRules

if TYPE_CHECKING:  # ccxt costs seconds to import: only the ccxt source and broker load it
    import ccxt

__all__ = [
    "DEFAULT_SYMBOLS",
    "CcxtMarket",
    "MarketData",
    "MarketDataError",
    "ReplayMarket",
    "SyntheticMarket",
    "build_market",
    "market_rules_from_ccxt",
]

DEFAULT_SYMBOLS: tuple[str, ...] = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT")
OHLCV_COLUMNS: tuple[str, ...] = ("timestamp", "open", "high", "low", "close", "volume")


class MarketDataError(Exception):
    """Bars for ``symbol`` are unavailable this time; the caller records ``reason`` and skips the symbol."""

    def __init__(self, symbol: str, reason: str) -> None:
        reason = redact(reason)  # exchange errors quote the request URL, which may carry credentials
        super().__init__(f"{symbol}: {reason}")
        self.symbol = symbol
        self.reason = reason


@runtime_checkable
class MarketData(Protocol):
    """A source of closed OHLCV bars. ``name`` is ``"synthetic"``, ``"replay"`` or ``"ccxt"``."""

    name: str

    def closed_bars(self, symbol: str, timeframe: str, end_ms: int, limit: int) -> BarHistory:
        """Up to ``limit`` bars that closed by ``end_ms`` (open <= end_ms - timeframe_ms), oldest first.

        Fewer than ``limit`` only where the source has no more: before its first bar, or (ccxt)
        where the exchange has a gap in the last ``limit`` bar slots.
        """
        ...


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")


def _history(symbol: str, timeframe: str, columns: Sequence[np.ndarray]) -> BarHistory:
    timestamps, open_, high, low, close, volume = columns
    as_float = lambda values: np.asarray(values, dtype=np.float64)  # noqa: E731
    return BarHistory(
        symbol=symbol,
        timeframe=timeframe,
        timestamps=np.asarray(timestamps, dtype=np.int64),
        open=as_float(open_),
        high=as_float(high),
        low=as_float(low),
        close=as_float(close),
        volume=as_float(volume),
    )


# --------------------------------------------------------------------------------------------
# Synthetic
# --------------------------------------------------------------------------------------------

_HOUR_MS = 3_600_000
_BRIDGE_BARS = 512  # one pinned random-walk block; a call touches at most ceil(limit / 512) + 1 of them
_REGIME_BARS = 168  # a volatility regime lasts 168 bars (a week of 1h bars)
_KNOT_CHUNK = 64  # value-noise knots are drawn 64 at a time
_DEVIATION_PERSISTENCE = 0.75  # AR(1) coefficient of the mean-reverting deviation (half-life 2.4 bars)
_DEVIATION_MEMORY = 24  # its moving-average form is cut here: 0.75**24 = 0.001
_TRENDS: tuple[tuple[int, float], ...] = ((96, 0.04), (480, 0.09), (2400, 0.22))  # (knot spacing in bars, log amplitude at 1h)
_BAR_SIGMA_1H = 0.006  # per-bar log-return volatility of a vol-1.0 symbol in a normal regime on 1h bars
_RANGE_AMPLITUDE = 0.012  # log size of the mean-reverting deviation at range amplitude 1 (1h)
_JUMP_PROBABILITY = 0.003
_JUMP_SIGMA = 5.0  # jump size in bar sigmas
_CALM, _TURBULENT = 0.2, 0.85  # regime draw u < 0.2: calm; u >= 0.85: turbulent; else normal

# Stream tags keep the random streams of one seed independent of one another.
_FACTOR, _IDIO, _REGIME, _TREND, _RANGE, _DEVIATION = range(1, 7)
_MARKET = 0  # the "symbol key" of market-wide streams


@dataclass(frozen=True)
class _Profile:
    """How one synthetic symbol behaves: price level, volatility, loading on the market factor, turnover."""

    key: int
    price: float
    vol: float
    beta: float
    quote_volume_per_hour: float


_KNOWN_PROFILES: dict[str, tuple[float, float, float, float]] = {
    # symbol: (price level, relative volatility, market-factor loading, quote volume per hour)
    "BTC/USDT": (60_000.0, 1.0, 0.85, 40e6),
    "ETH/USDT": (3_000.0, 1.25, 0.8, 20e6),
    "SOL/USDT": (150.0, 1.8, 0.7, 8e6),
    "BNB/USDT": (550.0, 1.1, 0.7, 4e6),
    "XRP/USDT": (0.6, 1.5, 0.65, 5e6),
}


def _symbol_key(symbol: str) -> int:
    """A stable 63-bit key (Python's ``hash`` is salted per process, so it would break determinism)."""
    return int.from_bytes(hashlib.blake2b(symbol.encode(), digest_size=8).digest(), "big") >> 1


def _profile(symbol: str) -> _Profile:
    key = _symbol_key(symbol)
    if symbol in _KNOWN_PROFILES:
        return _Profile(key, *_KNOWN_PROFILES[symbol])
    u = np.random.Generator(np.random.Philox(key=key)).random(4)
    return _Profile(key, price=10 ** (-2 + 5 * u[0]), vol=1 + u[1], beta=0.5 + 0.3 * u[2], quote_volume_per_hour=1e6 * (1 + 9 * u[3]))


class SyntheticMarket:
    """SYNTHETIC prices, not market data: a deterministic, offline exchange that is always up.

    The same ``seed`` gives the same bar for the same (symbol, timeframe, open time), whenever and
    in whatever order it is asked, with no state to replay: bar ``i`` (``i = open_ms //
    timeframe_ms``, so bars align to multiples of the timeframe since the epoch) is a pure
    function of counter-based random draws (Philox keyed by a BLAKE2b hash of (seed, stream,
    symbol, timeframe, block)). A call costs O(limit): 10 symbols x 500 bars take about 6 ms on a
    fresh instance and 2 ms once its block caches are warm (``benchmarks/bench_market.py``).

    The log close of symbol ``s`` at bar ``i`` is a sum of bounded, closed-form pieces::

        log C = log level_s + vol_s * (beta_s * T_market(i) + sqrt(1 - beta_s^2) * T_s(i) + A(i) * D_s(i)) + B_s(i)

    * ``T`` (trends): value noise, i.e. random knots every 96, 480 and 2400 bars joined by a
      smoothstep, log amplitudes 0.04, 0.09 and 0.22 (at 1h). Trend followers earn where these lead.
    * ``A(i) * D_s(i)`` (range-bound regimes): ``D`` is a unit AR(1) deviation (coefficient 0.75,
      written as its moving average truncated at 24 bars) that the price keeps returning from;
      ``A >= 0`` is a market-wide smooth amplitude (knots every 168 bars) that is zero about half
      of the time. Mean-reversion agents earn where it dominates. With the defaults a 24-bar
      momentum rule and a 20-bar mean-reversion rule each win about half of the 240-bar windows
      (40-70% across seeds and symbols): the two kinds of agent disagree, and each is right somewhere.
    * ``B`` (noise): a random walk of returns ``sigma(i) * (beta f_i + sqrt(1 - beta^2) e_i) + jumps``
      with a common market factor ``f`` (correlated symbols, correlation about beta_a * beta_b,
      0.68 for BTC/ETH) and idiosyncratic ``e``; ``sigma`` switches between calm (x0.55), normal
      and turbulent (x2.2) regimes every 168 bars; jumps (5 sigma scale) hit the market or one
      symbol with probability 0.3% each per bar (fat tails). The walk is a Brownian bridge pinned
      to 0 at every 512-bar block edge, so any bar is reachable from its own block alone and
      prices stay near their level forever; the pin costs a drift of about sigma / sqrt(512) per
      bar, far below the bar noise.

    Closes form one path: ``open_i == close_{i-1}``, i.e. ``close_i = close_{i-1} * exp(r_i)``.
    Highs and lows add wicks of half a regime sigma beyond the body; volume is the symbol's
    turnover divided by price, higher on big moves. Volatility and amplitudes scale with
    ``sqrt(timeframe / 1h)``; each timeframe is its own series (4h bars are not aggregated 1h bars).

    Known symbols (``DEFAULT_SYMBOLS``) have plausible levels (BTC about 60,000 USDT, XRP about
    0.6); any other ``BASE/QUOTE`` symbol gets a level (0.01 to 1000), volatility and loading from
    a hash of its name. ``symbols`` is the universe the market advertises; ``closed_bars`` serves
    any symbol.
    """

    name = "synthetic"

    def __init__(self, seed: int = 7, symbols: Sequence[str] = DEFAULT_SYMBOLS) -> None:
        if seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        self.seed = seed
        self.symbols = tuple(symbols)
        # Caches per instance, so two seeds never share entries. Draws and walk blocks are reused across
        # calls; the market-wide pieces of one window are reused across the symbols of a cycle.
        self._block = lru_cache(maxsize=2048)(self._draw_block)
        self._walk_block = lru_cache(maxsize=1024)(self._bridge_block)
        self._market_pieces = lru_cache(maxsize=64)(self._market_smooth)

    def closed_bars(self, symbol: str, timeframe: str, end_ms: int, limit: int) -> BarHistory:
        _check_limit(limit)
        step = timeframe_ms(timeframe)
        newest = last_closed_bar_open(end_ms, timeframe) // step
        if newest < 1 or "/" not in symbol:
            raise MarketDataError(symbol, f"no synthetic {timeframe} bars closed by {end_ms} for a BASE/QUOTE symbol")
        index = np.arange(max(newest - limit + 1, 1) - 1, newest + 1)  # one extra bar: its close is the first open
        return self._bars(symbol, timeframe, step, index)

    def _bars(self, symbol: str, timeframe: str, step: int, index: np.ndarray) -> BarHistory:
        profile = _profile(symbol)
        log_close = self._log_close(profile, step, index)
        prices = np.exp(log_close)
        open_, close = prices[:-1], prices[1:]  # one exp, so open_i is bit-for-bit close_{i-1}
        bars = index[1:]
        sigma = _BAR_SIGMA_1H * math.sqrt(step / _HOUR_MS) * profile.vol * self._vol_regime(step, bars)
        # Rows 2-4 of the symbol's idiosyncratic block (rows 0-1 drive the walk): one draw per block, not two.
        (_, _, up, down, busy), _ = self._draws((_IDIO, profile.key, step, _BRIDGE_BARS), bars, 5, 1)
        high = np.maximum(open_, close) * np.exp(0.5 * sigma * np.abs(up))
        low = np.minimum(open_, close) * np.exp(-0.5 * sigma * np.abs(down))
        activity = 0.6 + 0.4 * np.abs(np.diff(log_close)) / sigma  # volume rises with the size of the move
        volume = profile.quote_volume_per_hour * (step / _HOUR_MS) / close * np.exp(0.3 * busy) * activity
        return _history(symbol, timeframe, (bars * step, open_, high, low, close, volume))

    def _log_close(self, profile: _Profile, step: int, index: np.ndarray) -> np.ndarray:
        market_trend, range_amplitude = self._market_pieces(step, int(index[0]), int(index[-1]))
        smooth = (
            profile.beta * market_trend
            + math.sqrt(1 - profile.beta**2) * self._trend(profile.key, step, index)
            + range_amplitude * self._deviation(profile.key, step, index)
        )
        return math.log(profile.price) + profile.vol * smooth + self._bridge(profile, step, index)

    def _market_smooth(self, step: int, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
        """The market-wide trend and range amplitude over bars first..last, shared by every symbol."""
        index = np.arange(first, last + 1)
        pieces = self._trend(_MARKET, step, index), self._range_amplitude(step, index)
        for array in pieces:
            array.setflags(write=False)
        return pieces

    def _trend(self, key: int, step: int, index: np.ndarray) -> np.ndarray:
        scale = min(math.sqrt(step / _HOUR_MS), 5.0)  # capped so weekly bars still swing plausibly
        return sum(
            (scale * amplitude * self._value_noise((_TREND, key, step), index, spacing) for spacing, amplitude in _TRENDS),
            np.zeros(index.shape),
        )

    def _range_amplitude(self, step: int, index: np.ndarray) -> np.ndarray:
        level = self._value_noise((_RANGE, _MARKET, step), index, _REGIME_BARS)
        return _RANGE_AMPLITUDE * math.sqrt(step / _HOUR_MS) * np.clip(level, 0.0, None)

    def _vol_regime(self, step: int, index: np.ndarray) -> np.ndarray:
        """Volatility multiplier, constant within each 168-bar regime block (calm, normal or turbulent)."""
        regimes = index // _REGIME_BARS
        (z,), (u,) = self._draws((_REGIME, _MARKET, step, _KNOT_CHUNK), np.arange(regimes[0], regimes[-1] + 1), 1, 1)
        multiplier = np.where(u < _CALM, 0.55, np.where(u >= _TURBULENT, 2.2, 1.0)) * np.exp(0.15 * z)
        return multiplier[regimes - regimes[0]]

    def _bridge(self, profile: _Profile, step: int, index: np.ndarray) -> np.ndarray:
        blocks = np.arange(index[0] // _BRIDGE_BARS, index[-1] // _BRIDGE_BARS + 1)
        walk = np.concatenate([self._walk_block(profile, step, int(block)) for block in blocks])
        return walk[index - blocks[0] * _BRIDGE_BARS]

    def _bridge_block(self, profile: _Profile, step: int, block: int) -> np.ndarray:
        """Log-price noise of one 512-bar block, pinned to 0 at both ends so blocks join without a step."""
        bars = np.arange(block * _BRIDGE_BARS, (block + 1) * _BRIDGE_BARS)
        (f, f_jump), (f_hit,) = self._block((_FACTOR, _MARKET, step, _BRIDGE_BARS), block, 2, 1, _BRIDGE_BARS)
        (e, e_jump, *_wicks), (e_hit,) = self._block((_IDIO, profile.key, step, _BRIDGE_BARS), block, 5, 1, _BRIDGE_BARS)
        market = f + np.where(f_hit < _JUMP_PROBABILITY, _JUMP_SIGMA * f_jump, 0.0)
        own = e + np.where(e_hit < _JUMP_PROBABILITY, _JUMP_SIGMA * e_jump, 0.0)
        sigma = _BAR_SIGMA_1H * math.sqrt(step / _HOUR_MS) * profile.vol * self._vol_regime(step, bars)
        walk = np.cumsum(sigma * (profile.beta * market + math.sqrt(1 - profile.beta**2) * own))
        bridge = walk - np.arange(1, _BRIDGE_BARS + 1) / _BRIDGE_BARS * walk[-1]
        bridge.setflags(write=False)
        return bridge

    def _deviation(self, key: int, step: int, index: np.ndarray) -> np.ndarray:
        """A unit-variance AR(1) deviation from the path (what mean reversion trades), as its truncated MA form.

        Summed lag by lag with elementwise operations (not ``np.convolve``, whose inner dot products
        are free to reorder): every bar then sees the same arithmetic whatever window it is in.
        """
        shocks_index = np.arange(index[0] - _DEVIATION_MEMORY, index[-1] + 1)
        (shocks,), _ = self._draws((_DEVIATION, key, step, _BRIDGE_BARS), np.maximum(shocks_index, 0), 1, 0)
        deviation = np.zeros(index.shape)
        for lag in range(_DEVIATION_MEMORY + 1):
            deviation += _DEVIATION_PERSISTENCE**lag * shocks[_DEVIATION_MEMORY - lag : _DEVIATION_MEMORY - lag + index.size]
        return deviation * math.sqrt(1 - _DEVIATION_PERSISTENCE**2)

    def _value_noise(self, key: tuple[int, ...], index: np.ndarray, spacing: int) -> np.ndarray:
        """Random knots every ``spacing`` bars joined by a smoothstep: continuous, bounded, O(1) per bar."""
        knot = index // spacing
        (z,), _ = self._draws((*key, spacing, _KNOT_CHUNK), np.arange(knot[0], knot[-1] + 2), 1, 0)
        left, right = z[knot - knot[0]], z[knot - knot[0] + 1]
        t = (index % spacing) / spacing
        return left + (right - left) * (t * t * (3 - 2 * t))

    def _draws(self, key: tuple[int, ...], index: np.ndarray, normals: int, uniforms: int) -> tuple[np.ndarray, np.ndarray]:
        """Random numbers for the contiguous global ``index`` range, assembled from fixed blocks.

        ``key[-1]`` is the block size; the draw for index ``i`` lives in block ``i // size`` only,
        so it is the same whatever range it is asked with.
        """
        size = key[-1]
        blocks = range(int(index[0]) // size, int(index[-1]) // size + 1)
        parts = [self._block(key, block, normals, uniforms, size) for block in blocks]
        offset = index - blocks[0] * size
        return np.concatenate([p[0] for p in parts], axis=1)[:, offset], np.concatenate([p[1] for p in parts], axis=1)[:, offset]

    def _draw_block(self, key: tuple[int, ...], block: int, normals: int, uniforms: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        # Philox is counter-based: any 128-bit key starts an independent stream, so hashing the
        # coordinates into a key is enough (and twice as fast as going through SeedSequence).
        coordinates = ",".join(map(str, (self.seed, *key, block))).encode()
        rng = np.random.Generator(np.random.Philox(key=int.from_bytes(hashlib.blake2b(coordinates, digest_size=16).digest(), "little")))
        drawn = rng.standard_normal((normals, size)), rng.random((uniforms, size))
        for array in drawn:
            array.setflags(write=False)  # cached and shared between calls
        return drawn


# --------------------------------------------------------------------------------------------
# Replay
# --------------------------------------------------------------------------------------------

ReplayMode = Literal["wallclock", "stepped"]


@dataclass(frozen=True)
class _Table:
    timestamps: np.ndarray
    columns: tuple[np.ndarray, ...]  # open, high, low, close, volume


class ReplayMarket:
    """Recorded bars from files ``BASE_QUOTE-TIMEFRAME.csv`` or ``.parquet`` in ``directory``.

    Columns: ``timestamp`` (bar open, ms UTC), ``open``, ``high``, ``low``, ``close``, ``volume``
    (a ``datetime`` column may be present and is ignored), as in ``shared/data/ohlcv/*``. A file is
    read once per (symbol, timeframe), on first use, with polars; Parquet wins when both exist.

    Modes (the clock ``end_ms`` is read on):

    * ``"stepped"``: the file's own time. A backtest walks :meth:`timeline` and asks for the bars
      closed by ``bar_open + timeframe_ms``.
    * ``"wallclock"`` (default): the file plays on the real clock so a live loop trades on it. The
      file is repeated end to end forever, each copy shifted by the file's span (last open - first
      open + one bar), and ``end_ms`` reads the copies. Deterministic and restart-safe (a wall-clock
      time always shows the same file bar), never runs dry, but the price jumps once per copy where
      the file's end meets its start. A window holds each file bar at most once, so ``limit`` is
      capped at the file's length.

    Data are served as recorded, defects included:

    * Rows with NaN or missing prices, non-positive prices or ``high < low`` are KEPT (unparsable
      numbers become NaN), so the caller's validation sees and records them. Only rows without a
      usable timestamp are dropped (they cannot be placed in time); each such drop is described in
      :attr:`warnings`. Rows are sorted by timestamp; duplicates are kept.
    * A dump taken from a live exchange ends with the candle that was still forming (e.g.
      ``binance_2018_octobot``: volume about half the final). It cannot be told from a quiet bar,
      so say so: ``drop_last_bar=True`` drops each file's last row.
    * On the wall clock, a row opening after the time the file is read (a mistyped year) is left out,
      with a warning: it is a defect of that row. Kept, it would stretch the file's span to that date and
      every cycle until then would find no bar of its own ("newest closed bar is ..., expected ...").
      Stepped, the row stays and the cycle guard refuses the bar it falls in (``future_timestamp``).
    """

    name = "replay"

    def __init__(
        self, directory: str | Path, mode: ReplayMode = "wallclock", drop_last_bar: bool = False,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        if mode not in ("wallclock", "stepped"):
            raise ValueError(f"replay mode must be 'wallclock' or 'stepped', got {mode!r}")
        self.directory = Path(directory)
        self.mode: ReplayMode = mode
        self.drop_last_bar = drop_last_bar
        self.clock_ms = clock_ms
        self.warnings: list[str] = []
        self._tables: dict[tuple[str, str], _Table] = {}

    def closed_bars(self, symbol: str, timeframe: str, end_ms: int, limit: int) -> BarHistory:
        _check_limit(limit)
        step = timeframe_ms(timeframe)
        table = self._table(symbol, timeframe)
        timestamps, rows = (table.timestamps, table) if self.mode == "stepped" else self._wallclock_copies(table, step, end_ms)
        closed = int(np.searchsorted(timestamps, end_ms - step, side="right"))  # bars with open + step <= end_ms
        if closed == 0:
            raise MarketDataError(symbol, f"no {timeframe} bars in {self.path_for(symbol, timeframe)} closed by {end_ms}")
        take = slice(max(closed - min(limit, len(table.timestamps)), 0), closed)
        return _history(symbol, timeframe, (timestamps[take], *(column[take] for column in rows.columns)))

    def timeline(self, symbol: str, timeframe: str) -> np.ndarray:
        """The file's bar open times (ms, sorted, after ``drop_last_bar``), for stepping a backtest in file time."""
        return self._table(symbol, timeframe).timestamps.copy()

    def columns(self, symbol: str, timeframe: str) -> tuple[np.ndarray, ...]:
        """The file's rows as arrays (timestamp, open, high, low, close, volume; after ``drop_last_bar``), for
        engines that slice windows themselves (the walk-forward); defective rows kept, as ``closed_bars`` serves them."""
        table = self._table(symbol, timeframe)
        return (table.timestamps, *table.columns)

    def unreadable(self, symbols: Sequence[str], timeframe: str) -> dict[str, str]:
        """Why each symbol whose file cannot be served fails (missing, unreadable, a column missing, no rows):
        one line per symbol, so a caller leaves those out and goes on with the others."""
        reasons = {}
        for symbol in symbols:
            try:
                self._table(symbol, timeframe)
            except MarketDataError as error:
                reasons[symbol] = error.reason
        return reasons

    def path_for(self, symbol: str, timeframe: str) -> Path:
        """``BTC/USDT``, ``1h`` -> ``directory/BTC_USDT-1h.parquet`` if it exists, else the ``.csv`` path."""
        stem = f"{symbol.replace('/', '_')}-{timeframe}"
        parquet = self.directory / f"{stem}.parquet"
        return parquet if parquet.exists() else self.directory / f"{stem}.csv"

    @staticmethod
    def _wallclock_copies(table: _Table, step: int, end_ms: int) -> tuple[np.ndarray, _Table]:
        """The copy of the file that ``end_ms`` falls in, after the copy before it (so windows span the seam)."""
        first = int(table.timestamps[0])
        span = int(table.timestamps[-1]) - first + step
        copy = (end_ms - first) // span
        timestamps = np.concatenate([table.timestamps + (copy - 1) * span, table.timestamps + copy * span])
        return timestamps, _Table(timestamps, tuple(np.concatenate([column, column]) for column in table.columns))

    def _table(self, symbol: str, timeframe: str) -> _Table:
        if (symbol, timeframe) not in self._tables:
            self._tables[(symbol, timeframe)] = self._load(symbol, timeframe)
        return self._tables[(symbol, timeframe)]

    def _load(self, symbol: str, timeframe: str) -> _Table:
        path = self.path_for(symbol, timeframe)
        frame = self._read(symbol, path)
        if frame.height == 0:
            raise MarketDataError(symbol, f"{path} holds no rows (a header only)")
        untimed = frame["timestamp"].null_count()
        if untimed:
            self.warnings.append(f"{path}: dropped {untimed} row(s) without a usable timestamp")
        frame = frame.drop_nulls("timestamp").sort("timestamp", maintain_order=True)
        if self.mode == "wallclock":
            now = self.clock_ms()
            future = frame.filter(pl.col("timestamp") > now).height
            if future:
                self.warnings.append(f"{path}: left out {future} row(s) opening after the time the file is played at ({now} ms)")
                frame = frame.filter(pl.col("timestamp") <= now)
        if self.drop_last_bar:
            frame = frame.head(-1)
        if frame.height == 0:
            raise MarketDataError(symbol, f"{path} holds no bars")
        return _Table(frame["timestamp"].to_numpy(), tuple(frame[name].to_numpy() for name in OHLCV_COLUMNS[1:]))

    @staticmethod
    def _read(symbol: str, path: Path) -> pl.DataFrame:
        if not path.exists():
            raise MarketDataError(symbol, f"no replay file {path.with_suffix('')}.csv or .parquet")
        try:
            # CSV as text then a lenient cast: a bad number becomes NaN for validation, not a failed read.
            frame = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path, infer_schema=False)
        except (OSError, pl.exceptions.PolarsError) as error:
            raise MarketDataError(symbol, f"cannot read {path}: {error}") from error
        missing = [name for name in OHLCV_COLUMNS if name not in frame.columns]
        if missing:
            raise MarketDataError(symbol, f"{path} lacks column(s) {', '.join(missing)}")
        return frame.select(
            pl.col("timestamp").cast(pl.Int64, strict=False),
            *(pl.col(name).cast(pl.Float64, strict=False) for name in OHLCV_COLUMNS[1:]),
        )


# --------------------------------------------------------------------------------------------
# ccxt
# --------------------------------------------------------------------------------------------


DEFAULT_EXCHANGE_TIMEOUT_S = 10.0


def _create_exchange(exchange_id: str, timeout_s: float = DEFAULT_EXCHANGE_TIMEOUT_S) -> ccxt.Exchange:
    import ccxt

    if exchange_id not in ccxt.exchanges:
        close = difflib.get_close_matches(exchange_id, ccxt.exchanges, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else " (see ccxt.exchanges)"
        raise ValueError(f"ccxt {ccxt.__version__} has no exchange {exchange_id!r}{hint}")
    return getattr(ccxt, exchange_id)({"enableRateLimit": True, "timeout": int(timeout_s * 1000)})


class CcxtMarket:
    """Public OHLCV of any ccxt exchange (no API key needed), paginated and retried.

    ``closed_bars`` asks ``exchange.fetch_ohlcv(symbol, timeframe, since=..., limit=...)`` page by
    page from the oldest wanted bar, advancing ``since`` past each page's newest bar, until it has
    ``limit`` bars, reaches ``end_ms`` or a page brings nothing new. Bars not closed by ``end_ms``
    (the candle still forming, anything later) are dropped. ``page_limit`` caps one request; an
    exchange that returns fewer bars than asked is simply asked again. The bars are those opened in
    the last ``limit`` bar slots before ``end_ms``: an exchange outage among them leaves fewer bars
    rather than reaching further back.

    Transient failures (``ccxt.NetworkError`` and its subclasses ``RateLimitExceeded``,
    ``DDoSProtection``, ``ExchangeNotAvailable``, ``OnMaintenance``, ``RequestTimeout``) are
    retried ``max_retries`` times after the first attempt, sleeping ``backoff_s * 2**n`` before
    retry ``n`` (1, 2, 4, 8 s by default); then :class:`MarketDataError` names the exchange,
    symbol and last error. ``ccxt.BadSymbol`` and other exchange refusals raise it at once. Besides
    these sleeps, ccxt's own throttle (``enableRateLimit``) spaces requests.

    ``exchange`` may be a ready ccxt instance (markets preset, sandbox, proxies); otherwise one is
    made with ``getattr(ccxt, exchange_id)({"enableRateLimit": True, "timeout": ...})`` (``timeout_s``, 10 s by default).
    """

    name = "ccxt"

    def __init__(
        self,
        exchange_id: str,
        exchange: ccxt.Exchange | None = None,
        max_retries: int = 4,
        backoff_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        page_limit: int = 1000,
        timeout_s: float = DEFAULT_EXCHANGE_TIMEOUT_S,
    ) -> None:
        self.exchange = exchange if exchange is not None else _create_exchange(exchange_id, timeout_s)
        if not self.exchange.has.get("fetchOHLCV"):
            raise ValueError(f"ccxt exchange {exchange_id!r} has no public OHLCV (has['fetchOHLCV'] is not set)")
        self.exchange_id = exchange_id
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.sleep = sleep
        self.page_limit = page_limit
        self.retries: Counter[str] = Counter()
        """Retries per symbol since this adapter was made (the cycle records its own as system_metrics)."""

    def closed_bars(self, symbol: str, timeframe: str, end_ms: int, limit: int) -> BarHistory:
        _check_limit(limit)
        step = timeframe_ms(timeframe)
        newest = last_closed_bar_open(end_ms, timeframe)
        oldest = newest - (limit - 1) * step
        bars = self._fetch_range(symbol, timeframe, oldest, newest)
        if not bars:
            raise MarketDataError(symbol, f"{self.exchange_id} returned no {timeframe} bars opened between {oldest} and {newest}")
        rows = [bars[timestamp] for timestamp in sorted(bars)][-limit:]
        columns = np.array(rows, dtype=np.float64).T  # a None (some exchanges) becomes NaN for validation
        return _history(symbol, timeframe, (columns[0].astype(np.int64), *columns[1:6]))

    def _fetch_range(self, symbol: str, timeframe: str, oldest: int, newest: int) -> dict[int, list[Any]]:
        """Bars opened in [oldest, newest], keyed by open time (so overlapping pages never duplicate)."""
        step = timeframe_ms(timeframe)
        bars: dict[int, list[Any]] = {}
        since = oldest
        while since <= newest:
            wanted = min(self.page_limit, (newest - since) // step + 1)
            page = self._fetch_page(symbol, timeframe, since, wanted)
            fresh = [row for row in page if since <= int(row[0]) <= newest]
            if not fresh:  # no data from here on, or the exchange ignored `since`: stop rather than loop
                break
            bars.update((int(row[0]), row) for row in fresh)
            since = max(int(row[0]) for row in fresh) + step
        return bars

    def _fetch_page(self, symbol: str, timeframe: str, since: int, limit: int) -> list[list[Any]]:
        import ccxt

        last_error: ccxt.NetworkError | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.retries[symbol] += 1
                self.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                return self.exchange.fetch_ohlcv(symbol, timeframe, since=since, limit=limit)
            except ccxt.BadSymbol as error:
                raise MarketDataError(symbol, f"{self.exchange_id} does not list {symbol}: {error}") from error
            except ccxt.NetworkError as error:  # transient: rate limit, timeout, maintenance, connection
                last_error = error
            except ccxt.BaseError as error:
                raise MarketDataError(symbol, f"{self.exchange_id} refused fetch_ohlcv: {type(error).__name__}: {error}") from error
        raise MarketDataError(
            symbol,
            f"{self.exchange_id} fetch_ohlcv({symbol!r}, {timeframe!r}) failed {self.max_retries + 1} times; "
            f"last error: {type(last_error).__name__}: {last_error}",
        )


def _step(value: Any, precision_mode: int | None) -> Decimal | None:
    """A ccxt precision figure as a step size: a tick already, or a count of decimal places."""
    import ccxt

    if precision_mode is None:
        precision_mode = ccxt.TICK_SIZE
    if value is None:
        return None
    if precision_mode == ccxt.TICK_SIZE:
        return Decimal(str(value))
    if precision_mode == ccxt.DECIMAL_PLACES:
        return Decimal(1).scaleb(-int(value))
    raise ValueError("SIGNIFICANT_DIGITS precision has no fixed step; convert it for the price at hand")


def market_rules_from_ccxt(market: Mapping[str, Any], precision_mode: int | None = None) -> MarketRules:
    """:class:`MarketRules` from a ccxt market dict (``exchange.markets[symbol]``).

    ``precision.amount`` and ``precision.price`` are tick sizes under ccxt 4.x's ``TICK_SIZE``
    mode (binance and most exchanges; pass ``exchange.precisionMode`` for others); minimums come
    from ``limits.amount.min`` and ``limits.cost.min``. Floats go through ``Decimal(str(x))`` so
    ``1e-05`` becomes exactly 0.00001. Missing figures keep the MarketRules defaults.
    """
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}
    minimum = lambda name: (limits.get(name) or {}).get("min")  # noqa: E731
    figures = {
        "amount_step": _step(precision.get("amount"), precision_mode),
        "price_tick": _step(precision.get("price"), precision_mode),
        "min_amount": None if minimum("amount") is None else Decimal(str(minimum("amount"))),
        "min_cost": None if minimum("cost") is None else Decimal(str(minimum("cost"))),
    }
    return MarketRules(symbol=market["symbol"], **{name: value for name, value in figures.items() if value is not None})


# --------------------------------------------------------------------------------------------
# Factory
# --------------------------------------------------------------------------------------------


def build_market(
    source: str,
    *,
    seed: int = 7,
    symbols: Sequence[str] = DEFAULT_SYMBOLS,
    replay_dir: str | Path | None = None,
    exchange_id: str | None = None,
    replay_mode: ReplayMode = "wallclock",
    replay_drop_last_bar: bool = False,
    exchange_timeout_s: float = DEFAULT_EXCHANGE_TIMEOUT_S,
) -> MarketData:
    """The market named by ``source``: ``"synthetic"`` (seed, symbols), ``"replay"`` (replay_dir) or ``"ccxt"`` (exchange_id)."""
    if source == "synthetic":
        return SyntheticMarket(seed=seed, symbols=symbols)
    if source == "replay":
        if replay_dir is None:
            raise ValueError("market source 'replay' needs replay_dir (a folder of BASE_QUOTE-TIMEFRAME.csv|.parquet files)")
        return ReplayMarket(replay_dir, mode=replay_mode, drop_last_bar=replay_drop_last_bar)
    if source == "ccxt":
        if not exchange_id:
            raise ValueError("market source 'ccxt' needs exchange_id (e.g. 'binance')")
        return CcxtMarket(exchange_id, timeout_s=exchange_timeout_s)
    raise ValueError(f"unknown market source {source!r}: expected 'synthetic', 'replay' or 'ccxt'")
