"""The results tables of a walk-forward (``results.json`` beside summary.json): every engine book's
fills through :mod:`tradepipe.core.results`, the builders ``tradepipe backtest`` uses on its ledger."""

from __future__ import annotations

from typing import Any

import numpy as np

from tradepipe.core.results import ClosingOrder, TradedBook, strategy_results
from tradepipe.core.trades import LedgerFill, PeriodKind
from tradepipe.research.engine import BookState, EngineRun


def traded_book(book: BookState) -> TradedBook:
    """The book's fill log as the ledger would hold it: fill ids in the order applied, with the
    P&L each fill realised (so the round trips are checked against the engine's own accounting).
    The orders' contributions are not kept (the tables do not credit agents)."""
    fills, closing = [], {}
    for fill_id, (fill, realized, reason, requested, sent) in enumerate(book.fill_log, start=1):
        fills.append(LedgerFill(fill_id, fill, booked_realized_pnl=realized))
        closing[fill_id] = ClosingOrder(reason, requested, sent)
    return TradedBook(fills, closing, book.equity, book.last_marks)


def walkforward_results(
    run: EngineRun, series: dict[str, dict[str, np.ndarray]], *, name: str, quote_currency: str, breakdown: PeriodKind | None = None
) -> dict[str, Any]:
    """The results document of ``run``: the per-book tables of its engine books, the summary block of
    the strategies priced without cycling (buy-and-hold, from ``series``)."""
    config = run.config
    untraded = {
        key: {"equity": s["equity"], "traded": s["traded"], "fees": float(s["fees"][0])}
        for key, s in series.items() if key not in run.books
    }
    return strategy_results(
        name=name, quote_currency=quote_currency, timeframe=config.timeframe, periods_per_year=config.periods_per_year,
        starting_cash=config.starting_cash, bar_ms=[int(b) for b in run.bars], books={key: traded_book(book) for key, book in run.books.items()},
        untraded=untraded, breakdown=breakdown,
    )
