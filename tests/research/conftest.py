"""The real 2017-2021 Binance candles (../shared/data) for the research tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.walkforward.conftest import CDD, write_slice

__all__ = ["write_slice"]


@pytest.fixture(scope="session")
def cdd_dir(shared_data: Path) -> Path:
    return shared_data.joinpath(*CDD)
