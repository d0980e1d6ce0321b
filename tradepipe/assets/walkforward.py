"""Walk-forward research assets: one run on demand, and a sweep with one static partition per experiment.

``walk_forward`` runs the whole loop over recorded candles (``tradepipe.research``) and writes
``TRADEPIPE_HOME/walkforward/<name>/summary.json`` and ``report.html``, exactly as ``tradepipe walkforward``.

``walk_forward_sweep`` has one partition per (data set, method, window): ``<dataset>|<method>|w<days>``
from TRADEPIPE_WALKFORWARD_DATASETS (folders under TRADEPIPE_WALKFORWARD_DATA_ROOT),
TRADEPIPE_WALKFORWARD_SWEEP_METHODS and TRADEPIPE_WALKFORWARD_SWEEP_WINDOWS. A backfill launches one run
per partition; the run queue runs them side by side on a laptop (``max_concurrent_runs`` in
dagster.yaml) and a deployment's run launcher spreads them across machines: no scheduler of our own.
"""


from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg

from tradepipe.assets.metadata import table
from tradepipe.resources.trading import TradingConfigResource
from tradepipe.config.preflight import location_settings

FIGURES = ("sharpe", "gross_sharpe", "total_return", "cagr", "max_drawdown", "turnover", "fees", "weight_changes")


class WalkForwardConfig(dg.Config):
    data_dir: str
    """Folder of BASE_QUOTE-TIMEFRAME.csv (or .parquet) candle files."""
    name: str = "dagster"
    """Results go to TRADEPIPE_HOME/walkforward/<name>/."""
    symbols: list[str] = []
    """Symbols to trade; empty: TRADEPIPE_SYMBOLS."""
    timeframe: str = "1h"
    start: str | None = None
    """First bar, ISO (UTC unless zoned); empty: the data's first bar after the agents' warm-up."""
    end: str | None = None
    """Last bar, ISO; a bare date includes that whole day."""
    methods: list[str] = []
    """Weight methods to compare; empty: TRADEPIPE_OPTIMIZER_METHOD."""
    fee_bps: float | None = None
    slippage_bps: float | None = None
    window_days: int | None = None
    """Performance window of each daily decision; empty: TRADEPIPE_PERFORMANCE_WINDOW_DAYS."""
    resume: bool = False
    """Continue an interrupted run of the same name and inputs from its checkpoint."""
    bootstrap_resamples: int = 2000


def _request(config: WalkForwardConfig, include_agents: bool = True) -> Any:
    from tradepipe.research.run import WalkForwardRequest

    return WalkForwardRequest(
        data_dir=Path(config.data_dir), name=config.name, symbols=tuple(config.symbols) or None, timeframe=config.timeframe,
        start=config.start, end=config.end, methods=tuple(config.methods) or None,
        fee_bps=None if config.fee_bps is None else Decimal(str(config.fee_bps)),
        slippage_bps=None if config.slippage_bps is None else Decimal(str(config.slippage_bps)),
        window_days=config.window_days, resume=config.resume, resamples=config.bootstrap_resamples,
        include_agents=include_agents,
    )


def _run(context: dg.AssetExecutionContext, settings: Any, request: Any) -> dg.MaterializeResult:
    from tradepipe.research.data import WalkForwardInputError
    from tradepipe.research.run import run_request

    try:
        outcome = run_request(settings, request, progress=lambda p: context.log.info(p.line()), progress_every_s=15.0, say=context.log.info)
    except WalkForwardInputError as exc:
        raise dg.Failure(f"walk-forward refused: {exc}", allow_retries=False) from exc
    return dg.MaterializeResult(metadata=walk_forward_metadata(outcome.summary, outcome.summary_path, outcome.report_path))


