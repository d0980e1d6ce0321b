"""Benchmark the whole self-improvement loop as a walk-forward (``tradepipe walkforward --methods loop``)
on 4 years of BTC/USDT + ETH/USDT 1h (../shared/data, 2017-08 .. 2021-08), next to the single-method one.

Run: ``.venv/bin/python benchmarks/bench_loop_walkforward.py [--data DIR] [--only loop|hedge]``.

Each measured run is a whole child process running ``research.run.run_request`` as the command does
(imports, CSV read, signals, every cycle, every daily decision, summary.json and report.html written to a
temporary TRADEPIPE_HOME), timed in CPU seconds (user + system of the child) with its peak memory (max
RSS) and the load average before and after:

* ``hedge``: ``--methods hedge --no-agent-books``: adaptive:hedge and equal_weight (the single-method run);
* ``loop``: ``--methods loop --no-agent-books``: discovery every 14 days (``LoopConfig()`` defaults: 40
  random candidates plus 2 mutations per member, 90-day evaluation window), the pool traded daily through
  the engine, and equal_weight (the day-1 system).

Targets for ``loop``: at most 5 minutes, peak memory under 2 GB. The figures of each run (Sharpe net and
gross, the difference to equal weight with its interval, DSR, PBO, trials, promotions) are printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ohlcv" / "binance_cdd_2017_2021"
TARGET_SECONDS = 300.0
TARGET_MEMORY_MB = 2048.0


def _child(data: Path, method: str, out: Path) -> None:
    from tradepipe.config.settings import load_settings
    from tradepipe.research.run import WalkForwardRequest, run_request

    started = time.process_time()
    settings = load_settings(timeframe="1h", symbols="BTC/USDT,ETH/USDT")
    request = WalkForwardRequest(data_dir=data, name=f"bench_{method}", methods=(method,), include_agents=False)
    outcome = run_request(settings, request)
    summary = outcome.summary
    key = f"adaptive:{method}"
    out.write_text(json.dumps({
        "cpu_in_process": time.process_time() - started,
        "bars": summary["data"]["bars"],
        "strategies": {k: summary["strategies"][k] for k in (key, "equal_weight", "buy_and_hold")},
        "comparison": summary["comparisons"][key],
        "loop": summary.get("loop", {}).get(key),
    }))


def _measure(data: Path, method: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as home:
        out = Path(home) / "figures.json"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        load_before = os.getloadavg()
        wall = time.perf_counter()
        env = {**os.environ, "TRADEPIPE_HOME": home}
        subprocess.run([sys.executable, __file__, "--child", method, "--data", str(data), "--out", str(out)], check=True, env=env)
        wall = time.perf_counter() - wall
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        figures = json.loads(out.read_text())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"method": method, "cpu_seconds": cpu, "wall_seconds": wall, "max_rss_mb": after.ru_maxrss / 1024.0,
            "load_before": load_before, "load_after": os.getloadavg(), **figures}


def _print(result: dict[str, object]) -> None:
    method = result["method"]
    key = f"adaptive:{method}"
    strategies = result["strategies"]  # type: ignore[index]
    comparison = result["comparison"]  # type: ignore[index]
    print(f"{method}: {result['bars']} bars; {result['cpu_seconds']:.1f} CPU s, {result['wall_seconds']:.1f} s wall, "
          f"peak {result['max_rss_mb']:.0f} MB; load {result['load_before'][0]:.1f} -> {result['load_after'][0]:.1f}")  # type: ignore[index]
    for name in (key, "equal_weight", "buy_and_hold"):
        s = strategies[name]  # type: ignore[index]
        print(f"    {name}: Sharpe net {s['sharpe']}, gross {s['gross_sharpe']}, total return {s['total_return']}")
    print(f"    difference vs equal weight {comparison['sharpe_diff_vs_equal']} CI95 {comparison['ci95']}; "  # type: ignore[index]
          f"trials {comparison['trials']}, DSR {comparison['deflated_sharpe']}, PBO {comparison['pbo']}, "  # type: ignore[index]
          f"promotions {len([p for p in comparison['promotions'] if p['action'] == 'promote'])}")  # type: ignore[index]
    if method == "loop":
        ok = result["cpu_seconds"] <= TARGET_SECONDS and result["wall_seconds"] <= TARGET_SECONDS and result["max_rss_mb"] < TARGET_MEMORY_MB  # type: ignore[operator]
        print(f"    target <= {TARGET_SECONDS:.0f} s and < {TARGET_MEMORY_MB:.0f} MB: {'met' if ok else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--only", choices=("loop", "hedge"), default=None)
    parser.add_argument("--child", default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write every figure here")
    args = parser.parse_args()
    if args.child:
        _child(args.data, args.child, args.out)
        return
    results = [_measure(args.data, method) for method in ((args.only,) if args.only else ("hedge", "loop"))]
    for result in results:
        _print(result)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
