"""Exact attribution: hand examples, sum-exactness properties, vectorised == scalar."""

from __future__ import annotations

import doctest
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tradepipe.core import attribution
from tradepipe.core.attribution import (
    DEFAULT_QUANTUM,
    UNATTRIBUTED,
    attribute_fills,
    from_minor_units,
    split_pnl,
    to_minor_units,
)

CENT = Decimal("0.01")


# ---------------------------------------------------------------- hand examples


def test_even_split_with_one_leftover_unit_goes_to_first_name():
    # 10.00 = 1000 cents over three equal shares: ideal 333.33 each, floors 333 * 3 = 999,
    # 1 cent left; remainders tie, so the tie-break by name gives it to "a".
    parts = split_pnl(Decimal("10.00"), {"c": 0.2, "a": 0.2, "b": 0.2}, quantum=CENT)
    assert parts == {"a": Decimal("3.34"), "b": Decimal("3.33"), "c": Decimal("3.33")}
    assert list(parts) == ["a", "b", "c"]


def test_proportional_split_largest_remainder():
    # 1.00 = 100 cents, contributions 0.5 / 0.3 / 0.2 (sum 1.0): ideal 50, 30, 20 -> exact
    assert split_pnl(Decimal("1.00"), {"x": 0.5, "y": 0.3, "z": 0.2}, quantum=CENT) == {
        "x": Decimal("0.50"), "y": Decimal("0.30"), "z": Decimal("0.20"),
    }
    # 0.10 = 10 cents, shares 0.45 / 0.35 / 0.20: ideal 4.5, 3.5, 2.0 -> floors 4, 3, 2 = 9,
    # 1 cent left; remainders 0.5, 0.5, 0.0 tie between x and y -> x (first by name)
    assert split_pnl(Decimal("0.10"), {"x": 0.45, "y": 0.35, "z": 0.20}, quantum=CENT) == {
        "x": Decimal("0.05"), "y": Decimal("0.03"), "z": Decimal("0.02"),
    }
    # 0.07 = 7 cents, shares 0.6 / 0.4: ideal 4.2, 2.8 -> floors 4, 2 = 6; 1 left -> b (0.8 > 0.2)
    assert split_pnl(Decimal("0.07"), {"a": 0.6, "b": 0.4}, quantum=CENT) == {
        "a": Decimal("0.04"), "b": Decimal("0.03"),
    }


def test_mixed_sign_contributions():
    # score = 0.3 - 0.1 = 0.2: trend's share 0.3/0.2 = 1.5, contrarian's -0.1/0.2 = -0.5
    # 1.00 profit -> trend +1.50, contrarian -0.50 (it voted against a winning trade)
    parts = split_pnl(Decimal("1.00"), {"trend": 0.3, "contrarian": -0.1}, quantum=CENT)
    assert parts == {"contrarian": Decimal("-0.50"), "trend": Decimal("1.50")}
    # a loss of -1.00 flips both signs
    parts = split_pnl(Decimal("-1.00"), {"trend": 0.3, "contrarian": -0.1}, quantum=CENT)
    assert parts == {"contrarian": Decimal("0.50"), "trend": Decimal("-1.50")}


def test_negative_pnl_rounds_by_the_same_rule():
    # -0.07 = -7 cents, shares 0.6 / 0.4: ideal -4.2, -2.8 -> floors -5, -3 = -8; 1 unit to add,
    # remainders 0.8 (a), 0.2 (b) -> a gets it: a = -4, b = -3
    assert split_pnl(Decimal("-0.07"), {"a": 0.6, "b": 0.4}, quantum=CENT) == {
        "a": Decimal("-0.04"), "b": Decimal("-0.03"),
    }


def test_default_quantum_is_1e_8():
    parts = split_pnl(Decimal("0.00000001"), {"a": 1.0, "b": 1.0})
    assert parts == {"a": Decimal("0.00000001"), "b": Decimal("0")}
    assert DEFAULT_QUANTUM == Decimal("1e-8")


def test_unattributed_when_nothing_to_split_by():
    assert split_pnl(Decimal("5.00"), {}, quantum=CENT) == {UNATTRIBUTED: Decimal("5.00")}
    assert split_pnl(Decimal("5.00"), {"a": 0.5, "b": -0.5}, quantum=CENT) == {UNATTRIBUTED: Decimal("5.00")}
    assert split_pnl(Decimal("5.00"), {"a": 0.0}, quantum=CENT) == {UNATTRIBUTED: Decimal("5.00")}


def test_abstainer_with_zero_contribution_gets_zero():
    parts = split_pnl(Decimal("3.00"), {"a": 0.4, "abstained": 0.0, "b": 0.2}, quantum=CENT)
    assert parts == {"a": Decimal("2.00"), "abstained": Decimal("0.00"), "b": Decimal("1.00")}


def test_split_pnl_errors():
    with pytest.raises(ValueError, match="not a whole multiple"):
        split_pnl(Decimal("1.005"), {"a": 1.0}, quantum=CENT)
    with pytest.raises(ValueError, match="agent 'b'"):
        split_pnl(Decimal("1.00"), {"a": 1.0, "b": float("nan")}, quantum=CENT)
    with pytest.raises(TypeError):
        split_pnl(1.5, {"a": 1.0})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="quantum"):
        split_pnl(Decimal("1"), {"a": 1.0}, quantum=Decimal("0"))
    with pytest.raises(ValueError, match="nearly cancel"):
        split_pnl(Decimal("1000000"), {"a": 1.0, "b": -1.0 + 1e-15})


