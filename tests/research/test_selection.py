"""Deflated Sharpe against the paper's worked example and a hand computation, PBO by CSCV against hand-built
cases, and the pool's promotion / retirement rules."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import norm

from tradepipe.research.selection import (
    Evaluation,
    PoolRules,
    deflated_sharpe,
    expected_max_sharpe,
    pbo_cscv,
    promotion_check,
    promotion_decisions,
    retirement_decisions,
)


def test_deflated_sharpe_reproduces_the_papers_numerical_example() -> None:
    # Bailey & Lopez de Prado (2014), section 5: SR 2.5 annualised on 1,250 daily returns, 100 trials
    # whose annualised Sharpe ratios have variance 1/2, skew -3, kurtosis 10: DSR = 0.9004.
    per_day = 2.5 / math.sqrt(250)
    assert deflated_sharpe(per_day, 1250, -3.0, 10.0, 100, 0.5 / 250) == pytest.approx(0.9004, abs=5e-5)


def test_expected_max_sharpe_by_hand_and_against_simulation() -> None:
    n, variance = 10, 0.04
    hand = math.sqrt(variance) * ((1 - 0.5772156649015329) * norm.ppf(0.9) + 0.5772156649015329 * norm.ppf(1 - 1 / (10 * math.e)))
    assert expected_max_sharpe(n, variance) == pytest.approx(hand, rel=1e-12)
    # the approximation is close to the simulated mean maximum of N standard normals (x 0.2)
    draws = np.random.default_rng(1).normal(0, 0.2, (200_000, n)).max(axis=1).mean()
    assert expected_max_sharpe(n, variance) == pytest.approx(draws, rel=0.03)
    assert expected_max_sharpe(1, variance) == 0.0
    # more trials, higher bar: the same Sharpe deflates further
    assert deflated_sharpe(0.05, 2000, 0.0, 3.0, 1000, 0.001) < deflated_sharpe(0.05, 2000, 0.0, 3.0, 10, 0.001)


def _by_hand_pbo(matrix: np.ndarray, blocks: int) -> float:
    parts = np.array_split(matrix, blocks)
    below = 0
    combos = list(itertools.combinations(range(blocks), blocks // 2))
    for chosen in combos:
        ins = np.vstack([parts[b] for b in chosen])
        outs = np.vstack([parts[b] for b in range(blocks) if b not in chosen])
        ins_sr = [ins[:, j].mean() / ins[:, j].std(ddof=1) for j in range(matrix.shape[1])]
        out_sr = [outs[:, j].mean() / outs[:, j].std(ddof=1) for j in range(matrix.shape[1])]
        best = int(np.argmax(ins_sr))
        rank = sorted(out_sr).index(out_sr[best]) + 1
        below += rank / (matrix.shape[1] + 1) <= 0.5
    return below / len(combos)


def test_pbo_of_hand_built_cases() -> None:
    rng = np.random.default_rng(3)
    noise = rng.normal(0, 0.01, (400, 2))
    # Strategy 0 is good in the first half and bad in the second, strategy 1 the opposite: picking the
    # in-sample winner always picks the out-of-sample loser with 2 blocks -> PBO 1.
    swap = noise.copy()
    swap[:200, 0] += 0.01
    swap[200:, 1] += 0.01
    assert pbo_cscv(swap, blocks=2)["pbo"] == 1.0
    # One strategy better everywhere -> PBO 0.
    better = noise.copy()
    better[:, 0] += 0.01
    assert pbo_cscv(better, blocks=4)["pbo"] == 0.0
    # A random case against a direct transcription of the procedure.
    random_case = rng.normal(0, 0.01, (480, 6))
    result = pbo_cscv(random_case, blocks=6)
    assert result["splits"] == 20
    assert result["pbo"] == pytest.approx(_by_hand_pbo(random_case, 6), abs=1e-12)


def test_pbo_of_pure_noise_is_near_one_half() -> None:
    values = [pbo_cscv(np.random.default_rng(seed).normal(0, 0.01, (1600, 20)), blocks=8)["pbo"] for seed in range(12)]
    assert 0.3 < float(np.mean(values)) < 0.7


def _evaluation(name: str, dsr: float, trades: int = 50, pbo: float = 0.2) -> Evaluation:
    return Evaluation(name, sharpe=dsr * 2, deflated_sharpe=dsr, trades=trades, trials=100, pbo=pbo)


def test_promotion_rules() -> None:
    rules = PoolRules(min_dsr=0.95, min_trades=10, max_pbo=0.5, max_pool=2)
    assert promotion_check(_evaluation("a", 0.97), rules) is None
    assert promotion_check(_evaluation("a", 0.90), rules) == "deflated Sharpe 0.900 below 0.95 (100 trials)"
    assert promotion_check(_evaluation("a", 0.99, trades=3), rules) == "3 trades, fewer than 10"
    assert promotion_check(_evaluation("a", 0.99, pbo=0.7), rules) == "the selection's PBO 0.70 above 0.50"
    changes = promotion_decisions({"old": 0.96}, [_evaluation("b", 0.99), _evaluation("c", 0.98), _evaluation("d", 0.5)], rules)
    assert [(c.name, c.action) for c in changes] == [("b", "promote"), ("old", "retire"), ("c", "promote"), ("d", "reject")]
    full = promotion_decisions({"x": 0.999, "y": 0.999}, [_evaluation("b", 0.99)], rules)
    assert [(c.name, c.action) for c in full] == [("b", "reject")]
    retire = retirement_decisions({"x": -0.5, "y": 0.3, "z": None}, PoolRules(retire_sharpe=0.0, decay_days=30))
    assert [(c.name, c.action, c.reason) for c in retire] == [("x", "retire", "Sharpe -0.50 over the last 30 days below +0.00")]
