"""The walk_forward asset writes the same files as the command line and puts the table, the file paths and
the headline figures (as numbers) in its metadata; the sweep has one static partition per experiment."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from tradepipe.assets.walkforward import parse_sweep_key, sweep_keys, sweep_partitions, walk_forward, walk_forward_sweep
from tradepipe.resources import build_resources
from tradepipe.config.settings import load_settings
from tests.walkforward.conftest import write_slice


@pytest.fixture(scope="module")
def datasets(cdd_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("datasets")
    write_slice(cdd_dir, root / "binance_cdd_2017_2021", 25_000, 24 * 9 + 60)
    return root


def test_walk_forward_asset_writes_the_files_and_the_metadata(datasets: Path, tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", symbols="BTC/USDT,ETH/USDT")
    run_config = {"ops": {"walk_forward": {"config": {"data_dir": str(datasets / "binance_cdd_2017_2021"), "name": "asset", "window_days": 3, "bootstrap_resamples": 100, "methods": ["max_sharpe"]}}}}
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([walk_forward], resources=build_resources(settings, "test"), run_config=run_config, instance=instance)
    assert result.success
    metadata = result.asset_materializations_for_node("walk_forward")[0].metadata
    summary_path = Path(metadata["summary_json"].value)
    assert summary_path == tmp_path / "home" / "walkforward" / "asset" / "summary.json"
    summary = json.loads(summary_path.read_text())
    assert Path(metadata["report_html"].value).exists()
    rows = {record.data["strategy"]: record.data for record in metadata["results"].value.records}
    assert set(rows) == set(summary["strategies"])
    assert rows["equal_weight"]["sharpe"] == summary["strategies"]["equal_weight"]["sharpe"]
    assert metadata["equal_weight/sharpe"].value == summary["strategies"]["equal_weight"]["sharpe"]
    assert isinstance(metadata["adaptive:max_sharpe/total_return"].value, float)
    # the same figures under keys without the method name (plots across runs), rounded as the CLI shows them
    assert metadata["adaptive/method"].value == "max_sharpe"
    assert metadata["adaptive/total_return_pct"].value == round(summary["strategies"]["adaptive:max_sharpe"]["total_return"] * 100, 2)
    assert metadata["adaptive/sharpe"].value == round(summary["strategies"]["adaptive:max_sharpe"]["sharpe"], 3)
    assert "adaptive:max_sharpe vs equal weight" in metadata["verdicts"].value
    logs = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any(m.startswith("walk-forward: ") and "bars/s" in m and "ETA" in m for m in logs)  # progress in the run log


def test_sweep_partitions_are_the_experiments(datasets: Path, tmp_path: Path) -> None:
    assert sweep_partitions.get_partition_keys() == sweep_keys(["binance_cdd_2017_2021"], ["max_sharpe", "risk_parity", "equal_weight", "hedge"], [14, 30, 60])
    assert parse_sweep_key("binance_cdd_2017_2021|risk_parity|w30") == ("binance_cdd_2017_2021", "risk_parity", 30)
    settings = load_settings(home=tmp_path / "home", walkforward_data_root=datasets)
    result = dg.materialize(
        [walk_forward_sweep], partition_key="binance_cdd_2017_2021|risk_parity|w14", resources=build_resources(settings, "test"),
        run_config={"ops": {"walk_forward_sweep": {"config": {"bootstrap_resamples": 100}}}},
    )
    assert result.success
    summary = json.loads((tmp_path / "home" / "walkforward" / "sweep-binance_cdd_2017_2021-risk_parity-w14" / "summary.json").read_text())
    assert summary["config"]["methods"] == ["risk_parity"] and summary["config"]["window_days"] == 14
    assert set(summary["strategies"]) == {"adaptive:risk_parity", "equal_weight", "buy_and_hold"}
