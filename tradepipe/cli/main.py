"""The ``tradepipe`` command line: one module per command group, registered here."""

from __future__ import annotations

import click

from tradepipe.cli.backtest import backtest
from tradepipe.cli.context import LedgerErrorsGroup
from tradepipe.cli.control import control
from tradepipe.cli.data import data
from tradepipe.cli.db import db
from tradepipe.cli.deploy import deploy
from tradepipe.cli.reports import COMMANDS as REPORT_COMMANDS
from tradepipe.cli.results import results
from tradepipe.cli.risk import risk
from tradepipe.cli.trader import balance, performance, plot, profit, status, trades, warmup
from tradepipe.cli.walkforward import walkforward
from tradepipe.cli.weights import weights


@click.group(cls=LedgerErrorsGroup)  # database failures print one line, not a traceback
def main() -> None:
    """tradepipe: an autonomous crypto trading pipeline on Dagster (paper trading by default)."""


for _command in (db, status, control, backtest, results, weights, risk, trades, profit, performance, balance, plot, warmup, *REPORT_COMMANDS, data, deploy, walkforward):
    main.add_command(_command)

if __name__ == "__main__":
    main()
