"""Market-bar rules on real candles: every known defect found where it is, every hand-made corruption
caught by its own rule with symbol and timestamp, and no false alarm on the clean years."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradepipe.adapters.candle_files import read_candle_file
from tradepipe.core.bar_quality import (
    BAR_RULES,
    ERROR,
    WARN,
    BarDefect,
    bar_features,
    blocking_reason,
    find_defects,
    outlier_scores,
)
from tradepipe.core.types import BarHistory

H = 3_600_000
NOW = 1_800_000_000_000  # 2027-01-15: every shared bar is long closed
CDD = "ohlcv/binance_cdd_2017_2021"
OCTOBOT_2018 = "ohlcv/binance_2018_octobot"
FIRST_CDD_ROW = 1_502_942_400_000  # 2017-08-17 04:00 UTC


def defects_of(path: Path, symbol: str, timeframe: str, frame: pd.DataFrame | None = None) -> list[BarDefect]:
    frame = read_candle_file(path) if frame is None else frame
    return find_defects(bar_features(frame, symbol, timeframe, file_end=True), timeframe, NOW)


def by_rule(defects: list[BarDefect], severity: str | None = None) -> dict[str, list[int | None]]:
    found: dict[str, list[int | None]] = {}
    for defect in defects:
        if severity is None or defect.severity == severity:
            found.setdefault(defect.rule, []).append(defect.timestamp)
    return found


def as_history(frame: pd.DataFrame, symbol: str = "BTC/USDT", timeframe: str = "1h") -> BarHistory:
    return BarHistory(
        symbol, timeframe, frame["timestamp"].to_numpy(dtype=np.int64),
        *(frame[name].to_numpy(dtype=np.float64) for name in ("open", "high", "low", "close", "volume")),
    )


def test_every_rule_has_a_severity_and_a_description() -> None:
    assert {rule.severity for rule in BAR_RULES} == {ERROR, WARN}
    assert all(rule.description for rule in BAR_RULES)
    # What would reach a trade blocks it; what would only mislead a report does not.
    assert {rule.name for rule in BAR_RULES if rule.severity == WARN} == {"gap", "zero_volume", "maybe_unfinished_last_bar"}
    assert all(rule.blocks_in_cycle == (rule.severity == ERROR) for rule in BAR_RULES)


# --------------------------------------------------------------------------- the known defects


@pytest.mark.shared_data
@pytest.mark.parametrize("base", ["BTC", "ETH"])
def test_the_cdd_btc_and_eth_files_show_exactly_their_known_defects(shared_data: Path, base: str) -> None:
    path = shared_data / CDD / f"{base}_USDT-1h.csv"
    raw = pd.read_csv(path)
    found = by_rule(defects_of(path, f"{base}/USDT", "1h"))

    # The bogus first row (BTC open/high 16199.91 against a close of 4308.83; ETH 652.74 against
    # 300.79, the same export defect) is the only ERROR in four years.
    assert by_rule(defects_of(path, f"{base}/USDT", "1h"), ERROR) == {"outlier": [FIRST_CDD_ROW]}
    # 16 missing hours in 8 holes, each reported at its first missing bar.
    steps = np.diff(raw["timestamp"].to_numpy())
    holes = np.flatnonzero(steps > H)
    assert found["gap"] == [int(raw["timestamp"].iloc[i] + H) for i in holes]
    assert int(sum(steps[holes] // H - 1)) == 16
    assert found["zero_volume"] == raw.loc[raw["volume"] == 0, "timestamp"].tolist()
    assert len(found["zero_volume"]) == {"BTC": 117, "ETH": 119}[base]
    # The export ends inside the hour (its last bar has 20-30% of a normal hour's volume).
    assert found["maybe_unfinished_last_bar"] == [int(raw["timestamp"].iloc[-1])]


@pytest.mark.shared_data
def test_ltc_81_day_hole_is_one_gap_of_1951_bars(shared_data: Path) -> None:
    defects = defects_of(shared_data / CDD / "LTC_USDT-1h.csv", "LTC/USDT", "1h")
    assert by_rule(defects, ERROR) == {}
    (hole,) = [d for d in defects if d.rule == "gap" and "1951 bar(s)" in d.detail]
    assert hole.symbol == "LTC/USDT" and hole.timestamp == 1_506_110_400_000  # 2017-09-22 20:00, first missing hour
    assert "to 2017-12-13T02:00Z" in hole.detail


@pytest.mark.shared_data
@pytest.mark.parametrize("base", ["BTC", "ETH", "XRP", "NEO"])
def test_the_octobot_2018_last_bar_is_reported_as_unfinished(shared_data: Path, base: str) -> None:
    path = shared_data / OCTOBOT_2018 / f"{base}_USDT-1h.csv"
    defects = defects_of(path, f"{base}/USDT", "1h")
    assert [(d.rule, d.timestamp, d.severity) for d in defects] == [("maybe_unfinished_last_bar", 1_529_355_600_000, WARN)]


@pytest.mark.shared_data
def test_every_other_shared_file_raises_no_error(shared_data: Path) -> None:
    checked = 0
    for folder in ("binance_2018_octobot", "binance_2024_octobot"):
        for path in sorted((shared_data / "ohlcv" / folder).glob("*.csv")):
            symbol, timeframe = path.stem.split("-")
            defects = defects_of(path, symbol.replace("_", "/"), timeframe)
            assert by_rule(defects, ERROR) == {}, path.name
            assert set(by_rule(defects)) <= {"maybe_unfinished_last_bar"}, path.name
            checked += 1
    assert checked == 16


@pytest.mark.shared_data
@pytest.mark.parametrize("base", ["BTC", "ETH", "LTC"])
def test_judged_as_a_live_cycle_judges_its_newest_bar_the_outlier_rule_raises_no_false_alarm(shared_data: Path, base: str) -> None:
    """In a live loop the newest bar has no later bars: only gross errors may count there, or a real
    crash (2020-03-12, 2021-05-19) would stop trading (and stop-losses) in the symbol."""
    frame = read_candle_file(shared_data / CDD / f"{base}_USDT-1h.csv")
    ratio, _ = outlier_scores({name: frame[name].to_numpy() for name in ("open", "high", "low", "close")}, use_later_bars=False)
    assert np.nanmax(ratio) < 0.5


@pytest.mark.shared_data
def test_the_bogus_first_row_blocks_the_cycle_while_the_agents_read_it_and_only_then(shared_data: Path) -> None:
    frame = read_candle_file(shared_data / CDD / "BTC_USDT-1h.csv")
    window = 200
    for end in (60, 120, 199, 200, 201, 5_000, 20_000, len(frame)):
        bars = frame.iloc[max(end - window, 0) : end]
        last = int(bars["timestamp"].iloc[-1])
        reason = blocking_reason(as_history(bars), last + H)
        if int(bars["timestamp"].iloc[0]) == FIRST_CDD_ROW:
            assert reason is not None and "outlier" in reason and "2017-08-17T04:00Z" in reason
        else:
            assert reason is None, (end, reason)


# --------------------------------------------------------------------------- hand-made corruptions


def _corrupt(frame: pd.DataFrame, kind: str) -> tuple[pd.DataFrame, str, int]:
    """``frame`` with one defect of ``kind``; returns it, the rule meant to catch it, and the bar's open time."""
    frame = frame.copy()
    i = 500
    stamp = int(frame.loc[i, "timestamp"])
    if kind == "nan":
        frame.loc[i, "close"] = np.nan
        return frame, "null_value", stamp
    if kind == "negative_price":
        frame.loc[i, "low"] = -frame.loc[i, "low"]
        return frame, "non_positive_price", stamp
    if kind == "high_below_low":
        frame.loc[i, ["high", "low"]] = frame.loc[i, ["low", "high"]].to_numpy()
        return frame, "high_low_inconsistent", stamp
    if kind == "duplicate":
        frame = pd.concat([frame.iloc[: i + 1], frame.iloc[[i]], frame.iloc[i + 1 :]], ignore_index=True)
        return frame, "duplicate_timestamp", stamp
    if kind == "out_of_order":
        frame.iloc[[i, i + 1]] = frame.iloc[[i + 1, i]].to_numpy()
        return frame, "timestamp_not_increasing", stamp  # bar i now comes after bar i + 1
    if kind == "misaligned":
        frame.loc[i, "timestamp"] = stamp + 30 * 60_000
        return frame, "misaligned_timestamp", stamp + 30 * 60_000
    if kind == "future":
        future = NOW + 10 * H
        frame.loc[len(frame)] = [future, *frame.iloc[-1, 1:].to_numpy()]
        return frame, "future_timestamp", future
    if kind == "spike":
        frame.loc[i, ["open", "high", "close"]] = frame.loc[i, ["open", "high", "close"]].to_numpy() * 3
        return frame, "outlier", stamp
    raise AssertionError(kind)


