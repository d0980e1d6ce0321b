"""Benchmark the walk-forward engine on 4 years of BTC/USDT + ETH/USDT 1h (../shared/data, 2017-08 .. 2021-08).

Run: ``.venv/bin/python benchmarks/bench_walkforward.py [--data DIR] [--peer-python PATH] [--repeat N]``;
``--model`` instead fits the linear cost model (fixed + per bar time + per symbol-bar + per extra book)
from four runs.

Each measured run is a whole child process (imports, CSV read, signals, every cycle, every daily
decision; nothing written), timed in CPU seconds (user + system) with its peak memory (max RSS):

* ``comparison``: the default 7-book comparison (``adaptive:<TRADEPIPE_OPTIMIZER_METHOD>``, equal
  weight, each agent alone; a book whose agents never vote is not cycled);
* ``hedge``: one ``adaptive:hedge`` book alone;
* ``peer`` (with ``--peer-python``, a venv with the PyPI package ``backtesting``):
  ``/work/shared/peers/peer_backtesting.py`` on the same candles, timed the same way. Without it the
  peers' documented figures (``/work/shared/peers/README.md``) are printed, marked as not run here.

The figure is symbol-bars (rows of the candle files read) per CPU second; the per-book cost is the
comparison's CPU seconds beyond the single book's, per extra cycled book. Targets: >= 6,000 for the
comparison, >= 20,000 for one hedge book, peak memory < 1 GB. The children run one after another
(``--repeat`` interleaves A B A B); on a loaded machine CPU seconds still compare, wall time does not.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ohlcv" / "binance_cdd_2017_2021"
PEERS = Path("/work/shared/peers")
SYMBOLS = "BTC/USDT,ETH/USDT"
DOCUMENTED_PEERS = {"freqtrade": 5_910, "vectorbt": 6_573, "backtesting.py": 32_167}
TARGETS = {"comparison": 6_000, "hedge": 20_000}
TARGET_MEMORY_MB = 1024.0


def _child(kind: str, data: Path, start: str | None, end: str | None, symbols: str = SYMBOLS) -> None:
    """One measured run in this process; prints one JSON line."""
    from tradepipe.config.settings import load_settings
    from tradepipe.research.data import load_market
    from tradepipe.research.engine import config_from_settings, default_strategies, run_walk_forward
    from tradepipe.research.run import parse_time

    settings = load_settings(timeframe="1h", symbols=symbols)
    config = config_from_settings(settings)
    market = load_market(data, config.symbols, "1h")
    method = "hedge" if kind == "hedge" else settings.optimizer_method
    strategies = default_strategies(config, [method])
    if kind == "hedge":
        strategies = strategies[:1]
    run = run_walk_forward(market, config, strategies, start_ms=parse_time(start), end_ms=parse_time(end, end=True))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cycled = sum(1 for book in run.books.values() if book.fills or book.spec.method is not None or len(set(book.equity)) > 1)
    print(json.dumps({
        "kind": kind, "books": len(run.books), "cycled": cycled, "bars": int(run.bars.size),
        # rows of the files the run trades (all of them without --start/--end, as the peers read them)
        "symbol_bars": int(sum(np.isin(b.timestamps, run.bars).sum() for b in market.bars.values())) if start or end else int(sum(len(b) for b in market.bars.values())),
        "cpu": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024, "signal_seconds": run.signal_seconds,
        "equity": {key: book.equity[-1] for key, book in run.books.items()},
    }))


def _measure(command: list[str]) -> tuple[float, float, str]:
    """CPU seconds (user + system) and wall seconds of one child process, and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, wall, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--peer-python", type=Path, default=None, help="python of a venv with `backtesting` installed")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--start", default=None, help="first bar (ISO) of a shorter run; the figure is per symbol-bar traded")
    parser.add_argument("--end", default=None, help="last bar (ISO) of a shorter run")
    parser.add_argument("--model", action="store_true", help="fit the linear cost model from four runs (see _model)")
    parser.add_argument("--symbols", default=SYMBOLS, help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=("comparison", "hedge"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"no candles at {args.data} (pass --data)")
    if args.child:
        _child(args.child, args.data, args.start, args.end, args.symbols)
        return
    if args.model:
        _model(args.data)
        return

    results: dict[str, list[dict]] = {"comparison": [], "hedge": [], "peer": []}
    for _ in range(args.repeat):
        for kind in ("comparison", "hedge"):
            span = [*(["--start", args.start] if args.start else []), *(["--end", args.end] if args.end else [])]
            cpu, wall, out = _measure([sys.executable, __file__, "--child", kind, "--data", str(args.data), *span])
            row = json.loads(out.strip().splitlines()[-1])
            row.update(process_cpu=cpu, wall=wall)
            results[kind].append(row)
        if args.peer_python:
            cpu, wall, out = _measure([str(args.peer_python), str(PEERS / "peer_backtesting.py"), str(args.data), SYMBOLS])
            bars = int(out.split("backtesting.py: ")[1].split(" symbol-bars")[0])
            results["peer"].append({"process_cpu": cpu, "wall": wall, "symbol_bars": bars})

    def best(kind: str) -> dict:
        return min(results[kind], key=lambda r: r["process_cpu"])

    comparison, hedge = best("comparison"), best("hedge")
    span = f" {args.start or 'start'} .. {args.end or 'end'}" if args.start or args.end else ""
    print(f"walk-forward over {args.data.name}{span}: {SYMBOLS} 1h, {comparison['bars']} bar times, {comparison['symbol_bars']:,} symbol-bars "
          f"(best of {args.repeat}; whole processes; CPU = user + system)")
    for kind, row in (("comparison", comparison), ("hedge", hedge)):
        rate = row["symbol_bars"] / row["process_cpu"]
        print(f"  {kind:10s} {row['books']} book(s), {row['cycled']} cycled: {row['process_cpu']:6.1f} CPU s ({row['wall']:.1f} s wall), "
              f"{rate:8,.0f} symbol-bars/CPU s (target >= {TARGETS[kind]:,}), peak memory {row['peak_mb']:,.0f} MB "
              f"(target < {TARGET_MEMORY_MB:,.0f} MB), votes {row['signal_seconds']:.1f} s")
    extra = max(comparison["cycled"] - hedge["cycled"], 1)
    per_book = (comparison["process_cpu"] - hedge["process_cpu"]) / extra
    print(f"  per extra book: {per_book:.1f} CPU s over these {comparison['bars']} bar times "
          f"({per_book / comparison['bars'] * 1e6:,.0f} us per bar time)")
    if results["peer"]:
        peer = min(results["peer"], key=lambda r: r["process_cpu"])
        peer_rate = peer["symbol_bars"] / peer["process_cpu"]
        print(f"  peer backtesting.py (run here, whole process): {peer['process_cpu']:.1f} CPU s, {peer_rate:,.0f} symbol-bars/CPU s")
    else:
        peer_rate = DOCUMENTED_PEERS["backtesting.py"]
        print("  peers not run here (no --peer-python); documented figures from /work/shared/peers/README.md: "
              + ", ".join(f"{name} {rate:,}" for name, rate in DOCUMENTED_PEERS.items()))
    for kind, row in (("comparison", comparison), ("hedge", hedge)):
        print(f"  ratio {kind} / backtesting.py: {row['symbol_bars'] / row['process_cpu'] / peer_rate:.2f}"
              f"; / freqtrade (documented): {row['symbol_bars'] / row['process_cpu'] / DOCUMENTED_PEERS['freqtrade']:.2f}")


def _model(data: Path) -> None:
    """CPU s = fixed + a x bar times + b x symbol-bars + c x extra cycled books, solved from four whole
    processes: one hedge book on both symbols over 2019 and over the 4 years, on BTC/USDT alone over the
    4 years, and the comparison over the 4 years. Four runs, four unknowns: noise goes into the
    coefficients, so compare it only with a model measured the same way."""
    runs = [
        ("hedge", SYMBOLS, "2019-01-01", "2019-12-31"),
        ("hedge", SYMBOLS, None, None),
        ("hedge", "BTC/USDT", None, None),
        ("comparison", SYMBOLS, None, None),
    ]
    rows, cpu = [], []
    for kind, symbols, start, end in runs:
        span = [*(["--start", start] if start else []), *(["--end", end] if end else [])]
        seconds, _, out = _measure([sys.executable, __file__, "--child", kind, "--data", str(data), "--symbols", symbols, *span])
        row = json.loads(out.strip().splitlines()[-1])
        rows.append([1.0, row["bars"], row["symbol_bars"], row["cycled"] - 1])
        cpu.append(seconds)
        print(f"  {kind:10s} {symbols:18s} {start or 'start'} .. {end or 'end'}: {row['bars']} bar times, {row['symbol_bars']:,} symbol-bars, "
              f"{row['cycled']} cycled, {seconds:.1f} CPU s, peak {row['peak_mb']:,.0f} MB")
    fixed, per_bar, per_symbol_bar, per_book = np.linalg.solve(np.array(rows), np.array(cpu))
    print(f"  model: {fixed:.2f} s + {per_bar * 1e6:,.0f} us x bar times + {per_symbol_bar * 1e6:,.0f} us x symbol-bars "
          f"+ {per_book:.2f} s per extra book over {rows[3][1]} bar times ({per_book / rows[3][1] * 1e6:,.0f} us per bar time)")


if __name__ == "__main__":
    main()
