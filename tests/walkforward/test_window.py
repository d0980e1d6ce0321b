"""The engine's per-day window: ``fast_agent_streams`` equals ``core.performance.agent_streams`` on the same
table, including bars where only some symbols are present."""

from __future__ import annotations

import numpy as np

from tradepipe.adapters.db.analytics import signal_counts
from tradepipe.core.performance import BookRules, agent_streams
from tradepipe.research.window import SignalWindow, _SymbolVotes

AGENTS = ("a", "b", "c")


def _votes(rng: np.random.Generator, bars: np.ndarray) -> _SymbolVotes:
    n = bars.size
    abstained = rng.random((n, len(AGENTS))) < 0.2
    value = np.where(abstained, 0.0, rng.uniform(-1, 1, (n, len(AGENTS))))
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    return _SymbolVotes(bars, close, value, abstained, np.where(abstained, 0.0, rng.random((n, len(AGENTS)))))


def test_fast_streams_equal_agent_streams_with_uneven_coverage() -> None:
    rng = np.random.default_rng(3)
    hour = 3_600_000
    start = 1_600_000_000_000 // hour * hour
    full = start + hour * np.arange(300)
    window = SignalWindow(
        AGENTS,
        {
            "BTC/USDT": _votes(rng, full),
            "ETH/USDT": _votes(rng, np.delete(full, [5, 6, 100])),  # a gap
            "XRP/USDT": _votes(rng, full[150:]),  # starts later
            "ZZZ/USDT": _votes(rng, full[10:11]),  # one row: skipped, as agent_streams skips it
        },
    )
    rules = BookRules(fee_bps=10.0)
    expected = agent_streams(window.frame, rules)
    mine = window.fast_agent_streams(rules)
    assert list(mine.index) == list(expected.index) and len(mine) > 250
    assert np.allclose(mine[list(AGENTS)].to_numpy(), expected[list(AGENTS)].to_numpy(), rtol=0, atol=1e-12)
    assert window.signal_counts() == signal_counts(window.frame)
    assert set(window.frame.columns) >= {"bar_ts", "symbol", "agent_name", "value", "abstained", "close", "confidence"}
