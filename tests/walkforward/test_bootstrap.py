"""The Sharpe-difference interval equals an explicit moving-block bootstrap built series by series."""

from __future__ import annotations

import numpy as np
import pytest

from tradepipe.core.metrics import summarize
from tradepipe.research.stats import block_starts, sharpe_difference_ci, verdict

PPY = 8760.0


def close(value: float):
    return pytest.approx(value, rel=1e-9, abs=1e-9)


def test_interval_equals_an_explicit_block_bootstrap() -> None:
    rng = np.random.default_rng(5)
    n, block, resamples, seed = 1000, 168, 300, 11
    a = rng.normal(0.0004, 0.01, n)
    b = 0.5 * a + rng.normal(0.0, 0.008, n)
    result = sharpe_difference_ci(a, b, block, PPY, resamples=resamples, seed=seed)

    starts = block_starts(np.random.default_rng(seed), n, block, resamples)
    assert starts.shape == (resamples, n // block) and starts.min() >= 0 and starts.max() <= n - block
    diffs = []
    for row in starts:
        pick = np.concatenate([np.arange(s, s + block) for s in row])
        diffs.append(summarize(a[pick], PPY)["sharpe"] - summarize(b[pick], PPY)["sharpe"])
    low, high = np.percentile(diffs, [2.5, 97.5])
    assert result["ci95"][0] == close(low) and result["ci95"][1] == close(high)
    assert result["sharpe_diff_vs_equal"] == close(summarize(a, PPY)["sharpe"] - summarize(b, PPY)["sharpe"])
    assert result["block_bars"] == block and result["resamples"] == resamples


def test_verdict_is_honest_about_an_interval_containing_zero() -> None:
    inside = {"sharpe_diff_vs_equal": 0.2, "ci95": [-0.5, 0.9]}
    assert "contains 0" in verdict("adaptive:max_sharpe", inside)
    assert "does not show" in verdict("adaptive:max_sharpe", inside)
    assert "excludes 0" in verdict("adaptive:x", {"sharpe_diff_vs_equal": -1.0, "ci95": [-1.5, -0.4]})
    assert "worse" in verdict("adaptive:x", {"sharpe_diff_vs_equal": -1.0, "ci95": [-1.5, -0.4]})


def test_no_interval_when_a_sharpe_is_undefined_or_the_sample_is_short() -> None:
    flat = np.zeros(500)
    assert sharpe_difference_ci(np.linspace(-0.01, 0.01, 500), flat, 168, PPY)["ci95"] is None
    short = sharpe_difference_ci(np.random.default_rng(1).normal(size=200), np.random.default_rng(2).normal(size=200), 168, PPY)
    assert short["ci95"] is None and "fewer than two" in short["note"]
