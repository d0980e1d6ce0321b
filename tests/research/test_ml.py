"""ML agents: no model sees a bar at or after the one it predicts (truncation), artifacts refused on a sha256
mismatch, a failed training raises its reason, and the per-bar ``ml`` agent votes as the whole-array form."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tradepipe.core.types import AgentContext
from tradepipe.research.data import SymbolBars, load_market
from tradepipe.research.ml import (
    FEATURE_BARS,
    ModelIntegrityError,
    ModelTrainingError,
    features,
    load_model,
    model_votes,
    save_model,
    train,
    training_set,
)

HOUR = 3_600_000


def _cut(bars: SymbolBars, end_ms: int) -> SymbolBars:
    keep = bars.timestamps < end_ms
    return replace(bars, timestamps=bars.timestamps[keep], open=bars.open[keep], high=bars.high[keep], low=bars.low[keep], close=bars.close[keep], volume=bars.volume[keep])


@pytest.fixture(scope="module")
def market(cdd_dir: Path):
    full = load_market(cdd_dir, ["BTC/USDT", "ETH/USDT"], "1h")
    return {s: _cut(b, int(b.timestamps[4_000])) for s, b in full.bars.items()}


@pytest.mark.parametrize("kind", ["logistic", "hgb"])
def test_no_model_sees_a_bar_at_or_after_the_one_it_predicts(market, kind: str) -> None:
    horizon = 24
    cutoff = int(market["BTC/USDT"].timestamps[3_500])
    model = train(kind, market, horizon, cutoff, HOUR, name=f"{kind}_a")
    # every label the model read closed by the cutoff
    assert model.metrics["last_label_close_ms"] <= cutoff
    # the same model from a market that ends at the cutoff: nothing after it mattered
    truncated = {s: _cut(b, cutoff) for s, b in market.items()}
    again = train(kind, truncated, horizon, cutoff, HOUR, name=f"{kind}_b")
    assert again.training_rows == model.training_rows
    x = features(market["ETH/USDT"].close)[3_500:4_000]
    assert np.isfinite(model.probability(x)).sum() > 450
    assert np.array_equal(model.probability(x), again.probability(x), equal_nan=True)
    # a feature row reads no later bar: computed on bars cut just after it, it is the same
    close = market["BTC/USDT"].close
    full = features(close)
    for row in (FEATURE_BARS, 2_000, 3_499):
        assert np.array_equal(features(close[: row + 1])[-1], full[row], equal_nan=True)
    # and the training set stops exactly where the labels would cross the cutoff
    data = training_set(market, horizon, cutoff, HOUR)
    later = training_set(market, horizon, cutoff + HOUR, HOUR)
    assert later.y.size == data.y.size + 2  # one more labelled row per symbol
    assert data.last_label_close_ms == cutoff


def test_the_ml_agent_votes_as_the_whole_array_form(market) -> None:
    model = train("logistic", market, 24, int(market["BTC/USDT"].timestamps[3_000]), HOUR, name="lr")
    bars = market["ETH/USDT"]
    history = 400
    votes = model_votes(model, bars, history)
    agent = model.agent()
    for row in range(3_000, 3_200):
        signal = agent(bars.window(row, history), AgentContext(now_ms=0))
        assert signal.value == pytest.approx(votes[row], abs=1e-9)
    assert np.all(votes[:FEATURE_BARS - 1] == 0.0)


def test_artifacts_are_checked_on_load(market, tmp_path: Path) -> None:
    model = train("hgb", market, 24, int(market["BTC/USDT"].timestamps[3_000]), HOUR, name="hgb_saved")
    path, sha = save_model(model, tmp_path / "models")
    loaded = load_model(path, sha)
    x = features(market["BTC/USDT"].close)[3_000:3_100]
    assert np.array_equal(loaded.probability(x), model.probability(x))
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError) as caught:
        load_model(path, sha)
    assert "differs from the recorded" in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(ModelIntegrityError, match="cannot be read"):
        load_model(tmp_path / "missing.pkl", sha)


def test_a_model_that_cannot_train_says_why(market) -> None:
    early = int(market["BTC/USDT"].timestamps[300])
    with pytest.raises(ModelTrainingError, match="fewer than 500"):
        train("logistic", market, 24, early, HOUR, name="early")
    with pytest.raises(ModelTrainingError, match="unknown model kind 'svm'"):
        train("svm", market, 24, int(market["BTC/USDT"].timestamps[3_000]), HOUR, name="svm")
