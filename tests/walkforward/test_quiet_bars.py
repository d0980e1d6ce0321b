"""A bar at which a flat book with nothing pending is asked for nothing is recorded without a cycle
(``_Loop._record_quiet``). Every book of such a run equals the book of a run that cycles every bar
(``on_cycle`` set): equity, fees, slippage and turnover per bar, fills, weight decisions, the final
portfolio, pending orders, halts and the skipped-bar record. Real candles with an hour ETH lacks and a
NaN close in BTC; three rule sets: the defaults, a tight daily-loss limit with entry hysteresis (halts
happen), and short selling with a wide rebalance band."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from tradepipe.config.settings import load_settings
from tradepipe.research.data import load_market
from tradepipe.research.engine import BookState, config_from_settings, default_strategies, run_walk_forward
from tests.walkforward.conftest import write_slice


def _edit(name: str, lines: list[str]) -> list[str]:
    if name.startswith("ETH"):
        return lines[:700] + lines[701:]
    fields = lines[900].split(",")
    fields[5] = "nan"
    return lines[:900] + [",".join(fields)] + lines[901:]


def _state(book: BookState) -> tuple:
    return (
        book.equity, book.fees, book.slippage, book.traded, book.fills, book.slippage_total,
        [(d.day_ms, d.weights, d.updated, d.reason) for d in book.decisions],
        book.portfolio, book.pending, book.halted_day, book.weights,
    )


@pytest.mark.parametrize("rules", ["defaults", "tight_loss_limit", "short_wide_band"])
def test_books_equal_a_run_that_cycles_every_bar(cdd_dir: Path, tmp_path: Path, rules: str) -> None:
    candles = write_slice(cdd_dir, tmp_path / "cdd", 11_000, 1_500, _edit)  # 2018-12 .. 2019-02
    settings = load_settings(market_source="replay", replay_dir=candles, timeframe="1h", symbols="BTC/USDT,ETH/USDT")
    config = config_from_settings(settings)
    if rules == "tight_loss_limit":
        config = replace(config, limits=replace(config.limits, daily_loss_limit_fraction=Decimal("0.002")), entry_hysteresis=0.1)
    elif rules == "short_wide_band":
        config = replace(config, limits=replace(config.limits, allow_short=True), rebalance_band=0.08)
    market = load_market(candles, config.symbols, "1h")
    strategies = default_strategies(config, ["hedge"])

    quiet = run_walk_forward(market, config, strategies)
    every = run_walk_forward(market, config, strategies, on_cycle=lambda key, inputs, result: None)

    assert quiet.skipped == every.skipped
    for spec in strategies:
        assert _state(quiet.books[spec.key]) == _state(every.books[spec.key]), spec.key
        assert every.books[spec.key].quiet_bars == 0
    cycled = [key for key in quiet.books if key != "agent:sentiment"]  # sentiment never votes: not cycled at all
    assert all(quiet.books[key].quiet_bars > 50 for key in cycled)
    assert sum(quiet.books[key].fills for key in cycled) > 100
    if rules == "tight_loss_limit":
        assert any(book.halted_day is not None for book in every.books.values())  # a halt did start

