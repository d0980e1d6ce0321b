"""Per-agent return streams, trade stats, agent evaluation and exact P&L splits (core.performance)."""

from __future__ import annotations

import math
from decimal import ROUND_DOWN, Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tradepipe.core.attribution import DEFAULT_QUANTUM, UNATTRIBUTED
from tradepipe.core.metrics import summarize
from tradepipe.core.performance import evaluate_agents, split_exact, streams_table, trade_stats

T0 = pd.Timestamp("2026-01-12T00:00:00Z")
HOUR = pd.Timedelta(hours=1)
FEE_BPS = 10.0  # 0.001 per unit of position change


def _signals(rows: list[tuple[int, str, str, float, bool, float]]) -> pd.DataFrame:
    """(bar index, symbol, agent, value, abstained, close) -> the signals table the asset reads."""
    return pd.DataFrame(
        [(T0 + i * HOUR, symbol, agent, value, abstained, close) for i, symbol, agent, value, abstained, close in rows],
        columns=["bar_ts", "symbol", "agent_name", "value", "abstained", "close"],
    )


# ---------------------------------------------------------------- trade_stats


def _parts(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame([(agent, Decimal(pnl)) for agent, pnl in rows], columns=["agent_name", "pnl"])


def test_trade_stats_hand_computed():
    stats = trade_stats(_parts([("a", "3"), ("a", "1.1"), ("a", "-2"), ("b", "0.1"), ("b", "0.2")]))
    assert stats["a"] == {
        "attributed_pnl": Decimal("2.1"),
        "trade_count": 3,
        "trade_win_rate": pytest.approx(2 / 3),
        "trade_profit_factor": pytest.approx(4.1 / 2),
    }
    # only winners: profit factor undefined (None), never a crash or inf
    assert stats["b"] == {"attributed_pnl": Decimal("0.3"), "trade_count": 2, "trade_win_rate": 1.0, "trade_profit_factor": None}
    assert isinstance(stats["b"]["attributed_pnl"], Decimal)  # exact: 0.1 + 0.2 == 0.3


def test_trade_stats_only_losers_and_none():
    stats = trade_stats(_parts([("c", "-1.5"), ("c", "-0.25")]))
    assert stats["c"] == {"attributed_pnl": Decimal("-1.75"), "trade_count": 2, "trade_win_rate": 0.0, "trade_profit_factor": 0.0}
    assert trade_stats(pd.DataFrame(columns=["agent_name", "pnl"])) == {}


def test_trade_stats_break_even_is_neither_win_nor_loss():
    stats = trade_stats(_parts([("d", "0"), ("d", "1"), ("d", "-1")]))
    assert stats["d"]["trade_win_rate"] == 0.5
    assert stats["d"]["trade_profit_factor"] == 1.0
    assert stats["d"]["attributed_pnl"] == Decimal(0)
    only_zero = trade_stats(_parts([("e", "0")]))["e"]
    assert only_zero["trade_win_rate"] is None and only_zero["trade_profit_factor"] is None


# ---------------------------------------------------------------- evaluate_agents

PPY = 16.0  # sqrt(16) = 4 keeps the annualised Sharpe hand-computable
STREAMS = {
    # mean 0.02, sample std sqrt(4e-4 / 5): Sharpe 0.02 / 0.0089443 * 4 = 8.944; wins only
    "steady": [0.02, 0.01, 0.03, 0.02, 0.01, 0.03],
    # two big wins, four small losses: Sharpe 2.505 > 1.5 but win rate 1/3 < 45%: both lists
    "lumpy": [0.10, -0.001, -0.001, 0.10, -0.001, -0.001],
    # mean 1/600, std 0.013292: Sharpe 0.5016, win rate 0.5: neither list
    "mid": [0.02, -0.01, 0.01, -0.01, 0.01, -0.01],
    # mean < 0: Sharpe -0.069 < 0.5
    "weak": [0.01, -0.012, 0.011, -0.01, 0.0, 0.0],
    # abstains all the time: flat, Sharpe undefined
    "silent": [0.0] * 6,
}


def _evaluate(agents: list[str]) -> tuple[dict, dict]:
    streams = pd.DataFrame(STREAMS, index=[T0 + i * HOUR for i in range(6)])
    trades = {"steady": {"trade_count": 2, "attributed_pnl": Decimal("1.5"), "trade_win_rate": 1.0, "trade_profit_factor": None}}
    return evaluate_agents(agents, streams, {"steady": 6, "lumpy": 6, "mid": 4}, trades, PPY)


def test_evaluate_agents_flags_and_ranking():
    agents = ["weak", "silent", "mid", "lumpy", "steady", "absent"]  # "absent" has no stream at all
    rows, classification = _evaluate(agents)
    assert rows["steady"]["sharpe"] == pytest.approx(4 * math.sqrt(5))
    assert rows["lumpy"]["sharpe"] == pytest.approx(2.505296, rel=1e-6)
    assert rows["mid"]["sharpe"] == pytest.approx(0.50157, rel=1e-4)
    assert rows["weak"]["sharpe"] < 0
    assert classification["ranking"] == ["steady", "lumpy", "mid", "weak", "absent", "silent"]  # None last, by name
    assert [rows[a]["rank"] for a in classification["ranking"]] == [1, 2, 3, 4, 5, 6]
    assert classification["top_performers"] == ["steady", "lumpy"]
    under = classification["underperformers"]
    assert list(under) == ["lumpy", "weak", "absent", "silent"]
    assert "win_rate 0.333 < 0.45" in under["lumpy"] and "sharpe" not in under["lumpy"]
    assert under["weak"].startswith("sharpe -0.069 < 0.5")
    assert "undefined" in under["silent"] and "zero volatility" in under["silent"]
    flags = {a: (rows[a]["is_top_performer"], rows[a]["is_underperformer"]) for a in agents}
    assert flags == {
        "steady": (True, False),
        "lumpy": (True, True),
        "mid": (False, False),
        "weak": (False, True),
        "silent": (False, True),
        "absent": (False, True),
    }


def test_evaluate_agents_rows_equal_summarize_and_carry_counts():
    agents = list(STREAMS) + ["absent"]
    rows, _ = _evaluate(agents)
    for agent in agents:
        expected = summarize(STREAMS.get(agent, [0.0] * 6), PPY)
        for key, value in expected.items():
            assert rows[agent][key] == (pytest.approx(value) if isinstance(value, float) else value), (agent, key)
        assert rows[agent]["returns"] == 6
    assert rows["steady"]["signal_count"] == 6 and rows["absent"]["signal_count"] == 0
    assert rows["steady"]["trade_count"] == 2 and rows["steady"]["attributed_pnl"] == Decimal("1.5")
    assert rows["mid"]["trade_count"] == 0 and rows["mid"]["attributed_pnl"] == Decimal(0)
    assert rows["mid"]["trade_win_rate"] is None
    for agent in ("silent", "absent"):  # constant stream: null ratios, never inf
        row = rows[agent]
        assert row["sharpe"] is None and row["sortino"] is None and row["win_rate"] is None
        assert row["profit_factor"] is None and row["calmar"] is None
        assert row["volatility"] == 0.0 and row["max_drawdown"] == 0.0 and row["total_return"] == 0.0


def test_evaluate_agents_without_any_returns():
    rows, classification = evaluate_agents(["a", "b"], pd.DataFrame(dtype=float), {}, {}, 8760.0)
    assert classification["ranking"] == ["a", "b"]
    assert classification["top_performers"] == []
    for row in rows.values():
        assert row["returns"] == 0
        assert row["sharpe"] is None and row["null_reasons"]["sharpe"] == "fewer than 2 returns"
        assert row["is_underperformer"] is True


# ---------------------------------------------------------------- split_exact


def test_split_exact_hand_computed_17_decimals():
    # whole part -3.14282764 (toward zero) = -314282764 units split 0.75 / 0.25 exactly;
    # the sub-quantum residue -0.00000000441286145 goes to the largest |contribution| (trend)
    parts = split_exact(Decimal("-3.14282764441286145"), {"trend": 0.3, "momentum": 0.1})
    assert parts == {"momentum": Decimal("-0.78570691"), "trend": Decimal("-2.35712073441286145")}
    assert sum(parts.values()) == Decimal("-3.14282764441286145")


def test_split_exact_on_quantum_equals_split_pnl_and_edge_cases():
    assert split_exact(Decimal("10.00000000"), {"c": 1.0, "a": 1.0, "b": 1.0}) == {
        "a": Decimal("3.33333334"), "b": Decimal("3.33333333"), "c": Decimal("3.33333333"),
    }
    assert split_exact(Decimal("1.5"), {}) == {UNATTRIBUTED: Decimal("1.5")}
    assert split_exact(Decimal("1.000000001"), {"a": 0.5, "b": -0.5}) == {UNATTRIBUTED: Decimal("1.000000001")}
    # a residue with mixed signs goes to the largest |contribution| even if it is negative
    parts = split_exact(Decimal("1.000000005"), {"trend": 0.3, "contrarian": -0.5})
    assert parts["contrarian"] == Decimal("2.500000005") and parts["trend"] == Decimal("-1.5")
    # the PostgreSQL NUMERIC(50, 24) spelling of a P&L (trailing zeros) splits the same way
    assert split_exact(Decimal("-3.142827644412861450000000"), {"trend": 0.3, "momentum": 0.1}) == {
        "momentum": Decimal("-0.78570691"), "trend": Decimal("-2.35712073441286145"),
    }


_NAMES = ["momentum", "trend", "mean_reversion", "breakout", "sentiment"]


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=-(10**23), max_value=10**23).map(lambda n: Decimal(n).scaleb(-17)),
    st.dictionaries(
        st.sampled_from(_NAMES),
        st.floats(min_value=-1.0, max_value=1.0, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=5,
    ),
)
def test_split_exact_sums_exactly_for_17_decimal_pnl(pnl: Decimal, contributions: dict[str, float]):
    total = math.fsum(contributions.values())
    assume(abs(total) > 1e-3)  # (nearly) cancelling contributions: UNATTRIBUTED or rejected, tested above
    parts = split_exact(pnl, contributions)
    assert sum(parts.values(), Decimal(0)) == pnl
    assert list(parts) == sorted(contributions)
    # every part is whole quanta except the one that took the sub-quantum residue
    off_grid = [a for a, p in parts.items() if p % DEFAULT_QUANTUM != 0]
    assert len(off_grid) <= 1
    if off_grid:
        biggest = max(contributions, key=lambda a: (abs(contributions[a]), a))
        assert off_grid == [biggest]
    # the whole-quantum part of the P&L is split proportionally to within one quantum (largest
    # remainder); the sub-quantum residue is added on top, whole, to the largest contributor
    whole = pnl.quantize(DEFAULT_QUANTUM, rounding=ROUND_DOWN)
    residue = pnl - whole
    for agent, part in parts.items():
        ideal_units = float(whole / DEFAULT_QUANTUM) * contributions[agent] / total
        units = (part - (residue if agent in off_grid else 0)) / DEFAULT_QUANTUM
        assert units == units.to_integral_value()
        assert abs(float(units) - ideal_units) <= 1 + abs(ideal_units) * 1e-9


