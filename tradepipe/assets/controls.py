"""The op behind the ``trader_control`` job: a trader's command from the Dagster UI, with its config.

No ``from __future__ import annotations`` here: Dagster reads the config class from the op's signature.
"""

import dagster as dg

from tradepipe.resources import LedgerDatabase, TradingConfigResource


class TraderControlConfig(dg.Config):
    action: str
    """pause, resume, forceexit or reload."""
    symbol: str | None = None
    """forceexit only: a symbol such as BTC/USDT, or all."""
    reason: str
    """Why (recorded in the ledger with the command)."""
    requested_by: str = "dagster-ui"
    """Who asks (recorded in the ledger)."""


@dg.op(description="Queue a trader's control command; the trading cycle applies it under its book lock.")
def queue_trader_control(context: dg.OpExecutionContext, config: TraderControlConfig, trading: TradingConfigResource, ledger: LedgerDatabase) -> None:
    from tradepipe.core.controls import ControlInputError
    from tradepipe.trading.controls import submit_control

    settings = trading.settings()
    try:
        queued = submit_control(settings, ledger.sessions(), book=settings.book, action=config.action, symbol=config.symbol,
                                reason=config.reason, requested_by=config.requested_by, source="dagster")
    except ControlInputError as exc:
        raise dg.Failure(description=str(exc)) from None
    context.log.info(queued.message)
