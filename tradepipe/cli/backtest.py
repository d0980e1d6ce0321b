"""``tradepipe backtest``: the trading cycle over recorded candles into a separate book."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from tradepipe.cli.context import command_settings
from tradepipe.cli.progress import PROGRESS_EVERY_S, progress_bar, working
from tradepipe.cli.results import breakdown_option, ledger_results, render_results, save_results
from tradepipe.core.formatting import money
from tradepipe.core.timeframes import iso_utc


@click.command()
@click.option("--replay-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Folder of BASE_QUOTE-TIMEFRAME.csv|.parquet candles (e.g. ../shared/data/ohlcv/binance_2018_octobot).")
@click.option("--book", default="backtest", show_default=True, help="Ledger book to write (never the live book).")
@click.option("--symbols", default=None, help="Comma-separated symbols (default: TRADEPIPE_SYMBOLS).")
@click.option("--timeframe", default=None, help="Bar timeframe of the files (default: TRADEPIPE_TIMEFRAME or 1h).")
@click.option("--reset", is_flag=True, help="Replace the book if it already holds a backtest.")
@click.option("--reset-live-book", default=None, metavar="NAME",
              help="Replace the book even though it holds live (non-backtest) cycles; NAME must repeat --book.")
@click.option("--keep-last-bar", is_flag=True, help="Trade the files' last bar too (exchange dumps end with an unfinished candle).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--start", default=None, help="First bar to trade, ISO (UTC unless zoned), e.g. 2019-01-01.")
@click.option("--end", default=None, help="Last bar to trade, ISO; a bare date includes that whole day.")
@click.option("--quiet", is_flag=True, help="No progress bar on the terminal (--json implies it; a pipe never gets one).")
@breakdown_option
def backtest(
    replay_dir: Path, book: str, symbols: str | None, timeframe: str | None, reset: bool, reset_live_book: str | None,
    keep_last_bar: bool, as_json: bool, start: str | None, end: str | None, quiet: bool, breakdown: str | None,
) -> None:
    """Run the live trading cycle bar by bar over recorded candles into a separate book (fixed weights;
    `tradepipe walkforward` runs the same cycle with daily weight decisions, in memory)."""
    from tradepipe.adapters.market import ReplayMarket
    from tradepipe.config.names import NameRefused, check_name
    from tradepipe.trading.backtest import BookInUseError, run_backtest
    from tradepipe.research.data import WalkForwardInputError
    from tradepipe.research.run import parse_time

    try:
        check_name(book, "book")
        start_ms, end_ms = parse_time(start), parse_time(end, end=True)
    except (NameRefused, WalkForwardInputError) as exc:
        click.echo(f"backtest refused: {exc}", err=True)
        sys.exit(2)

    overrides: dict[str, object] = {"market_source": "replay", "replay_dir": replay_dir, "timeframe": timeframe or "1h"}
    if symbols:
        overrides["symbols"] = symbols
    settings = command_settings(**overrides)
    # a file that cannot be read (missing, empty, a header only, a column missing) leaves its symbol out
    unreadable = ReplayMarket(replay_dir, mode="stepped", drop_last_bar=not keep_last_bar).unreadable(settings.symbols, settings.resolved_timeframe)
    for symbol, reason in unreadable.items():
        click.echo(f"backtest: {symbol} left out: {reason}", err=True)
    if len(unreadable) == len(settings.symbols):
        click.echo("backtest refused: no symbol has a readable candle file", err=True)
        sys.exit(2)
    if unreadable:
        settings = command_settings(**{**overrides, "symbols": ",".join(s for s in settings.symbols if s not in unreadable)})
    try:
        with progress_bar(f"backtest {book}", "bars", quiet=quiet or as_json) as advance:
            summary = run_backtest(
                settings, replay_dir, book, reset=reset, reset_live_book=reset_live_book, drop_last_bar=not keep_last_bar, start_ms=start_ms,
                end_ms=end_ms, on_progress=lambda p: advance(p.bars_done, p.bars_total), progress_every_s=PROGRESS_EVERY_S,
            )
    except (BookInUseError, ValueError) as exc:
        click.echo(f"backtest refused: {exc}", err=True)
        sys.exit(2)
    report = {
        "book": summary.book,
        "cycles": summary.cycles,
        "first_bar": _iso(summary.first_bar_ms),
        "last_bar": _iso(summary.last_bar_ms),
        "starting_cash": str(summary.starting_cash),
        "final_equity": money(summary.final_equity, grouping=False),
        "return_pct": float((summary.final_equity / summary.starting_cash - 1) * 100),
        "fills": summary.fills,
        "cycles_with_skipped_symbols": summary.skipped_cycles,
    }
    with working(f"backtest {book}: the results tables", quiet=quiet or as_json):
        document = ledger_results(settings, summary.book, breakdown)
        saved = save_results(settings.home, document)
    if as_json:
        click.echo(json.dumps({**report, "results": document, "results_file": str(saved)}, indent=2))
    else:
        click.echo(
            f"backtest {report['book']}: {report['cycles']} bars {report['first_bar']} .. {report['last_bar']}, "
            f"equity {report['starting_cash']} -> {report['final_equity']} ({report['return_pct']:+.2f}%), {report['fills']} fills"
        )
        click.echo("\n".join([*render_results(document)[1:], "", f"saved: {saved} (tradepipe results show {summary.book})"]))


def _iso(ms: int) -> str:
    return iso_utc(ms, timespec="auto", suffix="+00:00")