def test_split_exact_random_trades_sum_exactly():
    rng = np.random.default_rng(3)
    for _ in range(200):
        pnl = Decimal(int(rng.integers(-(10**18), 10**18))).scaleb(-17)
        contributions = {name: float(rng.uniform(0.01, 1.0)) * float(rng.choice([-1, 1])) for name in _NAMES[:4]}
        if abs(sum(contributions.values())) < 1e-2:
            continue
        assert sum(split_exact(pnl, contributions).values()) == pnl


def test_streams_table_equals_pandas_reindex_and_fillna() -> None:
    """The daily decisions' table of agent columns is pandas' own reindex-and-fill, to the bit."""
    rng = np.random.default_rng(7)
    index = pd.to_datetime(np.arange(50) * 3_600_000, unit="ms")
    values = rng.normal(0, 0.01, (50, 3))
    values[rng.random((50, 3)) < 0.2] = np.nan
    streams = pd.DataFrame(values, index=index, columns=["zeta", "alpha", "extra"])
    agents = ["alpha", "missing", "zeta"]  # another order, an agent without a stream, a stream of no agent
    expected = streams.reindex(columns=agents).fillna(0.0)
    pd.testing.assert_frame_equal(streams_table(streams, agents), expected, check_exact=True)
    assert np.array_equal(streams_table(streams, agents).to_numpy(), expected.to_numpy())
