"""Results tables of ``tradepipe backtest`` and ``walkforward``, saved as JSON; ``tradepipe results show|compare``.

Results are saved under TRADEPIPE_HOME/results/<kind>/<name>.json (kind ``backtest`` or ``walkforward``);
a walk-forward's are also in TRADEPIPE_HOME/walkforward/<name>/results.json, beside its summary.json. The units of the document are in :mod:`tradepipe.core.results` and docs/trader-guide.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import click

from tradepipe.core.formatting import money, percent

BREAKDOWN_KINDS = {"day": "daily", "week": "weekly", "month": "monthly"}
KINDS = ("backtest", "walkforward")
breakdown_option = click.option(
    "--breakdown", type=click.Choice(list(BREAKDOWN_KINDS)), default=None,
    help="Also show profit and return per UTC day, ISO week or month.",
)


def results_dir(home: Path) -> Path:
    return Path(home) / "results"


def save_results(home: Path, document: dict[str, Any]) -> Path:
    """Write the document atomically (a reader never sees half a file)."""
    target = results_dir(home) / document["kind"] / f"{document['name']}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(document, indent=2, allow_nan=False), encoding="utf-8")
    temporary.replace(target)
    return target


def _saved(home: Path, kind: str, name: str) -> list[Path]:
    """The saved document of ``kind``/``name``; for a walk-forward the newer of its copy under results/ and
    the results.json beside its summary.json (which every run writes, the Dagster asset's too)."""
    paths = [results_dir(home) / kind / f"{name}.json"]
    if kind == "walkforward" and name == Path(name).name and not name.startswith("."):
        paths.append(Path(home) / "walkforward" / name / "results.json")
    found = [path for path in paths if path.is_file()]
    return [max(found, key=lambda path: path.stat().st_mtime)] if found else []


def find_results(home: Path, name: str) -> Path:
    """``NAME`` or ``KIND/NAME``; one clear ``click.ClickException`` line when none or two match."""
    base = results_dir(home)
    if "/" in name:
        kind, _, short = name.partition("/")
        found = _saved(home, kind, short) if kind in KINDS else []
    else:
        found = [path for kind in KINDS for path in _saved(home, kind, name)]
    if not found:
        saved = sorted({f"{p.parent.name}/{p.stem}" for p in base.glob("*/*.json")}
                       | {f"walkforward/{p.parent.name}" for p in (Path(home) / "walkforward").glob("*/results.json")})
        raise click.ClickException(f"no saved results {name!r} in {base} (saved: {', '.join(saved) or 'none yet'})")
    if len(found) > 1:
        raise click.ClickException(f"{name!r} names both a backtest and a walk-forward: say backtest/{name} or walkforward/{name}")
    return found[0]


def load_results(home: Path, name: str) -> dict[str, Any]:
    path = find_results(home, name)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"{path} is not a results document: {exc}") from None
    if not isinstance(document, dict) or document.get("kind") not in KINDS:
        raise click.ClickException(f"{path} is not a results document (no 'kind' backtest or walkforward)")
    return document


def ledger_results(settings: Any, book: str, breakdown: str | None) -> dict[str, Any]:
    """The results document of a book, read from the rows the trading cycle wrote into the ledger."""
    from tradepipe.adapters.db.engine import session_factory
    from tradepipe.adapters.db.trades import book_header, load_book_trips, load_closing_orders, load_equity_curve
    from tradepipe.core.results import book_results
    from tradepipe.core.timeframes import periods_per_year

    with session_factory(settings.resolved_database_url)() as session:
        fills, trips, latest = load_book_trips(session, book)
        closing = load_closing_orders(session, book)
        curve = load_equity_curve(session, book)
        starting_cash, quote, timeframe = book_header(session, book)
    timeframe = timeframe or settings.resolved_timeframe
    return book_results(
        name=book, book=book, quote_currency=quote, timeframe=timeframe, periods_per_year=periods_per_year(timeframe),
        starting_cash=starting_cash, fills=fills, trips=trips, closing_orders=closing,
        curve=[(p.bar_ms, p.equity, p.positions_value) for p in curve], as_of_ms=latest.bar_ms if latest else 0,
        breakdown=BREAKDOWN_KINDS[breakdown] if breakdown else None,  # type: ignore[arg-type]
    )


# --- text tables ------------------------------------------------------------------------------


