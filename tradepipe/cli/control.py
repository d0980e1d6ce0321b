"""``tradepipe control``: pause/resume new entries, force-exit, reload weights; list them; serve them over HTTP.

Every command is queued in the ledger with who asked and why; the trading cycle applies it on its next bar
inside its book-locked transaction (one writer). A book that is not running keeps it queued, and says so.
"""

from __future__ import annotations

import getpass
import json
import sys

import click

reason_option = click.option("--reason", required=True, help="Why (recorded in the ledger with the command).")
by_option = click.option("--by", "requested_by", default=None, help="Who asks (default: your login name).")
book_option = click.option("--book", default=None, help="Book to control (default: TRADEPIPE_BOOK).")


def _submit(action: str, symbol: str | None, reason: str, requested_by: str | None, book: str | None) -> None:
    from tradepipe.cli.context import command_settings, ledger_session_factory
    from tradepipe.core.controls import ControlInputError
    from tradepipe.trading.controls import submit_control

    settings = command_settings()
    try:
        queued = submit_control(
            settings, ledger_session_factory(settings), book=book or settings.book, action=action, symbol=symbol, reason=reason,
            requested_by=requested_by or f"{getpass.getuser()} (cli)", source="cli",
        )
    except ControlInputError as exc:
        click.echo(f"control refused: {exc}", err=True)
        sys.exit(2)
    click.echo(queued.message)


@click.group()
def control() -> None:
    """Control the running book: pause/resume new entries, force-exit, reload weights (applied by the cycle)."""


@control.command()
@reason_option
@by_option
@book_option
def pause(reason: str, requested_by: str | None, book: str | None) -> None:
    """Stop opening or growing positions (exits, stop-losses and reductions go on)."""
    _submit("pause", None, reason, requested_by, book)


@control.command()
@reason_option
@by_option
@book_option
def resume(reason: str, requested_by: str | None, book: str | None) -> None:
    """Allow new entries again."""
    _submit("resume", None, reason, requested_by, book)


@control.command()
@click.argument("symbol")
@reason_option
@by_option
@book_option
def forceexit(symbol: str, reason: str, requested_by: str | None, book: str | None) -> None:
    """Close SYMBOL (e.g. BTC/USDT) or all positions at the next bar, whatever the agents vote."""
    _submit("forceexit", symbol, reason, requested_by, book)


@control.command()
@reason_option
@by_option
@book_option
def reload(reason: str, requested_by: str | None, book: str | None) -> None:
    """Re-read the live weight set from the ledger at the next bar (over the Redis replica or cached file)."""
    _submit("reload", None, reason, requested_by, book)


@control.command("list")
@book_option
@click.option("--json", "as_json", is_flag=True, help="A JSON list, newest first.")
def list_controls(book: str | None, as_json: bool) -> None:
    """The book's last 20 commands: who asked, why, and what the cycle did with them."""
    from tradepipe.adapters.db.controls import paused_by, recent_controls
    from tradepipe.cli.context import command_settings, ledger_session_factory
    from tradepipe.trading.control_http import control_record

    settings = command_settings()
    name = book or settings.book
    with ledger_session_factory(settings)() as session:
        records = [control_record(r) for r in recent_controls(session, name)]
        paused = paused_by(session, name)
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    click.echo(f"controls — book {name!r}: entries " + (f"PAUSED {paused}" if paused else "open"))
    for r in records:
        target = f" {r['symbol']}" if r["symbol"] else ""
        click.echo(f"#{r['id']} {r['requested_at']} {r['action']}{target} [{r['status']}] by {r['requested_by']} via {r['source']}: {r['reason']}"
                   + (f" -> {r['outcome']}" if r["outcome"] else ""))


@control.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback unless you put a TLS proxy in front).")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
def serve(host: str, port: int) -> None:
    """Serve POST/GET /control over HTTP, behind the bearer token TRADEPIPE_CONTROL_TOKEN (off without it)."""
    from tradepipe.cli.context import command_settings, ledger_session_factory

    settings = command_settings()
    if settings.control_token is None or not settings.control_token.get_secret_value().strip():
        click.echo("control endpoint is off: set TRADEPIPE_CONTROL_TOKEN to a long random token to serve it", err=True)
        sys.exit(2)
    import uvicorn

    from tradepipe.trading.control_http import control_app

    app = control_app(settings, ledger_session_factory(settings), settings.control_token.get_secret_value())
    click.echo(f"control endpoint for book {settings.book!r} on http://{host}:{port}/control (bearer token required)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
