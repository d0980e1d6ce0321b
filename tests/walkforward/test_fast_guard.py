"""The engine's precomputed guard verdicts equal ``validate_history`` on every row's window.

Real 2017 Binance candles (the file's bogus first BTC row included) with planted defects of every
blocking rule; each row's fast verdict must be the same string (or None) as the live guard's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tradepipe.research.guard as fast_guard
from tradepipe.core.agents import validate_history
from tradepipe.research.data import SymbolBars
from tradepipe.research.guard import window_verdicts

STEP_MS = 3_600_000
HISTORY_BARS = 200
ROWS = 2500


def _bars(cdd_dir: Path, name: str, rows: int = ROWS) -> dict[str, np.ndarray]:
    frame = pd.read_csv(cdd_dir / name, nrows=rows)
    columns = {"timestamps": frame["timestamp"].to_numpy(dtype=np.int64)}
    columns.update({c: frame[c].to_numpy(dtype=np.float64).copy() for c in ("open", "high", "low", "close", "volume")})
    return columns


def _symbol(columns: dict[str, np.ndarray], symbol: str = "BTC/USDT") -> SymbolBars:
    return SymbolBars(symbol, "1h", columns["timestamps"], columns["open"], columns["high"], columns["low"], columns["close"], columns["volume"])


def _expected(bars: SymbolBars) -> list[str | None]:
    return [validate_history(bars.window(row, HISTORY_BARS), int(bars.timestamps[row]) + STEP_MS) for row in range(len(bars))]


def _corrupt(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    c = {name: array.copy() for name, array in columns.items()}
    c["close"][300] = np.nan  # null
    c["low"][520] = -1.0  # negative price (also below the body: two rules at one bar)
    c["high"][760] = c["low"][760] * 0.99  # high below low
    c["timestamps"][1000] = c["timestamps"][999]  # duplicate
    c["timestamps"][1250], c["timestamps"][1251] = c["timestamps"][1251], c["timestamps"][1250]  # out of order
    c["timestamps"][1500] += 60_000  # misaligned
    for name in ("open", "high", "low", "close"):  # a whole bar printed at 5x the price
        c[name][1750] *= 5.0
    c["close"][2000] *= 1.5  # a bad close alone: an outlier once the next bar is there
    c["volume"][2200] = -3.0  # negative volume
    c["timestamps"][2400:] += 10 * STEP_MS  # a gap (a warning, not blocking): windows across it are clean
    return c


@pytest.fixture()
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Rows the fast path handed to validate_history (to show it is not judging every window)."""
    calls: list[int] = []

    def spy(history, as_of_ms=None):
        calls.append(history.last_timestamp)
        return validate_history(history, as_of_ms)

    monkeypatch.setattr(fast_guard, "validate_history", spy)
    return calls


def test_real_candles_with_the_bogus_first_row(cdd_dir: Path, counted: list[int]) -> None:
    bars = _symbol(_bars(cdd_dir, "BTC_USDT-1h.csv"))
    expected = _expected(bars)
    assert window_verdicts(bars, HISTORY_BARS, STEP_MS) == expected
    # The bogus 16199.91 first row blocks from the bar after it (one bar alone is no outlier) until it leaves the window.
    assert expected[0] is None and all(r is not None and r.startswith("bar 2017-08-17T04:00Z: outlier") for r in expected[1:HISTORY_BARS])
    assert expected[HISTORY_BARS] is None
    assert len(counted) < ROWS // 5  # most windows took the clean path


def test_planted_defects_of_every_blocking_rule(cdd_dir: Path, counted: list[int]) -> None:
    bars = _symbol(_corrupt(_bars(cdd_dir, "ETH_USDT-1h.csv")), "ETH/USDT")
    expected = _expected(bars)
    fast = window_verdicts(bars, HISTORY_BARS, STEP_MS)
    mismatched = [row for row in range(len(bars)) if fast[row] != expected[row]]
    assert not mismatched, [(row, fast[row], expected[row]) for row in mismatched[:3]]
    reasons = " ".join(r for r in expected if r)
    for rule in ("null_value", "non_positive_price", "high_low_inconsistent", "duplicate_timestamp",
                 "timestamp_not_increasing", "misaligned_timestamp", "outlier", "negative_volume"):
        assert rule in reasons, rule
    assert expected[2450] is None  # the gap does not block
    assert len(counted) < ROWS * 0.8