def _cell(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "money":
        return money(value)
    if kind == "pct":
        return percent(float(value) / 100)
    if kind == "ratio":
        return f"{value:.2f}"
    if kind == "duration":
        return human_duration(int(value * 1000))
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str]], gap: str = "  ") -> list[str]:
    """Aligned text rows: ``columns`` are (key, header, kind); kind ``text`` left-aligned, the others
    (numbers, and ``right``: a string already formatted) right-aligned."""
    cells = [[_cell(row.get(key), kind) for key, _, kind in columns] for row in rows]
    headers = [header for _, header, _ in columns]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lefts = [kind == "text" for _, _, kind in columns]

    def line(values: Sequence[str]) -> str:
        return gap.join(v.ljust(w) if left else v.rjust(w) for v, w, left in zip(values, widths, lefts, strict=True)).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(c) for c in cells)]


def human_duration(ms: int) -> str:
    """``3d 4h``, ``2h 15m``, ``45m``, ``30s``: the two largest units, as a trader reads a holding time."""
    seconds = max(int(ms), 0) // 1000
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")) if n]
    return " ".join(parts[:2]) or "0s"


PAIR_COLUMNS = (
    ("pair", "pair", "text"), ("trades", "trades", "int"), ("wins", "wins", "int"), ("draws", "draws", "int"),
    ("losses", "losses", "int"), ("win_rate_pct", "win %", "pct"), ("avg_duration_seconds", "avg duration", "duration"),
    ("profit_quote", "profit", "money"), ("profit_pct", "profit %", "pct"), ("fees_quote", "fees", "money"), ("open", "open", "int"),
)
SUMMARY_ROWS = (
    ("first_bar", "first bar", "text"), ("last_bar", "last bar", "text"), ("bars", "bars", "int"),
    ("starting_cash_quote", "starting cash", "money"), ("final_equity_quote", "final equity", "money"),
    ("profit_quote", "profit", "money"), ("total_return_pct", "total return", "pct"), ("cagr_pct", "CAGR", "pct"),
    ("sharpe", "Sharpe", "ratio"), ("sortino", "Sortino", "ratio"), ("calmar", "Calmar", "ratio"),
    ("max_drawdown_pct", "max drawdown", "pct"), ("peak", "drawdown peak", "text"), ("trough", "drawdown trough", "text"),
    ("recovered", "recovered", "text"), ("exposure_pct", "exposure", "pct"), ("turnover_per_year", "turnover / year", "ratio"),
    ("fees_quote", "fees", "money"), ("trades", "trades", "int"), ("win_rate_pct", "win rate", "pct"),
)
COMPARED = (
    ("total_return_pct", "return", "pct"), ("cagr_pct", "CAGR", "pct"), ("sharpe", "Sharpe", "ratio"), ("sortino", "Sortino", "ratio"),
    ("calmar", "Calmar", "ratio"), ("max_drawdown_pct", "max DD", "pct"), ("exposure_pct", "exposure", "pct"),
    ("turnover_per_year", "turnover/y", "ratio"), ("fees_quote", "fees", "money"), ("trades", "trades", "int"),
)


BREAKDOWN_COLUMNS = (("period", "period", "text"), ("equity_end_quote", "equity at end", "money"), ("profit_quote", "profit", "money"),
                     ("return_pct", "return", "pct"))
BREAKDOWN_TRADE_COLUMNS = (("trades", "trades closed", "int"), ("wins", "wins", "int"), ("closed_trades_profit_quote", "their profit", "money"))


def _breakdown_lines(breakdown: dict[str, Any], label: str = "") -> list[str]:
    kind = breakdown["kind"]
    note = " (trades counted on the day they close)"
    if isinstance(breakdown["rows"], dict):  # a walk-forward: per strategy (buy-and-hold has no trades)
        lines = []
        for key, rows in breakdown["rows"].items():
            traded = bool(rows) and "trades" in rows[0]
            columns = BREAKDOWN_COLUMNS + BREAKDOWN_TRADE_COLUMNS if traded else BREAKDOWN_COLUMNS
            lines += ["", f"{kind} breakdown — {key}{note if traded else ''}", *table(rows, columns)]
        return lines
    return ["", f"{kind} breakdown{label}{note}", *table(breakdown["rows"], BREAKDOWN_COLUMNS + BREAKDOWN_TRADE_COLUMNS)]


