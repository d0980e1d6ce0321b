"""report.html of a walk-forward: one self-contained page (inline SVG charts drawn by matplotlib with
text as paths, no script, font or image fetched from anywhere), every text escaped."""

from __future__ import annotations

import html
import io
import re
from typing import Any

import numpy as np

from tradepipe.core.timeframes import DAY_MS


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    text = text[text.index("<svg") :]  # drop the XML prolog and doctype: the SVG sits inside HTML
    return re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.DOTALL)  # RDF credits naming outside URLs


def _daily(bars: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The last value of each UTC day (charts of years of hourly bars stay small)."""
    days = bars // DAY_MS
    last = np.flatnonzero(np.append(days[1:] != days[:-1], True))
    return (bars[last]).astype("datetime64[ms]"), values[last]


def _charts(bars: np.ndarray, series: dict[str, dict[str, np.ndarray]], weights: dict[str, list[dict[str, Any]]], agents: list[str]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "path"
    charts = []
    figure, axis = plt.subplots(figsize=(10, 4.5))
    for key, s in series.items():
        x, y = _daily(bars, s["equity"])
        axis.plot(x, y, label=key, linewidth=1.6 if key.startswith("adaptive:") or key == "equal_weight" else 0.9)
    axis.set_yscale("log")
    axis.set_ylabel("equity (log scale)")
    axis.legend(fontsize=7, ncol=2)
    axis.grid(alpha=0.3)
    charts.append(("Equity, net of fees and slippage", _svg(figure)))
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(10, 3.5))
    for key, s in series.items():
        equity = s["equity"]
        drawdown = equity / np.maximum.accumulate(np.maximum(equity, equity[0])) - 1.0
        x, y = _daily(bars, drawdown)
        axis.plot(x, y * 100, label=key, linewidth=0.9)
    axis.set_ylabel("drawdown %")
    axis.legend(fontsize=7, ncol=2)
    axis.grid(alpha=0.3)
    charts.append(("Drawdowns", _svg(figure)))
    plt.close(figure)

    for key, decisions in weights.items():
        if not decisions:
            continue
        days = np.array([np.datetime64(d["day"]) for d in decisions])
        # a loop's book also weighs the variants it promoted: they are plotted after the base agents
        weighed = agents + sorted({a for d in decisions for a, w in d["weights"].items() if w > 0 and a not in agents})
        stack = np.array([[d["weights"].get(a, 0.0) for d in decisions] for a in weighed])
        figure, axis = plt.subplots(figsize=(10, 3))
        axis.stackplot(days, stack, labels=weighed, step="post")
        axis.set_ylim(0, 1)
        axis.set_ylabel("weight")
        axis.legend(fontsize=7, ncol=min(len(weighed), 6), loc="upper left")
        charts.append((f"Weights in force, {key}", _svg(figure)))
        plt.close(figure)
    return charts


def _cell(value: Any, digits: int = 3) -> str:
    if value is None:
        return "<td class=na>null</td>"
    if isinstance(value, float):
        return f"<td>{value:.{digits}f}</td>"
    return f"<td>{html.escape(str(value))}</td>"


def _pool_section(comparisons: dict[str, Any]) -> str:
    """The loop's pool over time: the members after each generation that changed them, then every move."""
    parts = []
    for key, c in comparisons.items():
        if "pool" not in c:
            continue
        rows = "".join(
            f"<tr><th>{html.escape(p['day'])}</th><td style='text-align:left'>{html.escape('; '.join(p.get('variants') or p['members']) or 'base agents only')}</td></tr>"
            for p in c["pool"]
        )
        moves = "".join(
            f"<li>{html.escape(m['day'])} {html.escape(m['action'])} {html.escape(m['variant'])}: {html.escape(m['reason'])}</li>"
            for m in c.get("promotions", [])
        )
        parts.append(
            f"<h2>Pool over time, {html.escape(key)}</h2><table><tr><th>from</th><th>members beside the base agents</th></tr>"
            f"{rows or '<tr><td>no generation changed the pool</td></tr>'}</table><ul>{moves or '<li>nothing promoted</li>'}</ul>"
        )
    return "".join(parts)


def render_report(summary: dict[str, Any], bars: np.ndarray, series: dict[str, dict[str, np.ndarray]]) -> str:
    data, config = summary["data"], summary["config"]
    figures = ("sharpe", "gross_sharpe", "total_return", "cagr", "max_drawdown", "turnover", "fees", "weight_changes")
    head = "".join(f"<th>{html.escape(f)}</th>" for f in ("strategy", *figures))
    rows = "".join(
        "<tr><th>" + html.escape(key) + "</th>" + "".join(_cell(values[f], 2 if f == "fees" else 3) for f in figures) + "</tr>"
        for key, values in summary["strategies"].items()
    )
    comparisons = "".join(f"<li>{html.escape(c.get('verdict', ''))}</li>" for c in summary["comparisons"].values())
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in summary.get("notes", []))
    skipped = "".join(
        f"<li>{html.escape(symbol)}: {info['bars']} bar(s) skipped; first: {html.escape('; '.join(info['reasons']))}</li>"
        for symbol, info in summary.get("skipped", {}).items()
        if info["bars"]
    )
    failures = [
        f"{key} {d['day']}: {d['reason']}"
        for key, decisions in summary.get("decisions", {}).items()
        for d in decisions
        if "failed" in d["reason"]
    ]
    failed = "".join(f"<li>{html.escape(f)}</li>" for f in failures[:50])
    charts = "".join(
        f"<h2>{html.escape(title)}</h2><div class=chart>{svg}</div>"
        for title, svg in _charts(bars, series, summary.get("decisions", {}), list(config.get("agents", [])))
    )
    selection = "".join(
        f"<tr><th>{html.escape(key)}</th>{_cell(c.get('trials'))}{_cell(c.get('deflated_sharpe'))}{_cell(c.get('pbo'))}{_cell(len(c.get('promotions', [])))}</tr>"
        for key, c in summary["comparisons"].items()
    )
    pool = _pool_section(summary["comparisons"])
    definitions = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in summary.get("definitions", {}).items())
    title = f"Walk-forward {summary['name']}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}}
table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
th:first-child{{text-align:left}}td.na{{color:#999}}.chart svg{{max-width:100%;height:auto}}
dt{{font-weight:bold}}dd{{margin:0 0 .4em 1.5em}}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(", ".join(data["symbols"]))} {html.escape(data["timeframe"])}, {html.escape(data["first_bar"])} to {html.escape(data["last_bar"])}
({data["bars"]} bars) from {html.escape(data["directory"])}. Fees {config["fee_bps"]} bps, slippage {config["slippage_bps"]} bps,
decision window {config["window_days"]} days, methods {html.escape(", ".join(config["methods"]))}. Every figure is out of sample:
the weights trading a day were decided from the days before it.</p>
<h2>Results</h2><table><tr>{head}</tr>{rows}</table>
<h2>Adaptive vs equal weight</h2><ul>{comparisons or "<li>no adaptive method in this run</li>"}</ul>
<h2>Multiple testing</h2><table><tr><th>entry</th><th>trials</th><th>deflated Sharpe</th><th>PBO</th><th>promotions + retirements</th></tr>{selection}</table>
{pool}
{charts}
<h2>Data notes</h2><ul>{notes or "<li>none</li>"}</ul>
<h2>Skipped bars</h2><ul>{skipped or "<li>none</li>"}</ul>
<h2>Failed weight decisions</h2><ul>{failed or "<li>none</li>"}</ul>
<h2>Definitions</h2><dl>{definitions}</dl>
</body></html>
"""
