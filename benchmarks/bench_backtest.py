"""Benchmark ``tradepipe backtest`` on 4 years of BTC/USDT + ETH/USDT 1h (../shared/data, 2017-08 .. 2021-08).

Run: ``.venv/bin/python benchmarks/bench_backtest.py [--data DIR] [--start ISO --end ISO] [--repeat N]``.

Each measured run is a whole child process, timed in CPU seconds (user + system) with its peak memory
(max RSS), both from ``os.wait4`` on that child alone:

* ``backtest``: ``tradepipe backtest --json`` into a fresh SQLite ledger (migrated beforehand, not
  timed): imports, CSV read, every cycle on the engine, every ledger row written, the results table;
* ``engine``: the same bars through ``run_walk_forward`` with the same fixed weights and nothing
  written, so the difference is what writing the ledger costs.

The figures are bar times (cycles) and symbol-bars (rows of the candle files traded) per CPU second.
Target: the 4-year backtest within 30 CPU s on an idle machine, peak memory < 1 GB. The load average
is printed with the figures: on a shared machine CPU seconds read higher under contention, wall time
means nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ohlcv" / "binance_cdd_2017_2021"
SYMBOLS = "BTC/USDT,ETH/USDT"
TARGET_CPU_S = 30.0
TARGET_MEMORY_MB = 1024.0


def _engine_child(data: Path, start: str | None, end: str | None) -> None:
    """The backtest's bars through the engine, nothing written; prints one JSON line."""
    from dataclasses import replace

    from tradepipe.adapters.market import ReplayMarket
    from tradepipe.config.settings import load_settings
    from tradepipe.research.data import load_market
    from tradepipe.research.engine import StrategySpec, config_from_settings, run_walk_forward
    from tradepipe.research.run import parse_time
    from tradepipe.trading.runner import TradingRunner

    settings = load_settings(timeframe="1h", symbols=SYMBOLS, market_source="replay", replay_dir=data)
    weights = TradingRunner(settings, market=ReplayMarket(data, mode="stepped"), book="bench").load_weights()
    config = replace(config_from_settings(settings), book="bench")
    market = load_market(data, config.symbols, "1h", drop_last_bar=True)
    cycles = [0]

    def count(*_: object) -> None:  # seeing every cycle keeps the engine's work equal to the backtest's
        cycles[0] += 1

    run_walk_forward(
        market, config, [StrategySpec("bench", weights.weights)], start_ms=parse_time(start), end_ms=parse_time(end, end=True), on_cycle=count
    )
    print(json.dumps({"cycles": cycles[0]}))


def _measure(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """CPU seconds (user + system) and peak memory (MB) of one child process alone, and its stdout."""
    with tempfile.TemporaryFile(mode="w+") as out, tempfile.TemporaryFile(mode="w+") as err:
        child = subprocess.Popen(command, stdout=out, stderr=err, env=env, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            sys.exit(f"{' '.join(command)} failed:\n{err.read()[-2000:]}")
        return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.read()


def _load() -> str:
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each kind, interleaved (backtest, engine, backtest, ...)")
    parser.add_argument("--start", default=None, help="first bar (ISO) of a shorter run")
    parser.add_argument("--end", default=None, help="last bar (ISO) of a shorter run")
    parser.add_argument("--child", choices=("engine",), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"no candles at {args.data} (pass --data)")
    span = [*(["--start", args.start] if args.start else []), *(["--end", args.end] if args.end else [])]
    if args.child:
        _engine_child(args.data, args.start, args.end)
        return

    tradepipe = str(Path(sys.executable).with_name("tradepipe"))
    runs: dict[str, list[tuple[float, float]]] = {"backtest": [], "engine": []}
    summary: dict = {}
    loads = [_load()]
    with tempfile.TemporaryDirectory(prefix="bench_backtest_") as scratch:
        for attempt in range(args.repeat):
            database = Path(scratch) / f"ledger-{attempt}.sqlite"
            env = {**os.environ, "TRADEPIPE_HOME": scratch, "TRADEPIPE_DATABASE_URL": f"sqlite:///{database}", "TRADEPIPE_SYMBOLS": SYMBOLS}
            subprocess.run([tradepipe, "db", "upgrade"], env=env, check=True, capture_output=True)
            cpu, peak, out = _measure([tradepipe, "backtest", "--replay-dir", str(args.data), "--book", "bench", "--json", *span], env)
            summary = json.loads(out)
            runs["backtest"].append((cpu, peak))
            cpu, peak, out = _measure([sys.executable, __file__, "--child", "engine", "--data", str(args.data), *span], env)
            assert json.loads(out.strip().splitlines()[-1])["cycles"] == summary["cycles"], "the engine run traded other bars"
            runs["engine"].append((cpu, peak))
            loads.append(_load())
    cycles = summary["cycles"]
    symbol_bars = _symbol_bars(args.data, summary["first_bar"], summary["last_bar"])
    print(f"tradepipe backtest over {args.data.name} {summary['first_bar']} .. {summary['last_bar']}: {SYMBOLS} 1h, "
          f"{cycles:,} bar times, {symbol_bars:,} symbol-bars, {summary['fills']} fills (best of {args.repeat}; whole processes; "
          f"CPU = user + system; load average 1/5/15 min before and after each pair: {', '.join(loads)})")
    for kind, label in (("backtest", "backtest (ledger written)"), ("engine", "engine alone (nothing written)")):
        cpu, peak = min(runs[kind])
        print(f"  {label:31s} {cpu:6.1f} CPU s, {cycles / cpu:7,.0f} bar times/CPU s, {symbol_bars / cpu:7,.0f} symbol-bars/CPU s, "
              f"peak memory {peak:,.0f} MB")
    backtest, engine = min(runs["backtest"])[0], min(runs["engine"])[0]
    print(f"  writing the ledger: {backtest - engine:.1f} CPU s ({(backtest - engine) / cycles * 1e6:,.0f} us per bar time); "
          f"target: backtest <= {TARGET_CPU_S:.0f} CPU s on an idle machine, peak memory < {TARGET_MEMORY_MB:,.0f} MB")


def _symbol_bars(data: Path, first: str, last: str) -> int:
    """Rows of the candle files from ``first`` to ``last`` (the bars the backtest traded, per symbol)."""
    from tradepipe.research.data import load_market
    from tradepipe.research.run import parse_time

    low, high = parse_time(first), parse_time(last)
    market = load_market(data, SYMBOLS.split(","), "1h", drop_last_bar=True)
    return sum(int(((bars.timestamps >= low) & (bars.timestamps <= high)).sum()) for bars in market.bars.values())


if __name__ == "__main__":
    main()
