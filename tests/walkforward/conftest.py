"""Slices of the real 2017-2021 Binance candles (../shared/data) for the walk-forward tests."""

from __future__ import annotations

from pathlib import Path

import pytest

CDD = ("ohlcv", "binance_cdd_2017_2021")
FILES = ("BTC_USDT-1h.csv", "ETH_USDT-1h.csv")


def write_slice(source: Path, target: Path, first_row: int, rows: int, edit=None) -> Path:
    """Rows [first_row, first_row + rows) of each file (header kept); ``edit(name, lines)`` may change them."""
    target.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        header, *lines = (source / name).read_text().splitlines()
        chosen = lines[first_row : first_row + rows]
        if edit is not None:
            chosen = edit(name, chosen)
        (target / name).write_text("\n".join([header, *chosen]) + "\n")
    return target


@pytest.fixture(scope="session")
def cdd_dir(shared_data: Path) -> Path:
    return shared_data.joinpath(*CDD)
