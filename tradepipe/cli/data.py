"""``tradepipe data``: data-quality commands on recorded market data.

``tradepipe data check DIR [--timeframe TF] [--json]`` runs the market-bar Great Expectations suite
over a folder of candle files (``BASE_QUOTE-TIMEFRAME.csv|.parquet``) and prints one row per defect,
or with ``--json`` a JSON list of ``{"symbol", "timestamp", "rule", "severity", "detail"}`` objects
(``timestamp``: open time in ms of the bar concerned; for a gap, the first missing bar). It exits 0
whenever it ran, whatever it found; a folder it cannot read exits 2 with one line on stderr.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from tradepipe.cli.progress import working


@click.group()
def data() -> None:
    """Data quality of recorded market data."""


def _when(ms: int | None) -> str:
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


@data.command("check")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--timeframe", default=None, help="Only the files of this timeframe (e.g. 1h); default: every candle file.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per defect.")
def check(directory: Path, timeframe: str | None, as_json: bool) -> None:
    """Check every candle file in DIRECTORY against the market-bar rules (see docs/data-quality.md)."""
    from tradepipe.checks.candle_folder import CandleFileError, check_candle_folder
    from tradepipe.core.timeframes import timeframe_ms

    if timeframe is not None:
        try:
            timeframe_ms(timeframe)
        except ValueError as exc:
            click.echo(f"data check: {exc}", err=True)
            sys.exit(2)
    if not directory.is_dir():
        click.echo(f"data check: {directory} is not a readable folder", err=True)
        sys.exit(2)
    try:
        with working(f"checking the candle files in {directory}", quiet=as_json):
            report = check_candle_folder(directory, timeframe)
    except CandleFileError as exc:
        click.echo(f"data check: {exc}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps([defect.as_dict() for defect in report.defects], indent=1))
        return
    for defect in report.defects:
        click.echo(f"{defect.severity:<5}  {defect.symbol:<12} {_when(defect.timestamp):<16}  {defect.rule:<26} {defect.detail}")
    warnings = len(report.defects) - report.errors
    click.echo(
        f"{report.files} file(s), {report.bars} bars checked in {report.seconds:.1f} s: "
        f"{report.errors} error(s), {warnings} warning(s)"
    )
