"""The fast path's votes equal the per-bar agents' on real candles to 1e-12, and its window guard equals
``validate_history``: the engine may use it in place of calling every agent on every bar."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tradepipe.core.agents import get_agents, validate_history
from tradepipe.research.data import SymbolBars, load_market
from tradepipe.research.signals import FAST_AGENTS, build_signal_table, window_validity
from tests.walkforward.conftest import write_slice

HISTORY = 200


def _compare(bars: SymbolBars, rows: np.ndarray) -> None:
    agents = get_agents()
    reference = build_signal_table(bars, agents, HISTORY, "per_bar", rows)
    fast = build_signal_table(bars, agents, HISTORY, "fast", rows)
    voted = rows[reference.valid[rows]]
    assert voted.size > 0
    assert np.array_equal(reference.abstained[voted], fast.abstained[voted])
    assert np.max(np.abs(reference.value[voted] - fast.value[voted])) <= 1e-12
    assert np.max(np.abs(reference.confidence[voted] - fast.confidence[voted])) <= 1e-12
    for k, name in enumerate(reference.agents):  # the vectorised agents really voted (not all abstentions)
        if name in FAST_AGENTS:
            assert (~fast.abstained[voted, k]).mean() > 0.9


def test_fast_votes_equal_the_per_bar_agents_on_real_candles(cdd_dir: Path) -> None:
    market = load_market(cdd_dir, ["BTC/USDT", "ETH/USDT"], "1h")
    # BTC from the file's first row: short windows, the bogus first bar, the 5-hour outage at row 879.
    _compare(market.bars["BTC/USDT"], np.arange(0, 1400))
    # ETH in 2020-21: zero-volume bars, two-decimal prices gone, a 2-hour gap at row 30,566.
    _compare(market.bars["ETH/USDT"], np.arange(30_300, 31_000))


def test_flat_and_defective_windows_follow_the_agents(cdd_dir: Path, tmp_path: Path) -> None:
    def edit(name: str, lines: list[str]) -> list[str]:
        # a stretch of constant prices (flat-market branches) and a bar with high below low
        out = []
        for i, line in enumerate(lines):
            cells = line.split(",")
            if 400 <= i < 430:
                cells[2:6] = [lines[399].split(",")[5]] * 4
            if i == 600:
                cells[3], cells[4] = cells[4], cells[3]
            out.append(",".join(cells))
        return out

    directory = write_slice(cdd_dir, tmp_path / "edited", 5_000, 900, edit)
    bars = load_market(directory, ["BTC/USDT"], "1h", drop_last_bar=False).bars["BTC/USDT"]
    valid = window_validity(bars, HISTORY)
    assert valid.tolist() == [validate_history(bars.window(i, HISTORY)) is None for i in range(len(bars))]
    assert not valid[600:800].any() and valid[800:].all()
    _compare(bars, np.arange(380, 900))
    fast = build_signal_table(bars, get_agents(), HISTORY, "fast", np.arange(420, 430))
    k = fast.agents.index("mean_reversion")
    flat_votes = fast.value[420:430, k], fast.confidence[420:430, k], fast.abstained[420:430, k]
    assert not flat_votes[0].any() and not flat_votes[1].any() and not flat_votes[2].any()  # "flat prices": 0, not abstained
