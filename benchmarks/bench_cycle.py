"""Benchmark one trading cycle: the pure core (``run_cycle``) and the whole runner with its SQLite ledger.

Run: ``.venv/bin/python benchmarks/bench_cycle.py``. No network; the ledger lives in a temp dir.

1. ``tradepipe.core.cycle.run_cycle`` for 10 symbols x 5 agents x 500 bars of 1h history from
   ``SyntheticMarket``, with a book holding 5 positions and 4 pending orders to fill (default
   RiskLimits, paper MarketRules): best and median of 20 calls, without and with a news feed.
   Target: under 50 ms.
2. ``TradingRunner.run_cycle`` (market bars + weights + core + one ledger transaction on SQLite)
   over 20 consecutive bars after one warm-up bar: median, best, worst.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from tradepipe.adapters.market import SyntheticMarket
from tradepipe.core.agents import get_agents
from tradepipe.core.cycle import CycleInputs, PendingOrder, run_cycle
from tradepipe.core.ledger import Portfolio
from tradepipe.core.risk import RiskLimits, client_order_id, quantize_to_step
from tradepipe.core.types import AgentContext, BarHistory, Headline, MarketRules, OrderIntent, Position
from tradepipe.core.paper import PAPER_RULES

SYMBOLS = (
    "BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT",
    "ADA/USDT", "DOGE/USDT", "DOT/USDT", "LTC/USDT", "AVAX/USDT",
)
BARS = 500
RUNS = 20
TIMEFRAME = "1h"
HOUR_MS = 3_600_000
BAR_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: the bar each core call trades
TARGET_MS = 50.0
BOOK = "bench"
TITLES = (
    "Bitcoin soars to record high as ETF inflows surge",
    "Ethereum slumps after network outage",
    "Crypto exchange hacked, millions stolen",
    "Solana rallies on new partnership",
    "Regulators weigh new rules for crypto markets",
    "XRP plunges as lawsuit drags on",
    "Dogecoin jumps after celebrity tweet",
    "Crypto market steady ahead of Fed decision",
)


def _quantity(value: Decimal, price: float) -> Decimal:
    return quantize_to_step(value / Decimal(repr(price)), PAPER_RULES["amount_step"])


def core_inputs(headlines: bool) -> CycleInputs:
    market = SyntheticMarket(seed=7, symbols=SYMBOLS)
    histories: dict[str, BarHistory] = {
        s: market.closed_bars(s, TIMEFRAME, BAR_MS + HOUR_MS, BARS) for s in SYMBOLS
    }
    assert all(len(h) == BARS and h.last_timestamp == BAR_MS for h in histories.values())
    agents = get_agents()
    previous = BAR_MS - HOUR_MS
    # Five positions worth about 1,500 USDT each, opened 50 bars ago at that bar's close.
    positions = {}
    for symbol in SYMBOLS[:5]:
        entry = float(histories[symbol].close[-50])
        positions[symbol] = Position(
            symbol=symbol,
            quantity=_quantity(Decimal(1500), entry),
            average_price=Decimal(repr(entry)),
            opening_contributions={"momentum": 0.1, "trend": 0.05},
            opened_ms=int(histories[symbol].timestamps[-50]),
        )
    portfolio = Portfolio(cash=Decimal(5000), positions=positions)
    # Four orders decided at the previous bar's close, filled by this cycle at this bar's open.
    pending = []
    for symbol, side, value in (
        ("BTC/USDT", "sell", Decimal(500)),
        ("ETH/USDT", "buy", Decimal(400)),
        ("DOGE/USDT", "buy", Decimal(600)),
        ("LTC/USDT", "buy", Decimal(300)),
    ):
        price = float(histories[symbol].close[-2])
        quantity = _quantity(value, price)
        pending.append(
            PendingOrder(
                intent=OrderIntent(
                    symbol=symbol,
                    side=side,  # type: ignore[arg-type]
                    quantity=quantity,
                    reference_price=Decimal(repr(price)),
                    client_order_id=client_order_id(BOOK, previous, symbol),
                    reason="bench",
                    requested_quantity=quantity,
                    contributions={"momentum": 0.2, "mean_reversion": -0.05},
                    bar_open_ms=previous,
                ),
                decided_bar_ms=previous,
            )
        )
    news = tuple(Headline(t, BAR_MS - (i + 1) * 2 * HOUR_MS) for i, t in enumerate(TITLES)) if headlines else None
    return CycleInputs(
        book=BOOK,
        bar_open_ms=BAR_MS,
        timeframe_ms=HOUR_MS,
        histories=histories,
        unavailable={},
        agents=agents,
        context=AgentContext(now_ms=BAR_MS + HOUR_MS, headlines=news),
        weights={a.name: 1 / len(agents) for a in agents},
        portfolio=portfolio,
        pending=pending,
        rules={s: MarketRules(symbol=s, **PAPER_RULES) for s in SYMBOLS},
        limits=RiskLimits(),
        fee_bps=Decimal(10),
        slippage_bps=Decimal(5),
        day_start_equity=Decimal(10000),
        halted=False,
        last_marks={},
    )


def time_core(headlines: bool) -> list[float]:
    inputs = core_inputs(headlines)
    result = run_cycle(inputs)  # warm-up: first-call costs (VADER lexicon, caches) are not per cycle
    timings = []
    for _ in range(RUNS):
        start = time.perf_counter()
        result = run_cycle(inputs)
        timings.append((time.perf_counter() - start) * 1e3)
    voted = sum(not s.abstained for s in result.signals)
    print(
        f"  {'with' if headlines else 'no'} news feed: best {min(timings):.2f} ms, median {statistics.median(timings):.2f} ms "
        f"({len(result.signals)} signals, {voted} votes, {len(result.fills)} fills, {len(result.plan.orders)} orders, "
        f"{len(result.plan.rejections)} rejections)"
    )
    return timings


def time_runner() -> list[float]:
    from tradepipe.adapters.db.engine import get_engine, upgrade
    from tradepipe.trading.runner import TradingRunner
    from tradepipe.config.settings import load_settings

    with tempfile.TemporaryDirectory(prefix="bench_cycle_") as folder:
        cwd = os.getcwd()
        os.chdir(folder)  # no stray .env is read
        try:
            url = f"sqlite:///{Path(folder) / 'ledger.sqlite'}"
            upgrade(url)
            settings = load_settings(
                home=Path(folder) / "home",
                database_url=url,
                redis_url=None,
                market_source="synthetic",
                symbols=",".join(SYMBOLS),
                timeframe=TIMEFRAME,
                history_bars=BARS,
                seed=7,
                news_feed=None,
                book=BOOK,
            )
            runner = TradingRunner(settings)
            first = BAR_MS - RUNS * HOUR_MS
            runner.run_cycle(first - HOUR_MS)  # warm-up: creates the book, opens the engine
            walls, inside, orders, fills = [], [], 0, 0
            for i in range(RUNS):
                start = time.perf_counter()
                outcome = runner.run_cycle(first + i * HOUR_MS)
                walls.append((time.perf_counter() - start) * 1e3)
                inside.append(outcome.seconds * 1e3)
                assert outcome.status == "traded", outcome.status
                orders += len(outcome.orders_placed)
                fills += len(outcome.fills)
            print(
                f"  median {statistics.median(walls):.1f} ms, best {min(walls):.1f} ms, worst {max(walls):.1f} ms "
                f"over {RUNS} consecutive {TIMEFRAME} bars ({orders} orders placed, {fills} fills; "
                f"equity {outcome.equity:.2f})"
            )
            get_engine(url).dispose()
        finally:
            os.chdir(cwd)
    return walls


def main() -> None:
    print(f"run_cycle (pure core): {len(SYMBOLS)} symbols x {len(get_agents())} agents x {BARS} bars, "
          f"5 positions, 4 pending orders, {RUNS} calls")
    plain = time_core(headlines=False)
    time_core(headlines=True)
    verdict = "OK" if statistics.median(plain) < TARGET_MS else "OVER TARGET"
    print(f"  target < {TARGET_MS:.0f} ms: {verdict}")
    print("TradingRunner.run_cycle (synthetic market + SQLite ledger, one transaction per cycle):")
    time_runner()


if __name__ == "__main__":
    main()
