"""``market_bars``: the closed bars each trading cycle's agents read, checked before the cycle trades.

The first step of every ``trading_cycle`` run, so a bad bar shows in the UI on the asset it concerns:
its checks fail on this asset, its metadata table says which symbol is kept out of the cycle and why.
It reads the bars the way the runner does (same market resource, same window, same bar) and applies
the cycle guard's own rules (``core.bar_quality``, plain numpy: no Great Expectations here, this is
the trading-cycle path). ``portfolio_state`` then trades every symbol whose bars passed; the guard
inside the cycle re-applies the same rules to what it trades on, so nothing depends on this step
having run. The output (the bars themselves) is kept by the IO manager for the Great Expectations
check (``market_bars_expectations``), which the ``data_quality`` job runs off the trading path.
"""


from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from tradepipe.adapters.market import MarketDataError
from tradepipe.assets.metadata import table
from tradepipe.core.agents import get_agents, max_history_needed, validate_history
from tradepipe.core.bar_quality import (
    RULES_BY_NAME,
    BarDefect,
    find_defects,
    history_columns,
)
from tradepipe.core.timeframes import last_closed_bar_open, timeframe_ms
from tradepipe.core.types import BarHistory
from tradepipe.resources import MarketDataResource, TradingConfigResource, WallClock

_SHOWN_DEFECTS = 50


class MarketBarsConfig(dg.Config):
    bar_open_ms: int | None = None
    """Open time (UTC ms) of the bar the cycle trades; empty means the newest closed bar."""


@dataclass(frozen=True)
class MarketBarsBatch:
    """What one cycle's agents read: each symbol's closed bars up to ``bar_open_ms``, checked at ``as_of_ms``."""

    bar_open_ms: int
    as_of_ms: int
    timeframe: str
    histories: dict[str, BarHistory]
    blocked: dict[str, str] = field(default_factory=dict)
    defects: list[BarDefect] = field(default_factory=list)


def check_batch(histories: dict[str, BarHistory], unavailable: dict[str, str], bar_open_ms: int, as_of_ms: int, timeframe: str) -> MarketBarsBatch:
    """The cycle guard's verdict per symbol (same order of tests as ``core.cycle``) and every defect, WARN included."""
    blocked = dict(unavailable)
    defects: list[BarDefect] = []
    for symbol, history in histories.items():
        if history.last_timestamp != bar_open_ms:
            blocked[symbol] = f"newest closed bar is {history.last_timestamp}, expected {bar_open_ms}"
        elif (reason := validate_history(history, as_of_ms)) is not None:
            blocked[symbol] = reason
        defects.extend(find_defects(history_columns(history), timeframe, as_of_ms))
    return MarketBarsBatch(bar_open_ms, as_of_ms, timeframe, histories, blocked, defects)


def bars_metadata(batch: MarketBarsBatch, symbols: list[str]) -> dict[str, Any]:
    rows = [
        {
            "symbol": symbol,
            "bars": len(batch.histories[symbol]) if symbol in batch.histories else 0,
            "status": "blocked" if symbol in batch.blocked else "tradable",
            "reason": batch.blocked.get(symbol, ""),
        }
        for symbol in symbols
    ]
    defects = [defect.as_dict() for defect in batch.defects[:_SHOWN_DEFECTS]]
    return {
        "bar": dg.MetadataValue.timestamp(batch.bar_open_ms / 1000),
        "symbols": table(rows, ["symbol", "bars", "status", "reason"]),
        "blocked_symbols": len(batch.blocked),
        "errors": sum(defect.severity == "ERROR" for defect in batch.defects),
        "warnings": sum(defect.severity == "WARN" for defect in batch.defects),
        "defects": table(defects, ["symbol", "timestamp", "rule", "severity", "detail"]),
    }


@dg.asset(
    group_name="trading",
    kinds={"python"},
    description="The closed bars each symbol's agents read this cycle, with the data-quality verdict per symbol.",
)
def market_bars(
    context: dg.AssetExecutionContext,
    config: MarketBarsConfig,
    trading: TradingConfigResource,
    market: MarketDataResource,
    clock: WallClock,
) -> dg.Output[MarketBarsBatch]:
    settings = trading.settings()
    timeframe = settings.resolved_timeframe
    step = timeframe_ms(timeframe)
    now = clock.now_ms()
    bar = last_closed_bar_open(now, timeframe) if config.bar_open_ms is None else config.bar_open_ms
    window = max(settings.history_bars, max_history_needed(get_agents(settings.agents)) + 5)  # as the runner reads
    source = market.build()
    histories: dict[str, BarHistory] = {}
    unavailable: dict[str, str] = {}
    for symbol in settings.symbols:
        try:
            histories[symbol] = source.closed_bars(symbol, timeframe, bar + step, window)
        except MarketDataError as exc:
            unavailable[symbol] = f"market data: {exc.reason}"
    batch = check_batch(histories, unavailable, bar, min(bar + step, now), timeframe)
    for symbol, reason in batch.blocked.items():
        context.log.warning(f"{symbol} kept out of the cycle for bar {bar}: {reason}")
    return dg.Output(batch, metadata=bars_metadata(batch, list(settings.symbols)))


@dg.asset_check(
    asset=market_bars,
    description="Every symbol's bars pass the blocking (ERROR) bar rules; a failure names the symbols kept out of the cycle.",
)
def market_bars_tradable(market_bars: MarketBarsBatch) -> dg.AssetCheckResult:
    errors = [d for d in market_bars.defects if RULES_BY_NAME[d.rule].blocks_in_cycle]
    return dg.AssetCheckResult(
        passed=not market_bars.blocked,
        # One symbol's bad bars block only that symbol: the others still trade, so this is a warning.
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "blocked": dg.MetadataValue.json(market_bars.blocked),
            "errors": table([d.as_dict() for d in errors[:_SHOWN_DEFECTS]], ["symbol", "timestamp", "rule", "detail"]),
        },
    )


@dg.asset_check(
    asset=market_bars,
    description="Great Expectations market-bar suite (every rule, WARN ones included) on the bars of the latest cycle.",
)
def market_bars_expectations(market_bars: MarketBarsBatch) -> dg.AssetCheckResult:
    from tradepipe.checks.bar_suite import suite_defects, validate_bars
    from tradepipe.core.bar_quality import bar_features_from_history

    features = [(bar_features_from_history(history), market_bars.timeframe) for history in market_bars.histories.values()]
    if not features:
        return dg.AssetCheckResult(passed=not market_bars.blocked, metadata={"note": "no bars"})
    result, frame = validate_bars(features, market_bars.as_of_ms)
    defects = suite_defects(result, frame, market_bars.as_of_ms)
    errors = [d for d in defects if d.severity == "ERROR"]
    return dg.AssetCheckResult(
        passed=not errors,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "bars": len(frame),
            "evaluated_expectations": len(result.results),
            "errors": len(errors),
            "warnings": len(defects) - len(errors),
            "defects": table([d.as_dict() for d in defects[:_SHOWN_DEFECTS]], ["symbol", "timestamp", "rule", "severity", "detail"]),
        },
    )
