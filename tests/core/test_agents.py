"""Signal agents: registry, abstentions, hand-computed votes, sentiment, input guard, real candles."""

from __future__ import annotations

import itertools
import math
import statistics
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradepipe.core import agents
from tradepipe.core.agents import (
    AGENTS,
    DEFAULT_AGENTS,
    Vote,
    abstain,
    get_agents,
    headline_sentiment,
    max_history_needed,
    register_agent,
    run_agents,
    validate_history,
)
from tradepipe.core.types import AgentContext, BarHistory, Headline, Signal

HOUR = 3_600_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR
NO_NEWS = AgentContext(now_ms=T0)
TECHNICAL = ("momentum", "trend", "mean_reversion", "breakout")


def make_history(close, high=None, low=None, open_=None, symbol: str = "BTC/USDT") -> BarHistory:
    """Hourly bars from arrays; high/low default to the close (a valid, range-less bar)."""
    close = np.asarray(close, dtype=float)
    high = close.copy() if high is None else np.asarray(high, dtype=float)
    low = close.copy() if low is None else np.asarray(low, dtype=float)
    open_ = close.copy() if open_ is None else np.asarray(open_, dtype=float)
    timestamps = T0 - HOUR * np.arange(len(close), 0, -1, dtype=np.int64)
    return BarHistory(symbol, "1h", timestamps, open_, high, low, close, np.ones(len(close)))


def ranged(close, half_range: float = 1.0) -> BarHistory:
    """Bars whose high/low sit ``half_range`` around the close (open = close)."""
    close = np.asarray(close, dtype=float)
    return make_history(close, close + half_range, close - half_range)


def signal(name: str, history: BarHistory, context: AgentContext = NO_NEWS) -> Signal:
    return AGENTS[name](history, context)


# --------------------------------------------------------------------- registry


def test_registry_holds_the_five_agents_with_their_history_needs() -> None:
    assert DEFAULT_AGENTS == ("momentum", "trend", "mean_reversion", "breakout", "sentiment")
    needs = {agent.name: agent.min_bars for agent in get_agents()}
    assert needs == {"momentum": 35, "trend": 59, "mean_reversion": 20, "breakout": 21, "sentiment": 0}
    assert max_history_needed(get_agents()) == 59
    assert max_history_needed([]) == 0


def test_get_agents_keeps_the_requested_order() -> None:
    assert [a.name for a in get_agents(["sentiment", "trend"])] == ["sentiment", "trend"]


def test_get_agents_rejects_unknown_names_listing_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown agent\(s\) 'astrology'.*known agents: breakout, mean_reversion, momentum"):
        get_agents(["trend", "astrology"])


def test_get_agents_rejects_duplicates() -> None:
    with pytest.raises(ValueError, match="more than once: 'trend'"):
        get_agents(["trend", "trend"])


def test_register_agent_adds_a_user_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agents, "AGENTS", dict(AGENTS))

    @register_agent("always_long", min_bars=2)
    def always_long(history: BarHistory, context: AgentContext) -> Vote:
        """Buys everything."""
        return Vote(3.0, 1.5, "optimist")  # out of range on purpose: the wrapper clips

    assert agents.AGENTS["always_long"] is always_long
    assert always_long.description == "Buys everything."
    assert get_agents(["always_long"]) == [always_long]
    assert always_long(make_history([1.0, 2.0]), NO_NEWS) == Signal("always_long", "BTC/USDT", 1.0, 1.0, "optimist")
    assert always_long(make_history([1.0]), NO_NEWS).reason == "needs 2 bars, have 1"


def test_register_agent_rejects_duplicates_and_bad_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agents, "AGENTS", dict(AGENTS))
    with pytest.raises(ValueError, match="already registered"):
        register_agent("trend", min_bars=1)(lambda history, context: abstain("x"))
    with pytest.raises(ValueError, match="lower_snake_case"):
        register_agent("Trend Follower", min_bars=1)
    with pytest.raises(ValueError, match="min_bars"):
        register_agent("negative", min_bars=-1)


def test_non_finite_vote_becomes_an_abstention(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agents, "AGENTS", dict(AGENTS))
    broken = register_agent("broken", min_bars=0)(lambda history, context: Vote(math.nan, 1.0, "oops"))
    result = broken(make_history([1.0]), NO_NEWS)
    assert result.abstained and result.value == 0.0 and result.confidence == 0.0
    assert "non-finite" in result.reason


# --------------------------------------------------------------------- abstain and flat