def test_short_files_and_unequal_arrays_fall_back(cdd_dir: Path) -> None:
    columns = _bars(cdd_dir, "BTC_USDT-1h.csv", rows=60)
    bars = _symbol(columns)
    assert window_verdicts(bars, HISTORY_BARS, STEP_MS) == _expected(bars)
    assert window_verdicts(bars, 30, STEP_MS) == [validate_history(bars.window(r, 30), int(bars.timestamps[r]) + STEP_MS) for r in range(60)]
    uneven = SymbolBars("BTC/USDT", "1h", columns["timestamps"], columns["open"], columns["high"], columns["low"], columns["close"][:-1], columns["volume"])
    assert window_verdicts(uneven, HISTORY_BARS, STEP_MS) == _expected(uneven)


def test_engine_cycles_get_the_live_guards_verdicts(cdd_dir: Path, tmp_path: Path) -> None:
    """Every cycle of a walk-forward sees the verdicts guard_verdicts gives its bars: the files' bogus
    first rows, a NaN close in BTC and an hour ETH lacks (its newest closed bar is not the cycle's)."""
    from tradepipe.core.cycle import guard_verdicts
    from tradepipe.config.settings import load_settings
    from tradepipe.research.data import load_market
    from tradepipe.research.engine import StrategySpec, config_from_settings, run_walk_forward
    from tests.walkforward.conftest import write_slice

    def edit(name: str, lines: list[str]) -> list[str]:
        if name.startswith("ETH"):
            return lines[:400] + lines[401:]
        fields = lines[450].split(",")
        fields[5] = "nan"
        return lines[:450] + [",".join(fields)] + lines[451:]

    candles = write_slice(cdd_dir, tmp_path / "cdd", 0, 700, edit)
    settings = load_settings(market_source="replay", replay_dir=candles, timeframe="1h", symbols="BTC/USDT,ETH/USDT")
    config = config_from_settings(settings)
    market = load_market(candles, config.symbols, "1h")
    seen: list[dict[str, str | None]] = []

    def on_cycle(key, inputs, result) -> None:
        assert inputs.guard_verdicts == guard_verdicts(inputs.histories, inputs.bar_open_ms, inputs.timeframe_ms)
        seen.append(dict(inputs.guard_verdicts))

    run_walk_forward(market, config, [StrategySpec("fixed", settings.default_weights)], on_cycle=on_cycle)
    reasons = [r for verdicts in seen for r in verdicts.values() if r]
    assert len(seen) > 500
    assert any("newest closed bar is" in r for r in reasons)
    assert any("null_value" in r for r in reasons) and any("outlier" in r for r in reasons)
    assert sum(r is None for verdicts in seen for r in verdicts.values()) > 500


def test_a_range_of_rows_is_judged_as_in_the_whole_file(cdd_dir: Path) -> None:
    """Only the requested rows and the history their windows read: the same verdicts as the whole file's
    (planted defects included, some just before the range so they sit in its first windows)."""
    bars = _symbol(_corrupt(_bars(cdd_dir, "ETH_USDT-1h.csv")), "ETH/USDT")
    whole = window_verdicts(bars, HISTORY_BARS, STEP_MS)
    for first, last in ((0, 10), (5, 700), (HISTORY_BARS + 3, 1900), (1200, ROWS - 1), (ROWS - 1, ROWS - 1)):
        assert window_verdicts(bars, HISTORY_BARS, STEP_MS, (first, last)) == whole[first : last + 1], (first, last)
    assert sum(v is not None for v in whole[5:701]) > 0  # the ranges hold defects
    with pytest.raises(ValueError, match="outside"):
        window_verdicts(bars, HISTORY_BARS, STEP_MS, (10, ROWS))
