"""``tradepipe data check``'s engine: the market-bar suite over a folder of candle files.

A file that cannot be read becomes one ``unreadable_file`` ERROR defect (the other files are still
checked); only a folder that cannot be listed raises ``CandleFileError``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

from tradepipe.adapters.candle_files import (
    CandleFileError,
    list_candle_files,
    read_candle_file,
)
from tradepipe.core.bar_quality import ERROR, BarDefect, bar_features, find_defects

Engine = Literal["great_expectations", "plain"]


@dataclass
class FolderCheck:
    directory: Path
    as_of_ms: int
    files: int = 0
    bars: int = 0
    defects: list[BarDefect] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def errors(self) -> int:
        return sum(defect.severity == ERROR for defect in self.defects)


def check_candle_folder(
    directory: Path,
    timeframe: str | None = None,
    *,
    as_of_ms: int | None = None,
    engine: Engine = "great_expectations",
) -> FolderCheck:
    """Check every candle file of ``directory`` (of ``timeframe`` only, if given) at check time
    ``as_of_ms`` (default: now). ``engine="plain"`` evaluates the same rules without GX (used by
    the tests to prove both agree)."""
    started = time.perf_counter()
    as_of = int(time.time() * 1000) if as_of_ms is None else as_of_ms
    report = FolderCheck(directory, as_of)
    features: list[tuple[pd.DataFrame, str]] = []
    for candle_file in list_candle_files(directory, timeframe):
        report.files += 1
        try:
            frame = read_candle_file(candle_file.path)
        except CandleFileError as exc:
            report.defects.append(BarDefect(candle_file.symbol, None, "unreadable_file", ERROR, str(exc)))
            continue
        report.bars += len(frame)
        features.append((bar_features(frame, candle_file.symbol, candle_file.timeframe, file_end=True), candle_file.timeframe))
    if engine == "plain":
        for frame, tf in features:
            report.defects.extend(find_defects(frame, tf, as_of))
    elif features:
        from tradepipe.checks.bar_suite import suite_defects, validate_bars

        result, frame = validate_bars(features, as_of)
        report.defects.extend(suite_defects(result, frame, as_of))
    report.seconds = time.perf_counter() - started
    return report


__all__ = ["CandleFileError", "FolderCheck", "check_candle_folder"]