def test_short_history_abstains_with_the_bars_needed() -> None:
    result = signal("momentum", ranged(100.0 + np.arange(12.0)))
    assert result == Signal("momentum", "BTC/USDT", 0.0, 0.0, "needs 35 bars, have 12", abstained=True)
    assert signal("trend", ranged(np.full(58, 100.0))).reason == "needs 59 bars, have 58"
    assert not signal("trend", ranged(100.0 + np.arange(59.0))).abstained


@pytest.mark.parametrize("name", TECHNICAL)
def test_constant_prices_vote_zero_with_a_reason_and_no_warning(name: str) -> None:
    history = make_history(np.full(80, 0.1))  # 0.1: not exactly representable, so means wobble
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = signal(name, history)
    assert (result.value, result.confidence, result.abstained) == (0.0, 0.0, False)
    assert "flat" in result.reason


# --------------------------------------------------------------------- hand-computed votes


def test_trend_on_a_straight_uptrend() -> None:
    # close = 100 + t, high/low = close +- 1: every true range is 2, so ATR = 2.
    # SMA20 - SMA50 of a line with slope 1 is (50 - 20) / 2 = 15 -> 7.5 ATR -> tanh(7.5 / 1.5).
    result = signal("trend", ranged(100.0 + np.arange(80.0)))
    assert result.value == pytest.approx(math.tanh(5.0))
    assert result.confidence == 1.0
    assert result.reason == "SMA20 above SMA50 by +7.50 ATR, held 100% of last 10 bars"


def test_trend_confidence_counts_bars_since_the_crossover() -> None:
    # Falling for 70 bars then rising: fast crosses above slow a few bars before the end.
    close = np.concatenate([200.0 - np.arange(70.0), 131.0 + 3.0 * np.arange(20.0)])
    gap = pd.Series(close).rolling(20).mean() - pd.Series(close).rolling(50).mean()
    held = float(np.mean(gap.iloc[-10:] > 0))
    result = signal("trend", ranged(close))
    assert result.value > 0 and 0.0 < held < 1.0
    assert result.confidence == pytest.approx(held)


def test_momentum_on_a_straight_uptrend() -> None:
    # No losses: RSI 100 -> RSI term +1. An SMA-seeded EMA of a line lags it by exactly
    # (n - 1) / 2 bars, so the MACD line is the constant 12.5 - 5.5 = 7, the signal line is 7
    # too and the histogram 0: MACD term 0. Vote (1 + 0) / 2, agreement 1 - |1 - 0| / 2.
    result = signal("momentum", ranged(100.0 + np.arange(60.0)))
    assert result.value == pytest.approx(0.5, abs=1e-9)
    assert result.confidence == pytest.approx(0.5, abs=1e-9)
    assert result.reason.startswith("RSI 100.0 overbought, MACD hist ")


def test_mean_reversion_hand_computed() -> None:
    close = [100.0, 102.0, 99.0, 101.0, 98.0] * 4 + [99.5]
    window = close[-20:]
    z = (close[-1] - statistics.fmean(window)) / statistics.pstdev(window)
    result = signal("mean_reversion", make_history(close))
    assert result.value == pytest.approx(-z / 2)
    assert result.confidence == pytest.approx(abs(z) / 2)
    assert result.reason == f"Bollinger z {z:+.2f} (inside bands)"


def test_mean_reversion_clips_at_the_bands() -> None:
    result = signal("mean_reversion", make_history([100.0] * 19 + [110.0]))
    assert (result.value, result.confidence) == (-1.0, 1.0)
    assert "above upper band" in result.reason


def test_breakout_above_the_channel_hand_computed() -> None:
    # 30 bars 99..101 around 100 (true range 2), then a bar to 103 (high 103.5, low 100):
    # its true range is 3.5, ATR(14) = (13 * 2 + 3.5) / 14; 2 above the 101 high.
    close = np.array([100.0] * 30 + [103.0])
    high = np.array([101.0] * 30 + [103.5])
    low = np.array([99.0] * 30 + [100.0])
    atr = (13 * 2 + 3.5) / 14
    strength = 0.5 + 0.5 * min(1.0, 2.0 / atr)
    result = signal("breakout", make_history(close, high, low, open_=np.array([100.0] * 31)))
    assert result.value == pytest.approx(strength)
    assert result.confidence == pytest.approx(strength)
    assert result.reason == f"close {2.0 / atr:.2f} ATR above 20-bar high 101"


def test_breakout_below_the_channel_is_negative() -> None:
    close = np.array([100.0] * 30 + [96.0])
    result = signal("breakout", make_history(close, np.maximum(close, 101.0), np.minimum(close, 99.0) - 0.5))
    assert result.value <= -0.5 and "below 20-bar low" in result.reason