CORRUPTIONS = ["nan", "negative_price", "high_below_low", "duplicate", "out_of_order", "misaligned", "future", "spike"]


@pytest.mark.shared_data
@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_each_hand_made_corruption_is_caught_by_its_rule_with_symbol_and_timestamp(shared_data: Path, kind: str) -> None:
    path = shared_data / OCTOBOT_2018 / "ETH_USDT-1h.csv"
    corrupted, rule, stamp = _corrupt(read_candle_file(path), kind)
    defects = defects_of(path, "ETH/USDT", "1h", corrupted)
    errors = [(d.symbol, d.rule, d.timestamp) for d in defects if d.severity == ERROR]
    assert ("ETH/USDT", rule, stamp) in errors
    # No other bar and no other rule is blamed as an ERROR (the hole a moved bar leaves is a WARN gap).
    assert {e[1] for e in errors} == {rule}, errors


def test_a_bar_not_closed_at_the_decision_time_is_unfinished_and_blocks() -> None:
    stamps = np.arange(40, dtype=np.int64) * H + 1_700_000_000_000 - (1_700_000_000_000 % H)
    closes = 100 + np.sin(np.arange(40.0))
    history = BarHistory("BTC/USDT", "1h", stamps, closes, closes + 1, closes - 1, closes, np.full(40, 5.0))
    last = int(stamps[-1])
    assert blocking_reason(history, last + H) is None
    reason = blocking_reason(history, last + H - 1)
    assert reason is not None and "unfinished_bar" in reason
    reason = blocking_reason(history, last - 1)
    assert reason is not None and "future_timestamp" in reason


def _path(closes: list[float]) -> dict[str, np.ndarray]:
    close = np.asarray(closes)
    open_ = np.concatenate([[close[0]], close[:-1]])
    return {"open": open_, "high": np.fmax(open_, close) * 1.002, "low": np.fmin(open_, close) * 0.998, "close": close}


def test_a_real_crash_is_no_outlier_but_a_bad_print_is() -> None:
    calm = [100 * (1 + 0.003 * np.sin(i)) for i in range(40)]
    crash = calm + [c * 0.5 for c in calm]  # halves in one bar and stays there
    ratio, _ = outlier_scores(_path(crash))
    assert np.nanmax(ratio) < 1
    # As the newest bar of a live cycle (no later bar yet) a halving is not a gross error either.
    live, _ = outlier_scores(_path(crash[:41]), use_later_bars=False)
    assert live[40] < 1
    spike = list(calm)
    spike[20] *= 3  # one bad close; the next bar opens from it, so two bars look odd
    ratio, reference = outlier_scores(_path(spike))
    assert list(np.flatnonzero(ratio > 1)) == [20, 21]
    assert reference[20] == pytest.approx(100, rel=0.01)
