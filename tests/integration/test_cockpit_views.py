"""``trades`` (120 columns), ``profit`` (trades on their closing day, partial closes explained),
``performance`` and ``balance`` on the hand-built ledger, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from tests.integration.test_trader_views import build_hand_ledger, cli


def test_trades_fit_120_columns_with_the_deciding_agent_first(migrated_url: str) -> None:
    build_hand_ledger(migrated_url)

    lines = cli(migrated_url, "trades").splitlines()

    assert max(len(line) for line in lines) <= 120
    rows = [line for line in lines if "USDT " in line and not line.startswith(("total", "ledger"))]
    # BTC: momentum 0.6 beat trend 0.2; the ETH short: mean_reversion; the long it flipped into: trend
    assert [row.split()[0] for row in rows] == ["momentum", "mean_reversion", "trend"]
    assert rows[0].split()[1:3] == ["BTC/USDT", "long"] and rows[0].rstrip().endswith(" 1d")  # held one day
    assert "-15.40" in rows[0] and "2025-12-02 01:00" in rows[0] and "open" in rows[2]
    assert "PT" not in "\n".join(lines)


def test_profit_counts_a_trade_on_its_closing_day_and_explains_partial_closes(migrated_url: str) -> None:
    build_hand_ledger(migrated_url)

    daily = json.loads(cli(migrated_url, "profit", "--json"))
    shown = cli(migrated_url, "profit")

    day1, day2 = daily
    # day 1: BTC bought twice and half sold (+7.44) but not closed: all 7.23 realised belongs to an open trade
    assert (day1["trades"], day1["open_trades_realized_pnl"], day1["closed_trades_pnl"]) == (0, pytest.approx(7.23), 0)
    # day 2: BTC closes (-15.405 in all) and the ETH short closes (+19.78): 2 trades, whatever day 2 alone realised
    assert day2["trades"] == 2 and day2["closed_trades_pnl"] == pytest.approx(-15.405 + 19.78)
    assert day2["realized_pnl"] == pytest.approx(-22.635 - 0.1 + 19.88) and day2["open_trades_realized_pnl"] == 0
    assert "counts on the day it closes" in shown and "partial closes" in shown


def test_performance_per_pair_and_agent(migrated_url: str) -> None:
    build_hand_ledger(migrated_url)

    report = json.loads(cli(migrated_url, "performance", "--json"))
    shown = cli(migrated_url, "performance")

    pairs = {row["pair"]: row for row in report["pairs"]}
    assert pairs["BTC/USDT"]["profit_quote"] == pytest.approx(-15.405) and pairs["BTC/USDT"]["trades"] == 1
    assert pairs["ETH/USDT"]["profit_quote"] == pytest.approx(19.78) and pairs["ETH/USDT"]["open"] == 1
    assert pairs["TOTAL"]["profit_quote"] == pytest.approx(4.375) and pairs["TOTAL"]["fees_quote"] == pytest.approx(0.625)
    agents = {row["agent"]: row for row in report["agents"]}
    assert set(agents) == {"momentum", "mean_reversion", "trend", "TOTAL"}
    assert agents["mean_reversion"]["win_rate_pct"] == 100.0 and agents["momentum"]["win_rate_pct"] == 0.0
    assert "per deciding agent" in shown and "mean_reversion" in shown


def test_balance_shows_cash_positions_and_equity(migrated_url: str) -> None:
    build_hand_ledger(migrated_url)

    report = json.loads(cli(migrated_url, "balance", "--json"))
    shown = cli(migrated_url, "balance")

    assert report["as_of_bar"] == "2025-12-03T03:00:00+00:00" and report["equity_quote"] == pytest.approx(10009.375)
    (eth,) = report["positions"]
    assert (eth["symbol"], eth["mark"], eth["value_quote"]) == ("ETH/USDT", 45, 45)
    assert eth["share_pct"] == pytest.approx(45 / 10009.375 * 100)
    assert report["profit_quote"] == pytest.approx(9.375) and report["profit_pct"] == pytest.approx(0.09375)
    assert "equity 10,009.38 USDT" in shown  # 10009.375 half to even