def test_breakout_inside_the_channel_leans_to_the_nearer_edge() -> None:
    # Channel [99, 101]; close 100.5 sits at 75% -> 0.5 * (2 * 0.75 - 1) = 0.25.
    close = np.array([100.0] * 30 + [100.5])
    result = signal("breakout", make_history(close, np.full(31, 101.0), np.full(31, 99.0), open_=np.full(31, 100.0)))
    assert (result.value, result.confidence) == (pytest.approx(0.25), 0.3)
    assert result.reason == "inside 20-bar channel at 75% of [99, 101]"


def test_trend_and_mean_reversion_disagree_on_a_stretched_trend() -> None:
    history = ranged(100.0 + np.arange(80.0))
    assert signal("trend", history).value > 0.9
    assert signal("mean_reversion", history).value < -0.8


def test_agents_are_deterministic() -> None:
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 200)))
    history = ranged(close, 0.5)
    assert run_agents(get_agents(), history, NO_NEWS) == run_agents(get_agents(), history, NO_NEWS)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 120),
    volatility=st.sampled_from([0.0, 1e-12, 1e-4, 0.02, 0.3]),
    flat_tail=st.integers(0, 40),
)
def test_agents_never_raise_and_stay_in_range(seed: int, n: int, volatility: float, flat_tail: int) -> None:
    rng = np.random.default_rng(seed)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0, volatility, n)))
    close[max(0, n - flat_tail) :] = close[max(0, n - flat_tail) - 1] if n > flat_tail else 50.0
    spread = rng.uniform(0.0, volatility, n)
    history = make_history(close, close * (1 + spread), close * (1 - spread / 2))
    assert validate_history(history) is None or n == 0
    for result in run_agents(get_agents(TECHNICAL), history, NO_NEWS):
        assert -1.0 <= result.value <= 1.0 and 0.0 <= result.confidence <= 1.0
        assert result.reason
        if result.abstained:
            assert (result.value, result.confidence) == (0.0, 0.0)


# --------------------------------------------------------------------- sentiment

BULLISH = "Bitcoin soars to record high as ETF inflows surge"
BEARISH = "Crypto exchange hacked, millions in bitcoin stolen"


def news(*headlines: Headline, now_ms: int = T0) -> AgentContext:
    return AgentContext(now_ms=now_ms, headlines=headlines)


def sentiment(context: AgentContext, symbol: str = "BTC/USDT") -> Signal:
    return signal("sentiment", make_history([1.0], symbol=symbol), context)


def test_hand_picked_headlines_have_the_expected_sign() -> None:
    assert headline_sentiment(BULLISH) > 0.5
    assert headline_sentiment(BEARISH) < -0.5
    assert headline_sentiment("Bitcoin plunges after regulators announce ban") < -0.5
    assert headline_sentiment("Bitcoin trades at 42000") == 0.0


def test_sentiment_abstains_without_a_feed_or_without_headlines() -> None:
    assert sentiment(NO_NEWS) == Signal("sentiment", "BTC/USDT", 0.0, 0.0, "no headline feed configured", abstained=True)
    assert sentiment(news()) == Signal("sentiment", "BTC/USDT", 0.0, 0.0, "no recent headlines", abstained=True)


def test_sentiment_sign_follows_the_news() -> None:
    assert sentiment(news(Headline(BULLISH, T0 - HOUR))).value > 0.5
    assert sentiment(news(Headline(BEARISH, T0 - HOUR))).value < -0.5


def test_sentiment_recency_weighting_hand_computed() -> None:
    # Ages 0 and 6 h (one half-life): weights 1 and 0.5; confidence W / (W + 1) = 1.5 / 2.5.
    result = sentiment(news(Headline(BULLISH, T0), Headline(BEARISH, T0 - 6 * HOUR)))
    expected = (headline_sentiment(BULLISH) + 0.5 * headline_sentiment(BEARISH)) / 1.5
    assert result.value == pytest.approx(expected)
    assert result.confidence == pytest.approx(0.6)
    assert result.reason == f"VADER {expected:+.2f} over 2 headline(s) on BTC, newest 0.0h old"


def test_sentiment_ignores_headlines_from_the_future() -> None:
    past = Headline(BULLISH, T0 - 2 * HOUR)
    future = Headline(BEARISH, T0 + 1)
    with_future = sentiment(news(past, future))
    assert with_future.value == sentiment(news(past)).value > 0
    assert "1 after now ignored" in with_future.reason
    only_future = sentiment(news(future))
    assert only_future.abstained and only_future.reason.startswith("no recent headlines")


