"""Benchmark one generation of the self-improvement loop as real Dagster runs on 4 years of real candles.

Run: ``.venv/bin/python benchmarks/bench_loop_assets.py [--candidates 40] [--data DIR]``.

On a fresh SQLite ledger and an ephemeral Dagster instance: ``variant_candidates`` (one generation),
every ``variant_evaluations`` partition in its own in-process run (what each queued run of a backfill
does, without the process start), then ``live_pool``. Prints CPU seconds of each stage (this process,
``resource.getrusage``), the CPU seconds per evaluation partition, the load average, and what the
selection decided. Figures, not a test: the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
from pathlib import Path
from typing import Any

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ohlcv" / "binance_cdd_2017_2021"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=40)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bench_loop_"))
    os.environ["TRADEPIPE_HOME"] = str(home)
    import dagster as dg

    from tradepipe.adapters.db.engine import upgrade
    from tradepipe.assets.variants import live_pool, variant_candidates, variant_evaluations
    from tradepipe.config.settings import load_settings
    from tradepipe.resources import build_resources

    settings = load_settings(home=home, symbols="BTC/USDT,ETH/USDT")
    upgrade(settings.resolved_database_url)
    resources = build_resources(settings, "test")
    instance = dg.DagsterInstance.ephemeral()
    figures: dict[str, Any] = {}

    start = _cpu()
    run_config = {"ops": {"variant_candidates": {"config": {"data_dir": str(args.data), "candidates": args.candidates}}}}
    proposed = dg.materialize([variant_candidates], resources=resources, run_config=run_config, instance=instance)
    names = proposed.asset_materializations_for_node("variant_candidates")[0].metadata["partitions"].value
    figures["variant_candidates"] = _cpu() - start

    start = _cpu()
    for name in names:
        dg.materialize([variant_evaluations], partition_key=name, resources=resources, instance=instance)
    figures["variant_evaluations (all partitions)"] = _cpu() - start
    per_partition = figures["variant_evaluations (all partitions)"] / len(names)

    start = _cpu()
    selected = dg.materialize([live_pool], resources=resources, instance=instance)
    figures["live_pool"] = _cpu() - start
    action = selected.asset_materializations_for_node("live_pool")[0].metadata["action"].value

    print(f"data: {args.data}; {len(names)} candidates; load average {os.getloadavg()[0]:.1f}")
    for stage, seconds in figures.items():
        print(f"{stage:40s} {seconds:7.1f} CPU s")
    print(f"{'per evaluation partition':40s} {per_partition:7.2f} CPU s")
    print(f"live_pool: {action}")


if __name__ == "__main__":
    main()
