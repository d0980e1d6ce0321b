"""Ensemble vote and target position: hand-computed renormalisation, edge cases, invariants."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradepipe.core.ensemble import combine, effective_vote, target_fraction
from tradepipe.core.types import Signal


def vote(agent: str, value: float, confidence: float = 1.0, symbol: str = "BTC/USDT") -> Signal:
    return Signal(agent, symbol, value, confidence, "test")


def silent(agent: str, symbol: str = "BTC/USDT") -> Signal:
    return Signal(agent, symbol, 0.0, 0.0, "needs 35 bars, have 12", abstained=True)


WEIGHTS = {"momentum": 0.4, "trend": 0.3, "mean_reversion": 0.2, "sentiment": 0.1}


def test_everyone_votes_hand_computed() -> None:
    # weights sum to 1: contributions are w * value * confidence.
    decision = combine([vote("momentum", 0.5), vote("trend", 1.0, 0.5), vote("mean_reversion", -1.0), vote("sentiment", 0.2)], WEIGHTS)
    assert decision.contributions == pytest.approx({"momentum": 0.2, "trend": 0.15, "mean_reversion": -0.2, "sentiment": 0.02})
    assert decision.score == pytest.approx(0.17)
    assert decision.voters == ("momentum", "trend", "mean_reversion", "sentiment")
    assert decision.abstainers == ()


def test_an_abstaining_agent_weight_is_shared_among_the_voters() -> None:
    # momentum (0.4) abstains: voters' weights 0.3 + 0.2 + 0.1 = 0.6.
    # trend 0.3 * 1.0 * 0.5 / 0.6 = 0.25; mean_reversion 0.2 * -1 / 0.6 = -1/3; sentiment 0.1 * 0.2 / 0.6 = 1/30.
    decision = combine([silent("momentum"), vote("trend", 1.0, 0.5), vote("mean_reversion", -1.0), vote("sentiment", 0.2)], WEIGHTS)
    assert decision.contributions == pytest.approx({"trend": 0.25, "mean_reversion": -1 / 3, "sentiment": 1 / 30})
    assert decision.score == pytest.approx(0.25 - 1 / 3 + 1 / 30)
    assert decision.voters == ("trend", "mean_reversion", "sentiment")
    assert decision.abstainers == ("momentum",)


def test_unweighted_agents_neither_vote_nor_abstain() -> None:
    decision = combine([vote("trend", 1.0), vote("newcomer", -1.0), vote("zeroed", -1.0)], {"trend": 0.5, "zeroed": 0.0})
    assert decision.contributions == {"trend": 1.0}
    assert decision.score == 1.0
    assert decision.voters == ("trend",)
    assert decision.abstainers == ()


def test_all_abstain_gives_zero_and_no_contributions() -> None:
    decision = combine([silent("momentum"), silent("trend")], WEIGHTS)
    assert (decision.score, dict(decision.contributions), decision.voters) == (0.0, {}, ())
    assert decision.abstainers == ("momentum", "trend")
    assert decision.symbol == "BTC/USDT"


def test_effective_vote_is_value_times_confidence() -> None:
    assert effective_vote(vote("trend", -0.8, 0.25)) == pytest.approx(-0.2)
    assert effective_vote(silent("trend")) == 0.0


@pytest.mark.parametrize(
    ("signals", "weights", "message"),
    [
        ([], {}, "at least one signal"),
        ([vote("trend", 1.0), vote("momentum", 1.0, symbol="ETH/USDT")], WEIGHTS, "per symbol"),
        ([vote("trend", 1.0), vote("trend", 0.5)], WEIGHTS, "more than one signal"),
        ([vote("trend", math.nan)], WEIGHTS, "non-finite"),
        ([vote("trend", 1.0)], {"trend": -0.1}, "finite and >= 0"),
        ([vote("trend", 1.0)], {"trend": math.inf}, "finite and >= 0"),
    ],
)
def test_combine_rejects_bad_input(signals, weights, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        combine(signals, weights)


agent_names = st.sampled_from(["a", "b", "c", "d", "e", "f"])
signals_strategy = st.lists(
    st.tuples(
        agent_names,
        st.floats(-1, 1),
        st.floats(0, 1),
        st.booleans(),
        st.floats(0, 10),
    ),
    min_size=1,
    max_size=6,
    unique_by=lambda row: row[0],
)


@given(signals_strategy)
def test_contributions_sum_to_the_score_which_stays_in_range(rows) -> None:
    signals = [silent(name) if abstained else vote(name, value, confidence) for name, value, confidence, abstained, _ in rows]
    weights = {name: weight for name, _, _, _, weight in rows}
    decision = combine(signals, weights)
    assert math.fsum(decision.contributions.values()) == pytest.approx(decision.score, abs=1e-12)
    assert -1.0 - 1e-12 <= decision.score <= 1.0 + 1e-12
    assert set(decision.contributions) == set(decision.voters)
    assert not set(decision.voters) & set(decision.abstainers)


# --------------------------------------------------------------------- target_fraction


@pytest.mark.parametrize(
    ("score", "allow_short", "expected"),
    [
        (1.0, False, 0.5),
        (0.525, False, 0.25),  # halfway between the 0.05 deadband and 1
        (0.05, False, 0.0),  # on the deadband edge: no trade
        (0.04, True, 0.0),
        (-0.04, True, 0.0),
        (-0.525, False, 0.0),  # spot is long-only: bearish means flat
        (-0.525, True, -0.25),
        (-1.0, True, -0.5),
        (3.0, False, 0.5),  # clipped
    ],
)
def test_target_fraction_hand_computed(score: float, allow_short: bool, expected: float) -> None:
    assert target_fraction(score, 0.5, allow_short=allow_short) == pytest.approx(expected)


def test_target_fraction_is_continuous_at_the_deadband() -> None:
    assert target_fraction(0.05 + 1e-9, 1.0) == pytest.approx(0.0, abs=1e-8)
    assert target_fraction(0.3, 1.0, deadband=0.0) == pytest.approx(0.3)


@given(st.floats(-1, 1), st.floats(0, 1), st.booleans(), st.floats(0, 0.5))
def test_target_fraction_bounds_and_sign(score: float, cap: float, allow_short: bool, deadband: float) -> None:
    fraction = target_fraction(score, cap, allow_short=allow_short, deadband=deadband)
    assert abs(fraction) <= cap + 1e-12
    assert fraction * score >= 0.0
    if not allow_short:
        assert fraction >= 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"score": math.nan, "max_position_fraction": 0.5}, "score"),
        ({"score": 0.5, "max_position_fraction": -0.1}, "max_position_fraction"),
        ({"score": 0.5, "max_position_fraction": 0.5, "deadband": 1.0}, "deadband"),
    ],
)
def test_target_fraction_rejects_bad_input(kwargs, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        target_fraction(**kwargs)
