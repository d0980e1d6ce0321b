"""Whole-process CPU seconds of ``tradepipe --help`` and ``tradepipe status`` (light path and full settings).

Run: ``.venv/bin/python benchmarks/bench_cli_start.py [RUNS]``. Each command runs RUNS times (default 7) as a
fresh process on a fresh migrated SQLite ledger (one warm-up run first); the figure is the child's user +
system CPU from ``resource.getrusage``, median and spread. Wall time is not printed: on a shared machine it
measures the other jobs. Quote the load average printed with it.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent / "tradepipe"


def cpu_seconds(args: list[str], env: dict[str, str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([str(BIN), *args], env=env, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    with tempfile.TemporaryDirectory() as home:
        env = {name: value for name, value in os.environ.items() if not name.startswith("TRADEPIPE_")}
        env["TRADEPIPE_HOME"] = home
        subprocess.run([str(BIN), "db", "upgrade"], env=env, check=True, stdout=subprocess.DEVNULL, cwd=home)
        cases = {
            "tradepipe --help": (["--help"], env),
            "tradepipe status (light path)": (["status"], env),
            "tradepipe status (full settings: TRADEPIPE_SEED set)": (["status"], {**env, "TRADEPIPE_SEED": "7"}),
        }
        print(f"load average {os.getloadavg()[0]:.1f}; {runs} runs each; CPU s (user + system) of the whole process")
        for label, (args, case_env) in cases.items():
            cpu_seconds(args, case_env)  # warm-up: the page cache, not the figure
            figures = sorted(cpu_seconds(args, case_env) for _ in range(runs))
            print(f"{label:<55} median {statistics.median(figures):.3f}  min {figures[0]:.3f}  max {figures[-1]:.3f}")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