def test_sentiment_ignores_stale_headlines() -> None:
    result = sentiment(news(Headline(BEARISH, T0 - 49 * HOUR)))
    assert result.abstained and result.reason == "no recent headlines (1 older than 48h ignored)"


def test_sentiment_uses_headlines_about_the_asset_or_about_no_asset() -> None:
    about_eth = Headline("Ethereum rallies on upgrade news", T0)
    general = Headline("Crypto market plunges as regulators announce ban", T0)
    btc = sentiment(news(about_eth, general))
    assert btc.value < 0 and "1 about other assets ignored" in btc.reason
    eth = sentiment(news(about_eth), symbol="ETH/USDT")
    assert eth.value > 0
    assert sentiment(news(Headline("BTC and ETH rally together", T0)), symbol="ETH/USDT").value > 0
    assert sentiment(news(Headline("PEPE soars", T0)), symbol="PEPE/USDT").value > 0


def test_vader_analyzer_is_built_once() -> None:
    assert agents._vader() is agents._vader()


# --------------------------------------------------------------------- input guard


def test_validate_history_accepts_good_bars() -> None:
    assert validate_history(ranged(100.0 + np.arange(10.0))) is None


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("close", math.nan, "null_value"),
        ("high", math.inf, "non_positive_price"),
        ("low", 0.0, "non_positive_price"),
        ("close", -1.0, "non_positive_price"),
        ("volume", -1.0, "negative_volume"),
        ("low", 200.0, "high_low_inconsistent"),
        ("close", 150.0, "high_low_inconsistent"),
    ],
)
def test_validate_history_names_a_bad_last_bar(field: str, value: float, expected: str) -> None:
    history = ranged(100.0 + np.arange(10.0))
    getattr(history, field)[-1] = value
    reason = validate_history(history)
    assert reason is not None and expected in reason


def test_validate_history_rejects_structural_problems() -> None:
    assert validate_history(make_history([])) == "no bars"
    history = ranged(np.full(5, 100.0))
    shuffled = BarHistory("X/Y", "1h", history.timestamps[[0, 2, 1, 3, 4]], history.open, history.high, history.low, history.close, history.volume)
    assert "timestamp_not_increasing" in validate_history(shuffled)
    short = BarHistory("X/Y", "1h", history.timestamps, history.open, history.high, history.low, history.close[:4], history.volume)
    assert "differ in length" in validate_history(short)


def test_validate_history_checks_older_bars_too() -> None:
    history = ranged(100.0 + np.arange(10.0))
    history.close[3] = math.nan  # would poison every exponential average after it
    assert "null_value" in validate_history(history)


# --------------------------------------------------------------------- real candles

HEADLINES_EVERY = 60  # bars


@pytest.mark.shared_data
def test_the_five_agents_disagree_somewhere_on_real_btc_candles(shared_data: Path) -> None:
    path = shared_data / "ohlcv/binance_2018_octobot/BTC_USDT-1h.csv"
    frame = pd.read_csv(path)
    bars = {column: frame[column].to_numpy(dtype=float) for column in ("open", "high", "low", "close", "volume")}
    timestamps = frame["timestamp"].to_numpy(dtype=np.int64)
    # Alternate one bullish and one bearish headline through the series: sentiment votes near them.
    feed = tuple(Headline(BULLISH if i % 2 else BEARISH, int(timestamps[k])) for i, k in enumerate(range(0, len(frame), HEADLINES_EVERY)))
    chosen = get_agents()
    votes = []
    for end in range(max_history_needed(chosen), len(frame) + 1):
        history = BarHistory("BTC/USDT", "1h", timestamps[:end], *(bars[c][:end] for c in ("open", "high", "low", "close", "volume")))
        assert validate_history(history) is None
        signals = run_agents(chosen, history, AgentContext(now_ms=int(timestamps[end - 1]) + HOUR, headlines=feed))
        votes.append([s.value for s in signals])
    values = np.array(votes)
    assert np.isfinite(values).all() and (np.abs(values) <= 1.0).all()
    names = [agent.name for agent in chosen]
    for i, j in itertools.combinations(range(len(names)), 2):
        opposed = ((values[:, i] > 0.1) & (values[:, j] < -0.1)) | ((values[:, i] < -0.1) & (values[:, j] > 0.1))
        assert opposed.any(), f"{names[i]} and {names[j]} never disagree"
