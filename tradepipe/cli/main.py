"""The ``tradepipe`` command line: one module per command group, imported only when its command runs.

``tradepipe --help`` lists the commands from the table below without importing them, so it answers at
once; ``tests/test_cli_main.py`` holds the table equal to the commands' own help.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from tradepipe.cli.context import LedgerErrorsGroup

# name -> (module, attribute, the command's short help as its docstring starts)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "db": ("tradepipe.cli.db", "db", "Database schema migrations (Alembic)."),
    "status": ("tradepipe.cli.trader", "status", "Portfolio, last trading cycle and current weights."),
    "control": ("tradepipe.cli.control", "control", "Control the running book: pause/resume new entries, force-exit, reload weights (applied by the cycle)."),
    "backtest": ("tradepipe.cli.backtest", "backtest", "Run the live trading cycle bar by bar over recorded candles into a separate book (fixed weights; `tradepipe walkforward` runs the same cycle with daily weight decisions, in memory)."),
    "results": ("tradepipe.cli.results", "results", "Saved results of `tradepipe backtest` and `walkforward` (TRADEPIPE_HOME/results/)."),
    "weights": ("tradepipe.cli.weights", "weights", "Agent weights: what is live, what was decided, and explicit promotion of a recorded set."),
    "risk": ("tradepipe.cli.risk", "risk", "Risk controls."),
    "trades": ("tradepipe.cli.trader", "trades", "Round trips (closed and open) per symbol: entry and exit, quantity, P&L after fees, agents credited."),
    "profit": ("tradepipe.cli.trader", "profit", "Realised and unrealised P&L, fees, trades closed and win rate per day, week or month."),
    "performance": ("tradepipe.cli.trader", "performance", "Trades, win rate, average holding time, profit and fees per pair and per deciding agent."),
    "balance": ("tradepipe.cli.trader", "balance", "Cash, positions at the last mark and equity, as the ledger valued them after the last cycle."),
    "plot": ("tradepipe.cli.trader", "plot", "Write a self-contained HTML chart: candles with entries and exits, agents' votes and the ensemble target, equity."),
    "warmup": ("tradepipe.cli.trader", "warmup", "First start on the synthetic market: trade the last days of bars into the empty live book (marked warm-up)."),
    "email": ("tradepipe.cli.reports", "email", "Where reports are emailed: store the SMTP settings, send a test message."),
    "report": ("tradepipe.cli.reports", "report", "The report of the 2-hour window in progress (data so far), as JSON, HTML and the .eml it would send."),
    "tasks": ("tradepipe.cli.reports", "tasks", "Project tasks opened from persisting recommendations."),
    "data": ("tradepipe.cli.data", "data", "Data quality of recorded market data."),
    "deploy": ("tradepipe.cli.deploy", "deploy", "The scheduled deployment on PostgreSQL (docs/deployment.md)."),
    "walkforward": ("tradepipe.cli.walkforward", "walkforward", "Walk-forward evaluation of the whole loop (agents, ensemble, risk, paper fills, daily weights)."),
    "variants": ("tradepipe.cli.variants", "variants", "Strategy variants: candidates, evaluations, the live pool; promote or retire by hand."),
}


class LazyGroup(LedgerErrorsGroup):
    """Imports a command's module when the command is looked up, not when ``tradepipe`` starts."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute, _ = COMMANDS[name]
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        width = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [(name, _shortened(text, width)) for name, (_, _, text) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _shortened(text: str, width: int) -> str:
    """The first sentence, cut at a word to fit ``width`` with "..." (as click shortens a command's help)."""
    first = text.split(". ")[0].rstrip(".") + "." if ". " in text else text
    if len(first) <= width:
        return first
    return first[: max(width - 3, 1)].rsplit(" ", 1)[0].rstrip(",;:") + "..."


@click.group(cls=LazyGroup)  # database failures print one line, not a traceback
def main() -> None:
    """tradepipe: an autonomous crypto trading pipeline on Dagster (paper trading by default)."""


def command(name: str) -> Any:
    """The click command ``name`` (imports its module)."""
    return main.get_command(click.Context(main), name)


if __name__ == "__main__":
    main()