def _book_lines(pairs: Sequence[dict[str, Any]], exits: Sequence[dict[str, Any]], title: str = "") -> list[str]:
    return [f"{title}per pair (profit: realised P&L after fees; % of the starting cash)", *table(pairs, PAIR_COLUMNS), "",
            f"{title}exit reasons", *table(exits, (("exit_reason", "exit reason", "text"), *PAIR_COLUMNS[1:]))]


def _book_heading(key: str, summary: dict[str, Any]) -> list[str]:
    """Two lines of at most about 110 characters: the trades, then the deepest drawdown with its dates."""
    span = f": peak {summary['peak']}, trough {summary['trough']}, recovered {summary['recovered'] or 'not by the end'}" if summary.get("peak") else ""
    return [f"== {key}: {_cell(summary.get('trades'), 'int')} trades, win rate {_cell(summary.get('win_rate_pct'), 'pct')}, "
            f"exposure {_cell(summary.get('exposure_pct'), 'pct')}, fees {_cell(summary.get('fees_quote'), 'money')}",
            f"   max drawdown {_cell(summary.get('max_drawdown_pct'), 'pct')}{span}"]


def render_results(document: dict[str, Any]) -> list[str]:
    quote = document.get("quote_currency", "")
    if document["kind"] == "walkforward":
        strategies = document["strategies"]
        rows = [{"strategy": key, **figures} for key, figures in strategies.items()]
        lines = [f"walk-forward {document['name']!r} ({document['timeframe']} bars; money in {quote})",
                 *table(rows, [("strategy", "strategy", "text"), *COMPARED])]
        exits = document.get("exit_reasons") or {}
        for key, pairs in (document.get("pairs") or {}).items():  # null in documents saved before the engine kept fills
            lines += ["", *_book_heading(key, strategies[key])]
            traded = pairs[-1]["trades"] or pairs[-1]["open"]  # the TOTAL row
            lines += [*_book_lines(pairs, exits[key], f"{key} — ")] if traded else ["   no trades: no per-pair or exit-reason table"]
    else:
        summary = document["summary"]
        lines = [f"backtest {document['name']!r} — book {document['book']!r} ({document['timeframe']} bars; money in {quote})", "",
                 *_book_lines(document["pairs"], document["exit_reasons"]), "",
                 "summary", *(f"{header:<16} {_cell(summary.get(key), kind)}" for key, header, kind in SUMMARY_ROWS)]
        if summary.get("null_reasons"):
            lines.append("undefined: " + "; ".join(f"{k}: {v}" for k, v in sorted(summary["null_reasons"].items())))
    if document.get("breakdown"):
        lines += _breakdown_lines(document["breakdown"])
    return lines


def _summaries(document: dict[str, Any]) -> Iterable[tuple[str, dict[str, Any]]]:
    if document["kind"] == "walkforward":
        for key, figures in document["strategies"].items():
            yield f"{document['name']}:{key}", figures
    else:
        yield document["name"], document["summary"]


def compare_lines(first: dict[str, Any], second: dict[str, Any]) -> list[str]:
    rows = [{"run": label, **figures} for document in (first, second) for label, figures in _summaries(document)]
    return [f"results compared ({first['kind']} {first['name']!r} and {second['kind']} {second['name']!r})",
            *table(rows, [("run", "run", "text"), *COMPARED])]


@click.group()
def results() -> None:
    """Saved results of `tradepipe backtest` and `walkforward` (TRADEPIPE_HOME/results/)."""


@results.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the saved JSON document.")
def show(name: str, as_json: bool) -> None:
    """Tables of one saved run: NAME, or backtest/NAME or walkforward/NAME when both exist."""
    from tradepipe.cli.context import command_settings

    document = load_results(command_settings().home, name)
    click.echo(json.dumps(document, indent=2) if as_json else "\n".join(render_results(document)))


@results.command("compare")
@click.argument("first")
@click.argument("second")
@click.option("--json", "as_json", is_flag=True, help="Both summaries as JSON: {run: summary}.")
def compare(first: str, second: str, as_json: bool) -> None:
    """Two saved runs side by side (each strategy of a walk-forward is a row)."""
    from tradepipe.cli.context import command_settings

    home = command_settings().home
    documents = [load_results(home, first), load_results(home, second)]
    if as_json:
        click.echo(json.dumps(dict(pair for document in documents for pair in _summaries(document)), indent=2))
        return
    click.echo("\n".join(compare_lines(*documents)))
