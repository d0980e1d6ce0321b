"""Candle files as recorded (``BASE_QUOTE-TIMEFRAME.csv`` or ``.parquet``), read for checking.

Unlike :class:`~tradepipe.adapters.market.ReplayMarket`, which sorts rows for trading, this keeps the
rows exactly as the file has them (order, duplicates, unparsable numbers as NaN), because the checks
are about what the file holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import polars as pl

from tradepipe.core.timeframes import timeframe_ms

OHLCV_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
_NAME = re.compile(r"^(?P<base>[A-Za-z0-9]+)_(?P<quote>[A-Za-z0-9]+)-(?P<timeframe>\d+[smhdw])$")


class CandleFileError(Exception):
    """A candle file that cannot be read at all (the reason is one line)."""


@dataclass(frozen=True)
class CandleFile:
    path: Path
    symbol: str  # BASE/QUOTE
    timeframe: str


def list_candle_files(directory: Path, timeframe: str | None = None) -> list[CandleFile]:
    """The candle files in ``directory`` (Parquet wins over a CSV of the same name), optionally of one timeframe.

    Raises ``CandleFileError`` when the folder cannot be listed.
    """
    try:
        entries = sorted(directory.iterdir())
    except OSError as exc:
        raise CandleFileError(f"cannot read folder {directory}: {exc.strerror or exc}") from exc
    found: dict[str, CandleFile] = {}
    for path in entries:
        if path.suffix not in (".csv", ".parquet") or not path.is_file():
            continue
        match = _NAME.match(path.stem)
        if not match:
            continue
        try:
            timeframe_ms(match["timeframe"])
        except ValueError:
            continue
        if timeframe is not None and match["timeframe"] != timeframe:
            continue
        if path.stem in found and found[path.stem].path.suffix == ".parquet":
            continue
        found[path.stem] = CandleFile(path, f"{match['base'].upper()}/{match['quote'].upper()}", match["timeframe"])
    return list(found.values())


def read_candle_file(path: Path) -> pd.DataFrame:
    """The file's OHLCV rows in file order; a value that is not a number becomes NaN (timestamp: NaN too)."""
    try:
        frame = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise CandleFileError(f"cannot read {path}: {exc}") from exc
    missing = [name for name in OHLCV_COLUMNS if name not in frame.columns]
    if missing:
        raise CandleFileError(f"{path} lacks column(s) {', '.join(missing)}")
    if frame.height == 0:
        raise CandleFileError(f"{path} holds no rows (a header only)")
    frame = frame.select(
        pl.col("timestamp").cast(pl.Float64, strict=False),
        *(pl.col(name).cast(pl.Float64, strict=False) for name in OHLCV_COLUMNS[1:]),
    )
    return pd.DataFrame({name: frame[name].to_numpy() for name in OHLCV_COLUMNS})
