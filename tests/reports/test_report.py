"""The report model's figures and rules against hand-computed numbers; the schema; the HTML's escaping."""

from __future__ import annotations

import copy
import email
import json
import re
from datetime import timedelta
from email.policy import default as default_policy

import pytest

from tests.reports.sample import WINDOW_END, WINDOW_START, sample_inputs
from tradepipe.core.report_inputs import DeliveryFailure, MetricRecord
from tradepipe.core.report import build_report
from tradepipe.reports.render import ReportSchemaError, compose_email, render_json, render_standalone_html, validate


def test_portfolio_pnl_for_window_day_and_week() -> None:
    # 3 days of 1-minute snapshots ending 12:00; equity is 10,000 + i at minute i.
    minutes = 3 * 24 * 60
    document = build_report(sample_inputs(minutes=minutes))
    portfolio = document["portfolio"]
    last = 10_000 + minutes - 1
    assert portfolio["equity"] == last
    # Window: reference is the snapshot at 09:59, i.e. 120 bars before the last one (11:59).
    assert portfolio["pnl"]["window"] == 120
    # Day: reference is 23:59 the day before, 12 h (720 bars) before 11:59.
    assert portfolio["pnl"]["day"] == 720
    # Week: no snapshot before the week began, so the reference is the starting cash.
    assert portfolio["pnl"]["week"] == last - 10_000
    assert portfolio["max_drawdown_week"] == 0.0
    assert portfolio["positions"][0]["symbol"] == "BTC/USDT"


def test_activity_counts_and_health() -> None:
    document = build_report(sample_inputs())
    activity = document["activity"]
    assert activity["bars_expected"] == 120 and activity["cycles_run"] == 120 and activity["cycles_missed"] == 0
    assert activity["skipped_symbols"] == {"ETH/USDT": 12}  # every 10th of 120 cycles
    assert activity["orders"] == 30 and activity["fills"] == 30  # every 4th bar
    assert activity["rejections"] == {"max_position": 6}  # every 20th bar
    assert activity["fees"] == pytest.approx(15.0)
    assert activity["weights_sources"] == {"redis": 120}
    health = document["health"]
    assert health["latency_seconds"]["total"] == {"count": 120, "p50": 0.5, "p95": 0.5, "max": 0.5}
    assert list(health["latency_seconds"]) == ["market_data", "agents", "risk", "ledger", "total"]
    assert health["data_errors"] == {"ETH/USDT": 1}
    work = {w["agent"]: w for w in document["agent_work"]}
    assert work["momentum"]["tasks"] == 120 and work["momentum"]["by_status"] == {"voted": 120}
    assert document["agents"]["ranking"][0]["agent"] == "trend"
    assert document["agents"]["underperformers"] == ["momentum"]


def test_a_preview_inside_its_window_counts_only_the_bars_closed_so_far() -> None:
    # 18:20 in an 18:00-20:00 window of 1-minute bars: 20 bars have closed, the other 100 are still ahead.
    at = WINDOW_START + timedelta(minutes=20, seconds=30)
    inputs = sample_inputs()
    inputs = sample_inputs(cycles=[c for c in inputs.cycles if c.bar_ts < WINDOW_START + timedelta(minutes=10)], generated_at=at)
    activity = build_report(inputs)["activity"]
    assert (activity["bars_expected"], activity["cycles_run"], activity["cycles_missed"]) == (20, 10, 10)
    assert "Cycles 10 run of 20 bars (10 missed" in build_report(inputs)["summary"]


def test_the_summary_states_the_figures_rule_and_why_hedge_weights_a_losing_agent() -> None:
    from tradepipe.core.report_inputs import AgentDay, WeightDecisionRecord

    inputs = sample_inputs()
    summary = build_report(inputs)["summary"]
    assert "- Figures: Sharpe, Sortino, volatility and Calmar of bars shorter than a day are computed on daily returns" in summary
    assert "null until 14 days of returns exist" in summary
    assert "negative Sharpe" not in summary  # no agent has one here
    day = WINDOW_START.date()
    losing = [AgentDay(day, "trend", 1.5, 0.5, 0.01, 100, 12.5, 1, True, False), AgentDay(day, "momentum", -2.1, 0.4, -0.01, 100, -3.0, 2, False, True)]
    hedge = [WeightDecisionRecord(WINDOW_START - timedelta(hours=1), "hedge", {"momentum": 0.5, "trend": 0.5}, {"momentum": 0.45, "trend": 0.55}, "hedge over 2 eligible agent(s)", True, True)]
    summary = build_report(sample_inputs(performance=losing, weight_changes=hedge))["summary"]
    assert "- Weighted despite a negative Sharpe: momentum: hedge keeps every voting agent at or above the minimum weight" in summary


