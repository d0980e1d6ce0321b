"""``day_charts``: the day's chart per symbol (candles, entries and exits, votes, target, equity).

Drawn from the ledger the trading cycle writes (so it sits downstream of ``portfolio_state``) every
10 minutes by the ``day_charts_every_10_minutes`` schedule, not inside the cycle: a chart takes about
a second per symbol to draw, the cycle stays within its bar. The files are self-contained HTML under
``TRADEPIPE_HOME/charts/<book>/<day>/``; ``portfolio_state`` links them.
"""

from datetime import datetime, timezone

import dagster as dg

from tradepipe.resources import LedgerDatabase, TradingConfigResource, WallClock


@dg.asset(
    deps=[dg.AssetKey("portfolio_state")],
    group_name="trading",
    kinds={"python", "html"},
    description="Today's chart per symbol: candles with entries and exits, each agent's vote, the ensemble target, equity.",
)
def day_charts(trading: TradingConfigResource, ledger: LedgerDatabase, clock: WallClock) -> dg.MaterializeResult:
    from tradepipe.reports.day_charts import chart_path, write_chart

    settings = trading.settings()
    now = datetime.fromtimestamp(clock.now_ms() / 1000, tz=timezone.utc)
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    with ledger.sessions()() as session:
        paths = {
            symbol: write_chart(settings, session, settings.book, symbol, day_start, chart_path(settings.home, settings.book, symbol, day_start.date().isoformat()))
            for symbol in settings.symbols
        }
    return dg.MaterializeResult(
        metadata={"day": day_start.date().isoformat(), **{f"chart {s}": dg.MetadataValue.path(str(p)) for s, p in paths.items()}}
    )


