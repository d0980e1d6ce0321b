"""``tradepipe walkforward``: the whole loop over recorded candles, adaptive weights against equal weight,
each agent alone and buy-and-hold, written to TRADEPIPE_HOME/walkforward/NAME/ (summary.json, results.json,
report.html)."""

from __future__ import annotations

import json
import sys
import textwrap
from decimal import Decimal, InvalidOperation
from pathlib import Path

import click

from tradepipe.cli.progress import PROGRESS_EVERY_S, progress_bar
from tradepipe.cli.results import BREAKDOWN_KINDS, breakdown_option, render_results, save_results


def _decimal(text: str | None, option: str) -> Decimal | None:
    if text is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        raise click.BadParameter(f"{text!r} is not a number", param_hint=option) from None


@click.command("walkforward")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path), help="Folder of BASE_QUOTE-TIMEFRAME.csv (or .parquet) candle files.")
@click.option("--symbols", default=None, help="Comma-separated symbols, e.g. BTC/USDT,ETH/USDT (default: TRADEPIPE_SYMBOLS).")
@click.option("--timeframe", default="1h", show_default=True, help="Bar timeframe of the files.")
@click.option("--name", required=True, help="Run name: results go to TRADEPIPE_HOME/walkforward/NAME/.")
@click.option("--start", default=None, help="First bar to trade, ISO (UTC unless zoned), e.g. 2019-01-01.")
@click.option("--end", default=None, help="Last bar to trade, ISO; a bare date includes that whole day.")
@click.option("--methods", default=None, help="Comma-separated weight methods to compare (default: TRADEPIPE_OPTIMIZER_METHOD); loop: the self-improvement loop (discovery every 14 days, hedge over the pool).")
@click.option("--fee-bps", default=None, help="Fee per fill in basis points (default: TRADEPIPE_FEE_BPS).")
@click.option("--slippage-bps", default=None, help="Slippage per fill in basis points (default: TRADEPIPE_SLIPPAGE_BPS).")
@click.option("--window-days", default=None, type=int, help="Performance window of each daily decision (default: TRADEPIPE_PERFORMANCE_WINDOW_DAYS).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run of the same name and inputs from its checkpoint.")
@click.option("--per-bar-signals", is_flag=True, help="Call every agent on every bar (the reference; ~20x slower) instead of the proven-equal fast path.")
@click.option("--bootstrap-resamples", default=2000, show_default=True, type=click.IntRange(100, 100000), help="Resamples of the Sharpe-difference bootstrap.")
@click.option("--seed", default=20240909, show_default=True, type=int, help="Seed of the bootstrap.")
@click.option("--keep-last-bar", is_flag=True, help="Trade the files' last bar too (exchange dumps end with an unfinished candle).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Processes to split the compared strategies among (same results; a run with more than 1 is not resumable).")
@click.option("--no-agent-books", is_flag=True, help="Leave out the agent:<name> books (each agent alone): faster when comparing methods.")
@click.option("--quiet", is_flag=True, help="No progress bar on the terminal (--json implies it; a pipe never gets one).")
@click.option("--json", "as_json", is_flag=True, help="Print summary.json to stdout instead of the table.")
@breakdown_option
def walkforward(
    data_dir: Path, symbols: str | None, timeframe: str, name: str, start: str | None, end: str | None, methods: str | None,
    fee_bps: str | None, slippage_bps: str | None, window_days: int | None, resume: bool, per_bar_signals: bool,
    bootstrap_resamples: int, seed: int, keep_last_bar: bool, workers: int, no_agent_books: bool, quiet: bool, as_json: bool,
    breakdown: str | None,
) -> None:
    """Walk-forward evaluation of the whole loop (agents, ensemble, risk, paper fills, daily weights)."""
    from tradepipe.cli.context import command_settings
    from tradepipe.research.data import WalkForwardInputError
    from tradepipe.research.run import WalkForwardRequest, run_request

    overrides: dict[str, object] = {"timeframe": timeframe}
    if symbols:
        overrides["symbols"] = symbols
    settings = command_settings(**overrides)
    request = WalkForwardRequest(
        data_dir=data_dir, name=name, symbols=tuple(settings.symbols), timeframe=timeframe, start=start, end=end,
        methods=tuple(m.strip() for m in methods.split(",") if m.strip()) if methods else None,
        fee_bps=_decimal(fee_bps, "--fee-bps"), slippage_bps=_decimal(slippage_bps, "--slippage-bps"), window_days=window_days,
        resume=resume, signal_mode="per_bar" if per_bar_signals else "fast", resamples=bootstrap_resamples, seed=seed,
        drop_last_bar=not keep_last_bar, workers=workers, include_agents=not no_agent_books,
        breakdown=BREAKDOWN_KINDS[breakdown] if breakdown else None,  # type: ignore[arg-type]
    )
    try:
        with progress_bar(f"walkforward {name}", "bars", then=f"walkforward {name}: summary and report", quiet=quiet or as_json) as advance:
            outcome = run_request(
                settings, request, progress=lambda p: advance(p.bars_done, p.bars_total), say=lambda line: click.echo(line, err=True),
                progress_every_s=PROGRESS_EVERY_S,
            )
    except WalkForwardInputError as exc:
        click.echo(f"walkforward refused: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("walkforward interrupted: no summary written; continue with the same command plus --resume", err=True)
        sys.exit(130)
    if outcome.resumed_from_bar:
        click.echo(f"resumed: {outcome.resumed_from_bar} bars were done by the checkpoint", err=True)
    assert outcome.results is not None
    saved = save_results(settings.home, outcome.results)
    if as_json:
        click.echo(json.dumps(outcome.summary, indent=2))
        return
    for line in render_results(outcome.results):
        click.echo(line)
    click.echo("")
    for key, comparison in outcome.summary["comparisons"].items():
        click.echo(textwrap.fill(comparison["verdict"], width=118, subsequent_indent="  "))
        if "pool" in comparison:  # the self-improvement loop: what it tried and what it adopted
            promoted = sum(1 for p in comparison["promotions"] if p["action"] == "promote")
            last = comparison["pool"][-1]["members"] if comparison["pool"] else []
            dsr, pbo = comparison["deflated_sharpe"], comparison["pbo"]
            click.echo(
                textwrap.fill(
                    f"{key}: {comparison['trials']} variants tried, {promoted} promotion(s); deflated Sharpe of the book "
                    f"{'n/a' if dsr is None else f'{dsr:.3f}'}, PBO {'n/a' if pbo is None else f'{pbo:.2f}'}; "
                    f"pool at the end: {', '.join(last) or 'the base agents only'}",
                    width=118,
                    subsequent_indent="  ",
                )
            )
    click.echo(f"results: {saved} (tradepipe results show {request.name})")
    click.echo(f"summary: {outcome.summary_path}")
    click.echo(f"tables:  {outcome.results_path}")
    click.echo(f"report:  {outcome.report_path}")
