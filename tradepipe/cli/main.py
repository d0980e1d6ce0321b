"""The ``tradepipe`` command line: one module per command group, registered here."""

from __future__ import annotations

import click

from tradepipe.cli.backtest import backtest
from tradepipe.cli.context import LedgerErrorsGroup
from tradepipe.cli.data import data
from tradepipe.cli.db import db
from tradepipe.cli.deploy import deploy
from tradepipe.cli.reports import COMMANDS as REPORT_COMMANDS
from tradepipe.cli.risk import risk
from tradepipe.cli.trader import plot, profit, status, trades, warmup
from tradepipe.cli.variants import variants
from tradepipe.cli.walkforward import walkforward
from tradepipe.cli.weights import weights


@click.group(cls=LedgerErrorsGroup)  # database failures print one line, not a traceback
def main() -> None:
    """tradepipe: an autonomous crypto trading pipeline on Dagster (paper trading by default)."""


for _command in (db, status, backtest, weights, risk, trades, profit, plot, warmup, *REPORT_COMMANDS, data, deploy, walkforward, variants):
    main.add_command(_command)

if __name__ == "__main__":
    main()
