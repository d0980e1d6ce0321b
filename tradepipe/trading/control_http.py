"""The HTTP control endpoint (``tradepipe control serve``): a trader's phone or chat bot queues commands.

Off by default: it serves only when TRADEPIPE_CONTROL_TOKEN is set, and every request must carry it as
``Authorization: Bearer <token>`` (compared in constant time; never logged). Starlette and uvicorn are
already installed with dagster-webserver, so this adds no dependency.

- ``POST /control`` with JSON ``{"action": "pause"|"resume"|"forceexit"|"reload", "symbol": "BTC/USDT"|"all",
  "reason": "...", "requested_by": "..."}``: 202 and the queued command, or 400 and one line.
- ``GET /control``: the book's last 20 commands with their status and outcome.
"""

from __future__ import annotations

import hmac
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from tradepipe.config.settings import Settings
from tradepipe.core.timeframes import iso_utc


def control_app(settings: Settings, sessions: sessionmaker[Session], token: str) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from tradepipe.adapters.db.controls import recent_controls
    from tradepipe.core.controls import ControlInputError
    from tradepipe.trading.controls import submit_control

    expected = f"Bearer {token}".encode()

    def authorised(request: Request) -> bool:
        return hmac.compare_digest(request.headers.get("authorization", "").encode(), expected)

    async def post(request: Request) -> JSONResponse:
        if not authorised(request):
            return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": 'expected a JSON object such as {"action": "pause", "reason": "..."}'}, status_code=400)
        try:
            queued = submit_control(
                settings, sessions, book=settings.book, action=str(body.get("action") or ""), symbol=body.get("symbol"),
                reason=str(body.get("reason") or ""), requested_by=str(body.get("requested_by") or "http"), source="http",
            )
        except ControlInputError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"id": queued.id, "book": queued.book, "action": queued.action, "symbol": queued.symbol,
                             "running": queued.running, "message": queued.message}, status_code=202)

    async def get(request: Request) -> JSONResponse:
        if not authorised(request):
            return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401)
        with sessions() as session:
            rows = recent_controls(session, settings.book)
            listed = [control_record(r) for r in rows]
        return JSONResponse({"book": settings.book, "controls": listed})

    return Starlette(routes=[Route("/control", post, methods=["POST"]), Route("/control", get, methods=["GET"])])


def control_record(row: Any) -> dict[str, Any]:
    """One ``control_commands`` row as the CLI and the endpoint show it."""
    return {
        "id": row.id, "book": row.book, "action": row.action, "symbol": row.symbol, "status": row.status, "outcome": row.outcome,
        "requested_by": row.requested_by, "source": row.source, "reason": row.reason,
        "requested_at": iso_utc(row.requested_at), "applied_at": iso_utc(row.applied_at) if row.applied_at else None, "cycle_id": row.cycle_id,
    }
