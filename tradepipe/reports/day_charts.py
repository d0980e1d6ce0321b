"""``tradepipe plot``: one self-contained HTML page per symbol and book, drawn with matplotlib.

The page is an inline SVG (no script, no stylesheet or font from the network) plus a table of the
round trips drawn. Panels, top to bottom: candles with every entry (triangle up for a long, down for
a short) and every exit (cross) of the book's round trips; each agent's vote (value x confidence) and
the ensemble's target position as a fraction of equity, recomputed from the stored votes and the
weights each cycle traded with; the book's equity. Every text that reaches the page is escaped.

matplotlib is imported inside :func:`render_chart_html`, so importing this module costs nothing.
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping, Sequence

from sqlalchemy.orm import Session

from tradepipe.adapters.db.ledger import datetime_to_ms
from tradepipe.adapters.db.trades import (
    ChartBar,
    ChartVote,
    load_book_trips,
    load_chart_bars,
    load_chart_votes,
    load_cycle_weights,
    load_snapshots,
)
from tradepipe.core.ensemble import combine, target_fraction
from tradepipe.core.trades import RoundTrip, SnapshotPoint, price_places
from tradepipe.core.types import Signal
from tradepipe.config.names import check_name, path_under_home
from tradepipe.config.settings import Settings
from tradepipe.core.formatting import money, price
from tradepipe.core.timeframes import iso_utc

ENTRY_MARKS_ID = "entry-marks"
EXIT_MARKS_ID = "exit-marks"


@dataclass(frozen=True)
class ChartData:
    symbol: str
    book: str
    market_source: str
    bars: Sequence[ChartBar]
    votes: Sequence[ChartVote]
    weights_by_bar: Mapping[int, Mapping[str, float]]
    trips: Sequence[RoundTrip]
    snapshots: Sequence[SnapshotPoint]
    price_places: int
    max_position_fraction: float
    allow_short: bool
    since_ms: int | None = None


def iso(ms: int) -> str:
    return iso_utc(ms, timespec="auto", suffix="+00:00")


def ensemble_targets(data: ChartData) -> dict[int, float]:
    """The target fraction of equity each cycle's ensemble asked for (the cycle's own rule)."""
    by_bar: dict[int, list[Signal]] = {}
    for vote in data.votes:
        by_bar.setdefault(vote.bar_ms, []).append(
            Signal(vote.agent, data.symbol, 0.0 if vote.abstained else vote.value, 0.0 if vote.abstained else vote.confidence, "", vote.abstained)
        )
    targets = {}
    for bar_ms, signals in sorted(by_bar.items()):
        score = combine(signals, data.weights_by_bar.get(bar_ms, {})).score
        targets[bar_ms] = target_fraction(score, data.max_position_fraction, allow_short=data.allow_short)
    return targets


def marked_trips(data: ChartData) -> tuple[list[RoundTrip], list[RoundTrip]]:
    """(entries, exits) drawn: trips of the symbol entered / exited at or after ``since``."""
    since = data.since_ms if data.since_ms is not None else -(2**62)
    mine = [t for t in data.trips if t.symbol == data.symbol]
    entries = [t for t in mine if t.entry_ms >= since]
    exits = [t for t in mine if t.exit_ms is not None and t.exit_ms >= since and t.exit_price is not None]
    return entries, exits


def render_chart_html(data: ChartData) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    def when(ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)

    entries, exits = marked_trips(data)
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "tradepipe", "axes.grid": True, "grid.alpha": 0.3}):
        fig, (price_ax, vote_ax, equity_ax) = plt.subplots(
            3, 1, figsize=(13, 9), sharex=True, gridspec_kw={"height_ratios": [3, 1.4, 1.2]}
        )
        try:
            _candles(price_ax, data.bars, when)
            _marks(price_ax, entries, exits, when)
            price_ax.set_ylabel(f"{data.symbol} price")
            price_ax.set_title(f"{data.symbol} - book {data.book} ({data.market_source})")
            _votes(vote_ax, data, when)
            points = [p for p in data.snapshots if data.since_ms is None or p.bar_ms >= data.since_ms]
            if points:
                equity_ax.plot([when(p.bar_ms) for p in points], [float(p.equity) for p in points], color="#1f4e79", lw=1.2)
            equity_ax.set_ylabel("book equity")
            equity_ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d %H:%M", tz=timezone.utc))
            equity_ax.set_xlabel("time (UTC)")
            fig.autofmt_xdate()
            fig.tight_layout()
            buffer = io.StringIO()
            fig.savefig(buffer, format="svg", metadata={"Date": None})
        finally:
            plt.close(fig)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]  # drop the XML prolog and DOCTYPE: the page is HTML
    return _page(data, svg, entries, exits)


def _candles(ax, bars: Sequence[ChartBar], when) -> None:  # type: ignore[no-untyped-def]
    if not bars:
        ax.text(0.5, 0.5, "no bars recorded for this symbol yet", transform=ax.transAxes, ha="center")
        return
    times = [when(b.bar_ms) for b in bars]
    width = ((bars[1].bar_ms - bars[0].bar_ms) if len(bars) > 1 else 60_000) / 86_400_000 * 0.7
    up = [b.close >= b.open for b in bars]
    colors = ["#2e7d32" if u else "#c62828" for u in up]
    ax.vlines(times, [b.low for b in bars], [b.high for b in bars], colors=colors, lw=0.6)
    ax.bar(times, [abs(b.close - b.open) or (b.high - b.low) * 0.01 for b in bars], width,
           bottom=[min(b.open, b.close) for b in bars], color=colors, lw=0)


def _marks(ax, entries: Sequence[RoundTrip], exits: Sequence[RoundTrip], when) -> None:  # type: ignore[no-untyped-def]
    if entries:
        ax.scatter(
            [when(t.entry_ms) for t in entries], [float(t.entry_price) for t in entries],
            marker="^", s=70, c=["#1565c0" if t.side == "long" else "#ef6c00" for t in entries],
            edgecolors="black", linewidths=0.5, zorder=5, label="entry (^ long, v short)", gid=ENTRY_MARKS_ID,
        ).set_paths([_marker_path("^" if t.side == "long" else "v") for t in entries])
    if exits:
        ax.scatter(
            [when(t.exit_ms) for t in exits if t.exit_ms is not None], [float(t.exit_price) for t in exits if t.exit_price is not None],
            marker="X", s=70, c="black", zorder=5, label="exit", gid=EXIT_MARKS_ID,
        )
    if entries or exits:
        ax.legend(loc="upper left", fontsize=8)


def _marker_path(marker: str):  # type: ignore[no-untyped-def]
    from matplotlib.markers import MarkerStyle

    style = MarkerStyle(marker)
    return style.get_path().transformed(style.get_transform())


def _votes(ax, data: ChartData, when) -> None:  # type: ignore[no-untyped-def]
    agents = sorted({v.agent for v in data.votes})
    for agent in agents:
        mine = [v for v in data.votes if v.agent == agent]
        ax.plot([when(v.bar_ms) for v in mine], [0.0 if v.abstained else v.value * v.confidence for v in mine], lw=0.8, label=agent)
    targets = ensemble_targets(data)
    if targets:
        scale = data.max_position_fraction or 1.0
        ax.step([when(ms) for ms in targets], [t / scale for t in targets.values()], where="post", color="black", lw=1.6,
                label=f"ensemble target (/ max position {data.max_position_fraction:.0%})")
    ax.set_ylim(-1.05, 1.05)
    ax.set_ylabel("vote / target")
    if agents or targets:
        ax.legend(loc="upper left", fontsize=7, ncol=3)


def _page(data: ChartData, svg: str, entries: Sequence[RoundTrip], exits: Sequence[RoundTrip]) -> str:
    rows = []
    for trip in sorted({id(t): t for t in [*entries, *exits]}.values(), key=lambda t: t.entry_ms):
        cells = [
            iso(trip.entry_ms), trip.side, price(trip.entry_price, data.price_places, grouping=False),
            iso(trip.exit_ms) if trip.exit_ms is not None else "open",
            price(trip.exit_price, data.price_places, grouping=False, missing=""),
            format(trip.quantity.normalize(), "f"), money(trip.pnl, missing=""), money(trip.fees, missing=""), ", ".join(trip.credited_agents),
        ]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    title = html.escape(f"tradepipe - {data.symbol} - book {data.book}")
    synthetic = " <strong>SYNTHETIC prices</strong>" if data.market_source == "synthetic" else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{title}</title>"
        "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;font-size:13px}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}</style></head><body>"
        f"<h1>{title}</h1><p>{len(data.bars)} bars, {len(entries)} entries, {len(exits)} exits; times UTC.{synthetic}</p>"
        f"{svg}"
        "<h2>Round trips drawn</h2><table><tr><th>entry time</th><th>side</th><th>entry price</th><th>exit time</th>"
        "<th>exit price</th><th>quantity</th><th>P&amp;L</th><th>fees</th><th>agents</th></tr>"
        + "".join(rows)
        + "</table></body></html>\n"
    )


def chart_path(home: Path, book: str, symbol: str, day: str) -> Path:
    """Where the day's chart of a symbol lives: TRADEPIPE_HOME/charts/<book>/<day>/<BASE-QUOTE>.html."""
    file_name = check_name(symbol.replace("/", "-") + ".html", "symbol")
    return path_under_home(home, "charts", check_name(book, "book"), check_name(day, "day"), file_name)


def write_chart(settings: Settings, session: Session, book: str, symbol: str, since: datetime | None, output: Path) -> Path:
    """Render the book's chart for ``symbol`` from ``since`` into ``output`` (HTML); return its absolute path."""
    fills, trips, _ = load_book_trips(session, book)
    data = ChartData(
        symbol=symbol,
        book=book,
        market_source=settings.market_source,
        bars=load_chart_bars(session, book, symbol, since),
        votes=load_chart_votes(session, book, symbol, since),
        weights_by_bar=load_cycle_weights(session, book, since),
        trips=trips,
        snapshots=load_snapshots(session, book, since),
        price_places=price_places(f.fill.price for f in fills if f.fill.symbol == symbol),
        max_position_fraction=settings.max_position_fraction,
        allow_short=settings.shorts_allowed,
        since_ms=datetime_to_ms(since) if since else None,
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_chart_html(data), encoding="utf-8")
    return output.resolve()

