"""The report's charts, drawn with matplotlib from the document alone: SVG for the HTML file, PNG for email.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot, no global state, no display). Labels
that come from data (agent names) are passed with mathtext disabled-by-escaping, so a ``$`` in a name
is drawn as a dollar sign instead of being parsed as a formula.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any, Callable, Literal

import matplotlib

matplotlib.use("Agg")

from matplotlib.dates import AutoDateLocator, ConciseDateFormatter  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

Format = Literal["svg", "png"]
CHARTS = ("equity", "sharpe", "weights", "activity")
TITLES = {
    "equity": "Equity and drawdown (7 days)",
    "sharpe": "Agents ranked by Sharpe",
    "weights": "Agent weights over time",
    "activity": "Trading activity per hour (24 hours)",
}
_MARGINS = {
    "default": {"left": 0.09, "right": 0.98, "top": 0.90, "bottom": 0.16},
    "equity": {"left": 0.10, "right": 0.98, "top": 0.90, "bottom": 0.12, "hspace": 0.12},
    "sharpe": {"left": 0.24, "right": 0.98, "top": 0.90, "bottom": 0.16},
}
_RC = {"svg.fonttype": "path", "svg.hashsalt": "tradepipe", "font.size": 8, "axes.titlesize": 9}


def _label(text: object) -> str:
    return str(text).replace("$", r"\$")


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _dates(axis: Any) -> None:
    locator = AutoDateLocator()
    axis.xaxis.set_major_locator(locator)
    axis.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _empty(axis: Any, what: str) -> None:
    axis.text(0.5, 0.5, f"no {what} yet", ha="center", va="center", transform=axis.transAxes, color="#666666")
    axis.set_xticks([])
    axis.set_yticks([])


def equity_chart(figure: Figure, document: dict[str, Any]) -> None:
    points = document["charts"]["equity"]
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.set_title(TITLES["equity"])
    if not points:
        _empty(top, "equity snapshots")
        _empty(bottom, "drawdown")
        return
    times = [_time(p["t"]) for p in points]
    top.plot(times, [p["equity"] for p in points], color="#1f77b4", linewidth=1)
    top.set_ylabel(_label(document["report"]["quote_currency"]))
    top.grid(alpha=0.3)
    bottom.fill_between(times, [p["drawdown"] * 100 for p in points], 0, color="#d62728", alpha=0.5, linewidth=0)
    bottom.set_ylabel("drawdown %")
    bottom.grid(alpha=0.3)
    _dates(bottom)


def sharpe_chart(figure: Figure, document: dict[str, Any]) -> None:
    axis = figure.subplots()
    axis.set_title(TITLES["sharpe"])
    ranking = [r for r in document["agents"]["ranking"] if r["sharpe"] is not None]
    if not ranking:
        _empty(axis, "agent performance")
        return
    ranking = list(reversed(ranking))
    values = [r["sharpe"] for r in ranking]
    colors = ["#2ca02c" if v >= 0.5 else "#ff7f0e" if v >= 0 else "#d62728" for v in values]
    axis.barh([_label(r["agent"]) for r in ranking], values, color=colors)
    axis.axvline(0, color="#333333", linewidth=0.8)
    axis.set_xlabel("Sharpe (annualised)")
    axis.grid(axis="x", alpha=0.3)


def weights_chart(figure: Figure, document: dict[str, Any]) -> None:
    axis = figure.subplots()
    axis.set_title(TITLES["weights"])
    series = document["charts"]["weights"]
    current = document["weights"]["current"]
    if not series and not current:
        _empty(axis, "weights")
        return
    if not series:
        axis.barh([_label(a) for a in current], list(current.values()), color="#1f77b4")
        axis.set_xlabel("current weight (no change this week)")
        return
    # Each set holds until the next one, the last until the report's end: a step per decision.
    end = _time(document["report"]["window_end"])
    series = [*series, {"t": document["report"]["window_end"], "weights": series[-1]["weights"]}]
    times = [_time(p["t"]) for p in series]
    agents = sorted({a for p in series for a in p["weights"]})
    axis.set_xlim(min(times[0], end - timedelta(days=7)), end)  # type: ignore[arg-type]  # datetimes, as plotted
    axis.set_ylim(0, max(max(p["weights"].values(), default=0) for p in series) * 1.15 or 1)
    for agent in agents:
        # matplotlib's stubs leave out datetimes, which it plots natively.
        axis.step(times, [p["weights"].get(agent, 0.0) for p in series], where="post", label=_label(agent), linewidth=1.2)  # type: ignore[arg-type]
    axis.set_ylabel("weight")
    axis.grid(alpha=0.3)
    axis.legend(loc="upper left", fontsize=7, ncols=min(len(agents), 5))
    _dates(axis)


def activity_chart(figure: Figure, document: dict[str, Any]) -> None:
    axis = figure.subplots()
    axis.set_title(TITLES["activity"])
    hours = document["charts"]["activity"]
    if not hours:
        _empty(axis, "activity")
        return
    positions = range(len(hours))
    width = 0.28
    axis.bar([i - width for i in positions], [h["orders"] for h in hours], width, label="orders", color="#1f77b4")
    axis.bar(list(positions), [h["fills"] for h in hours], width, label="fills", color="#2ca02c")
    axis.bar([i + width for i in positions], [h["rejections"] for h in hours], width, label="rejections", color="#d62728")
    axis.set_xticks(list(positions)[::3], [h["t"][11:16] for h in hours][::3])
    axis.set_xlabel("hour (UTC)")
    axis.legend(fontsize=7)
    axis.grid(axis="y", alpha=0.3)


_DRAW: dict[str, Callable[[Figure, dict[str, Any]], None]] = {
    "equity": equity_chart,
    "sharpe": sharpe_chart,
    "weights": weights_chart,
    "activity": activity_chart,
}


def render_charts(document: dict[str, Any], fmt: Format) -> dict[str, bytes]:
    """Every chart of the report as ``fmt`` bytes, keyed by chart name (``CHARTS``)."""
    images = {}
    with matplotlib.rc_context(_RC):  # type: ignore[arg-type]
        for name in CHARTS:
            # Fixed margins instead of a layout engine: constrained layout measured every tick label
            # twice and cost a third of the rendering time.
            figure = Figure(figsize=(7.5, 3.2), dpi=100)
            figure.subplots_adjust(**_MARGINS.get(name, _MARGINS["default"]))
            _DRAW[name](figure, document)
            buffer = io.BytesIO()
            figure.savefig(buffer, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
            images[name] = buffer.getvalue()
    return images