def test_recommendations_carry_their_numbers() -> None:
    recommendations = {r["key"]: r for r in build_report(sample_inputs())["recommendations"]}
    assert set(recommendations) == {"agent_low_sharpe:momentum", "data_gaps:ETH/USDT", "risk_limit_hit:max_position", "fees_high"}
    assert recommendations["agent_low_sharpe:momentum"]["evidence"]["sharpe_by_day"] == {
        "2026-03-02": 0.2, "2026-03-03": 0.2, "2026-03-04": 0.2
    }
    assert recommendations["data_gaps:ETH/USDT"]["evidence"]["cycles_skipped"] == 12
    assert recommendations["risk_limit_hit:max_position"]["evidence"]["hits_24h"] == 6
    fees = recommendations["fees_high"]["evidence"]
    # 30 fills, fee 0.5 and net realised 1.0 each: gross 45, fees 15, a third of gross > 30%.
    assert fees["fees"] == 15 and fees["gross_pnl"] == 45 and fees["share"] == pytest.approx(1 / 3)


def test_low_sharpe_needs_three_consecutive_days() -> None:
    inputs = sample_inputs()
    gap = [row for row in inputs.performance if row.day != WINDOW_START.date() - timedelta(days=1)]
    keys = [r["key"] for r in build_report(sample_inputs(performance=gap))["recommendations"]]
    assert "agent_low_sharpe:momentum" not in keys


def test_slow_cycles_stale_weights_and_failed_email_are_recommended() -> None:
    slow = [MetricRecord(WINDOW_START + timedelta(minutes=i), "cycle_latency_seconds", 25.0, {"stage": "total"}) for i in range(10)]
    failure = DeliveryFailure(41, WINDOW_START, "connection to smtp.example.com:587 refused")
    document = build_report(
        sample_inputs(metrics=slow, last_weights_update=WINDOW_END - timedelta(days=5), delivery_failures=[failure])
    )
    recommendations = {r["key"]: r for r in document["recommendations"]}
    assert recommendations["slow_cycle"]["evidence"]["p95_seconds"] == 25.0
    assert recommendations["slow_cycle"]["evidence"]["limit_seconds"] == pytest.approx(20.0)
    assert recommendations["weights_stale"]["evidence"]["days_since"] == pytest.approx(5.0)
    assert recommendations["email_failed"]["evidence"]["unsent_reports"] == [41]
    assert document["recommendations"][0]["key"] == "email_failed", "most urgent first"
    assert document["health"]["email_failures"][0]["error"].endswith("refused")


def test_no_recipients_says_so() -> None:
    document = build_report(sample_inputs(recipients=()))
    assert document["delivery"]["status"] == "not_configured"
    assert "no recipients configured" in document["summary"]


def test_every_report_validates_and_a_broken_one_does_not() -> None:
    for inputs in (sample_inputs(), sample_inputs(minutes=30, performance=[], weight_changes=[], work=[], metrics=[]),
                   sample_inputs(equity=[], cycles=[], orders=[], fills=[], positions=[])):
        document = build_report(inputs)
        validate(document)
        assert json.loads(render_json(document)) == json.loads(json.dumps(document))
    broken = copy.deepcopy(build_report(sample_inputs()))
    broken["portfolio"]["equity"] = "14319"
    with pytest.raises(ReportSchemaError, match="portfolio/equity"):
        validate(broken)


HOSTILE_AGENT = "<script>alert('agent')</script>"
HOSTILE_SYMBOL = "<img src=x onerror=alert(1)>"


def _hostile_document() -> dict:
    inputs = sample_inputs(agents=(HOSTILE_AGENT, "trend$x$"), symbols=(HOSTILE_SYMBOL, '"><b>ETH</b>'))
    return build_report(inputs)


def test_html_is_self_contained_and_escapes_hostile_names() -> None:
    html = render_standalone_html(_hostile_document())
    assert "<script" not in html.lower()
    assert "onerror=" not in html.replace("onerror=alert(1)&gt;", "")
    assert HOSTILE_AGENT not in html and HOSTILE_SYMBOL not in html and "<b>ETH</b>" not in html
    assert "&lt;script&gt;alert(&#39;agent&#39;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    # Opens offline: every image is inline, nothing is fetched.
    sources = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert sources and all(s.startswith("data:image/svg+xml;base64,") for s in sources)
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html


def test_email_html_escapes_hostile_names_too() -> None:
    document = _hostile_document()
    message = email.message_from_bytes(
        compose_email(document, sender="t@example.com", recipients=["x@example.com"]).as_bytes(), policy=default_policy
    )
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "<script" not in html.lower() and HOSTILE_SYMBOL not in html
    assert all(s.startswith("cid:") for s in re.findall(r'src="([^"]*)"', html))