def test_minor_unit_conversions_are_exact():
    assert to_minor_units(Decimal("123.45678901")) == 12_345_678_901
    assert to_minor_units(7, quantum=CENT) == 700
    assert from_minor_units(12_345_678_901) == Decimal("123.45678901")
    big = 10**30 + 1
    assert to_minor_units(from_minor_units(big, CENT), CENT) == big  # no rounding at 28 digits


def test_docstring_examples_run():
    assert doctest.testmod(attribution).failed == 0


# ---------------------------------------------------------------- attribute_fills


def test_attribute_fills_hand_example():
    pnl = np.array([1000, -7, 0, 100], dtype=np.int64)
    shares = np.array(
        [
            [1.0, 1.0, 1.0],  # 333.33 each -> 334, 333, 333
            [0.6, 0.4, 0.0],  # -4.2, -2.8, 0 -> -4, -3, 0 (see the scalar negative example)
            [0.2, 0.3, 0.5],  # nothing to split
            [3.0, -1.0, 0.0],  # raw contributions, normalised inside: 1.5, -0.5 -> 150, -50
        ]
    )
    expected = np.array([[334, 333, 333], [-4, -3, 0], [0, 0, 0], [150, -50, 0]])
    np.testing.assert_array_equal(attribute_fills(pnl, shares), expected)


def test_attribute_fills_errors_name_the_row():
    with pytest.raises(ValueError, match="fill 1"):
        attribute_fills(np.array([1, 2]), np.array([[1.0, 0.0], [0.5, -0.5]]))
    with pytest.raises(ValueError, match=r"shares\[1, 0\]"):
        attribute_fills(np.array([1, 2]), np.array([[1.0, 0.0], [np.nan, 1.0]]))
    with pytest.raises(ValueError, match="shape"):
        attribute_fills(np.array([1, 2]), np.ones((3, 2)))
    with pytest.raises(TypeError, match="integers"):
        attribute_fills(np.array([1.5]), np.ones((1, 2)))


def test_attribute_fills_empty():
    assert attribute_fills(np.zeros(0, dtype=np.int64), np.zeros((0, 3))).shape == (0, 3)


def test_attribute_fills_many_rows_sum_exactly():
    rng = np.random.default_rng(7)
    shares = rng.normal(0.2, 0.3, (100_000, 5))  # mixed signs
    shares = shares[np.abs(shares.sum(axis=1)) > 0.05]  # a near-zero score opens no position
    pnl = rng.integers(-(10**15), 10**15, shares.shape[0])
    parts = attribute_fills(pnl, shares)
    assert parts.dtype == np.int64
    np.testing.assert_array_equal(parts.sum(axis=1), pnl)
    # and each part is within one unit of its ideal proportional value
    ideal = pnl[:, None] * (shares / shares.sum(axis=1, keepdims=True))
    assert np.all(np.abs(parts - ideal) <= 1.0 + 1e-6 * np.abs(ideal))


# ---------------------------------------------------------------- properties

contribution = st.floats(min_value=-1.0, max_value=1.0, allow_nan=False).filter(lambda x: x == 0 or abs(x) > 1e-6)
contributions = st.dictionaries(st.text("abcdefgh", min_size=1, max_size=3), contribution, max_size=7)
pnl_units = st.integers(min_value=-(10**14), max_value=10**14)


def is_splittable(contribs: dict[str, float]) -> bool:
    total = sum(contribs.values())
    # a near-zero score would not open a position; keep the parts within int64
    return bool(contribs) and abs(total) > 1e-3


@settings(max_examples=500, deadline=None)
@given(pnl_units, contributions, st.sampled_from([Decimal("1e-8"), CENT, Decimal("0.05"), Decimal("1")]))
def test_parts_sum_exactly_to_pnl(units, contribs, quantum):
    score = float(np.sum(np.array([contribs[a] for a in sorted(contribs)])))
    assume(score == 0.0 or is_splittable(contribs))  # else: a near-zero score (ValueError by design)
    pnl = from_minor_units(units, quantum)
    parts = split_pnl(pnl, contribs, quantum=quantum)
    assert sum(parts.values(), Decimal(0)) == pnl
    for part in parts.values():
        assert to_minor_units(part, quantum) * quantum == part  # every part is whole quanta
    if is_splittable(contribs):
        assert set(parts) == set(contribs)
        total = sum(contribs.values())
        for agent, part in parts.items():
            ideal = units * (contribs[agent] / total)
            assert abs(to_minor_units(part, quantum) - ideal) <= 1 + 1e-9 * abs(ideal)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(pnl_units, contributions), min_size=1, max_size=20))
def test_vectorised_equals_scalar(rows):
    names = sorted({name for _, contribs in rows for name in contribs} | {"z"})
    rows = [(units, contribs) for units, contribs in rows if is_splittable(contribs)]
    if not rows:
        return
    pnl = np.array([units for units, _ in rows], dtype=np.int64)
    shares = np.array([[contribs.get(name, 0.0) for name in names] for _, contribs in rows])
    vectorised = attribute_fills(pnl, shares)
    for i, (units, contribs) in enumerate(rows):
        full = {name: contribs.get(name, 0.0) for name in names}
        scalar = split_pnl(from_minor_units(units), full)
        assert [to_minor_units(scalar[name]) for name in names] == vectorised[i].tolist()
