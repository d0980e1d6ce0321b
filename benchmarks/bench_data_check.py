"""Time ``tradepipe data check`` over the three 4-year 1h files (about 102,000 bars), Great Expectations included.

Run: ``.venv/bin/python benchmarks/bench_data_check.py [DIR]`` (default: ``../shared/data/ohlcv/binance_cdd_2017_2021``).
The command runs in a fresh process, as a user runs it, so the figure includes Python start-up, the
``great_expectations`` import (4-6 s on an idle machine) and the suite; the in-process split below says
where the time goes. Target: under 10 s.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "ohlcv" / "binance_cdd_2017_2021"
TARGET_SECONDS = 10.0


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(os.environ.get("TRADEPIPE_TEST_SHARED_DATA", DEFAULT_DIR.parents[1])) / "ohlcv" / "binance_cdd_2017_2021"
    if not folder.is_dir():
        sys.exit(f"no candle folder at {folder}")
    tradepipe = Path(sys.executable).with_name("tradepipe")
    started = time.perf_counter()
    run = subprocess.run([str(tradepipe), "data", "check", str(folder), "--timeframe", "1h"], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    summary = run.stdout.strip().splitlines()[-1]

    import_started = time.perf_counter()
    import great_expectations  # noqa: F401

    gx_import = time.perf_counter() - import_started
    from tradepipe.checks.candle_folder import check_candle_folder

    check_candle_folder(folder, "1h")  # the GX context is built once per process: keep it out of the split
    suite = check_candle_folder(folder, "1h")
    plain = check_candle_folder(folder, "1h", engine="plain")
    print(f"tradepipe data check {folder.name} --timeframe 1h: {wall:.2f} s wall (target < {TARGET_SECONDS:.0f} s) -> {summary}")
    print(f"  in one process: import great_expectations {gx_import:.2f} s, read + rules + GE suite {suite.seconds:.2f} s, "
          f"read + plain rules {plain.seconds:.2f} s, {suite.bars} bars")
    print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