def walk_forward_metadata(summary: dict[str, Any], summary_path: Path, report_path: Path) -> dict[str, Any]:
    """The table, the file paths, and the headline figures as numbers (the UI plots them across runs)."""
    rows = [{"strategy": key, **{f: values[f] for f in FIGURES}} for key, values in summary["strategies"].items()]
    metadata: dict[str, Any] = {
        "results": table(rows, ["strategy", *FIGURES]),
        "summary_json": dg.MetadataValue.path(str(summary_path)),
        "report_html": dg.MetadataValue.path(str(report_path)),
        "bars": summary["data"]["bars"],
        "first_bar": summary["data"]["first_bar"],
        "last_bar": summary["data"]["last_bar"],
        "seconds": summary["timing"]["seconds"],
        "verdicts": dg.MetadataValue.md("\n".join(f"- {c['verdict']}" for c in summary["comparisons"].values()) or "no adaptive method"),
    }
    for key in ("equal_weight", "buy_and_hold", *(k for k in summary["strategies"] if k.startswith("adaptive:"))):
        figures = summary["strategies"].get(key)
        if figures is None:
            continue
        for figure in ("sharpe", "gross_sharpe", "total_return", "max_drawdown"):
            if figures[figure] is not None:
                metadata[f"{key}/{figure}"] = float(figures[figure])
    adaptive = [k for k in summary["strategies"] if k.startswith("adaptive:")]
    if len(adaptive) == 1:
        # Keys without the method name, so the UI plots the adaptive book across runs whatever its method;
        # rounded as the CLI shows them (ratios to 3 places, percentages to 2).
        figures = summary["strategies"][adaptive[0]]
        metadata["adaptive/method"] = adaptive[0].removeprefix("adaptive:")
        for figure, shown in (("sharpe", "sharpe"), ("gross_sharpe", "gross_sharpe")):
            if figures[figure] is not None:
                metadata[f"adaptive/{shown}"] = round(float(figures[figure]), 3)
        for figure in ("total_return", "cagr", "max_drawdown"):
            if figures[figure] is not None:
                metadata[f"adaptive/{figure}_pct"] = round(float(figures[figure]) * 100, 2)
    for key, comparison in summary["comparisons"].items():
        if comparison["sharpe_diff_vs_equal"] is not None:
            metadata[f"{key}/sharpe_diff_vs_equal"] = float(comparison["sharpe_diff_vs_equal"])
        if comparison["ci95"] is not None:
            metadata[f"{key}/ci95_low"], metadata[f"{key}/ci95_high"] = (float(x) for x in comparison["ci95"])
    return metadata


@dg.asset(
    group_name="research",
    kinds={"python"},
    description="Walk-forward of the whole loop over recorded candles: adaptive weights vs equal weight, each agent alone and buy-and-hold (summary.json, report.html).",
)
def walk_forward(context: dg.AssetExecutionContext, config: WalkForwardConfig, trading: TradingConfigResource) -> dg.MaterializeResult:
    return _run(context, trading.settings(), _request(config))


# --------------------------------------------------------------------------- the sweep

SWEEP_SEPARATOR = "|"


def sweep_keys(datasets: list[str], methods: list[str], windows: list[int]) -> list[str]:
    return [f"{d}{SWEEP_SEPARATOR}{m}{SWEEP_SEPARATOR}w{w}" for d in datasets for m in methods for w in windows]


def parse_sweep_key(key: str) -> tuple[str, str, int]:
    dataset, method, window = key.split(SWEEP_SEPARATOR)
    return dataset, method, int(window.removeprefix("w"))


_SETTINGS = location_settings()
sweep_partitions = dg.StaticPartitionsDefinition(
    sweep_keys(_SETTINGS.walkforward_datasets, _SETTINGS.walkforward_sweep_methods, _SETTINGS.walkforward_sweep_windows)
)


class WalkForwardSweepConfig(dg.Config):
    symbols: list[str] = ["BTC/USDT", "ETH/USDT"]
    timeframe: str = "1h"
    start: str | None = None
    end: str | None = None
    fee_bps: float | None = None
    slippage_bps: float | None = None
    bootstrap_resamples: int = 2000


@dg.asset(
    partitions_def=sweep_partitions,
    group_name="research",
    kinds={"python"},
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=1),
    description="One walk-forward per experiment (data set x method x window); a backfill runs the experiments side by side.",
)
def walk_forward_sweep(context: dg.AssetExecutionContext, config: WalkForwardSweepConfig, trading: TradingConfigResource) -> dg.MaterializeResult:
    settings = trading.settings()
    dataset, method, window = parse_sweep_key(context.partition_key)
    if settings.walkforward_data_root is None:
        raise dg.Failure("set TRADEPIPE_WALKFORWARD_DATA_ROOT to the folder holding the data sets (e.g. ../shared/data/ohlcv)", allow_retries=False)
    request = _request(
        WalkForwardConfig(
            data_dir=str(Path(settings.walkforward_data_root) / dataset), name=f"sweep-{dataset}-{method}-w{window}",
            symbols=config.symbols, timeframe=config.timeframe, start=config.start, end=config.end, methods=[method],
            fee_bps=config.fee_bps, slippage_bps=config.slippage_bps, window_days=window, bootstrap_resamples=config.bootstrap_resamples,
        ),
        include_agents=False,  # an experiment compares its method with equal weight and buy-and-hold
    )
    return _run(context, settings, request)


