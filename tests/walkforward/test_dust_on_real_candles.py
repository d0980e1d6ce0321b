"""Dust never locks a book, on the real candles where it did.

Trading the 2017-2021 Binance candles with equal weights, a rebalance on 2018-08-04 left the book
0.02375 ETH (about 9.75 USDT, under Binance's 10 USDT minimum order). ETH then fell more than 5%
under that remainder's cost; the old risk manager fired a stop-loss on it every hour (refused by the
exchange minimum) and so refused every new ETH target as ``stop_loss_cooldown``: over the full run the
book stayed out of ETH from 2018-08-07 to 2020-08-02. Now the remainder is dust: not stopped, counted
as flat, and swept into the next buy. A six-week window around the event (about 6 CPU seconds).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from tradepipe.core.cycle import CycleInputs, CycleResult
from tradepipe.core.risk import is_dust
from tradepipe.core.timeframes import DAY_MS
from tradepipe.config.settings import load_settings
from tradepipe.research.data import load_market
from tradepipe.research.engine import StrategySpec, config_from_settings, run_walk_forward

ETH = "ETH/USDT"


def _ms(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


def test_the_equal_weight_book_trades_eth_again_within_days_of_being_left_with_dust(cdd_dir: Path) -> None:
    settings = load_settings(market_source="replay", replay_dir=cdd_dir, timeframe="1h", symbols="BTC/USDT,ETH/USDT")
    config = config_from_settings(settings)
    market = load_market(cdd_dir, config.symbols, "1h")
    equal = {agent: 1.0 / len(config.agents) for agent in config.agents}
    dust_bars: list[tuple[int, Decimal]] = []  # (bar, quantity) where the book held only ETH dust
    eth_fills: list[tuple[int, str, Decimal, Decimal | None, Decimal]] = []  # bar, side, qty, held before, held after
    cooldowns: list[str] = []

    def on_cycle(key: str, inputs: CycleInputs, result: CycleResult) -> None:
        before = inputs.portfolio.positions.get(ETH)
        for executed in result.fills:
            if executed.fill.symbol == ETH:
                after = result.portfolio.positions.get(ETH)
                eth_fills.append(
                    (inputs.bar_open_ms, executed.fill.side, executed.fill.quantity,
                     before.quantity if before else None, after.quantity if after else Decimal(0))
                )
        held = result.portfolio.positions.get(ETH)
        if held is not None and is_dust(held.quantity, result.marks.get(ETH), inputs.rules[ETH]):
            dust_bars.append((inputs.bar_open_ms, held.quantity))
        cooldowns.extend(r.reason for r in result.plan.rejections if r.kind == "stop_loss_cooldown")

    run_walk_forward(
        market, config, [StrategySpec("equal_weight", equal)],
        start_ms=_ms("2018-07-20"), end_ms=_ms("2018-08-31"), on_cycle=on_cycle,
    )

    assert dust_bars, "the window no longer reproduces the remainder under the exchange minimum"
    first_dust_ms, dust = dust_bars[0]
    assert first_dust_ms < _ms("2018-08-07") and dust == Decimal("0.02375")
    assert cooldowns == []  # no stop-loss is fired (and refused) on the dust, so nothing is locked out
    later_buys = [fill for fill in eth_fills if fill[0] > first_dust_ms and fill[1] == "buy"]
    assert later_buys, "ETH was never bought again after the dust was left"
    bar, _, quantity, held_before, held_after = later_buys[0]
    assert (bar - first_dust_ms) / DAY_MS < 14  # days, not the two years of the old lock-out
    assert held_before == dust and held_after == dust + quantity  # swept in: the dust is part of the new position
