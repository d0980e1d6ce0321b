"""A fake binance spot on a real loopback HTTP server, with a chosen latency, for ccxt's real ``binance`` class.

ccxt builds, signs and sends every request over its own ``requests`` session to
``http://127.0.0.1:<port>/api/v3/...`` (the binance instance's testnet URLs point there, so the
broker's sandbox switch picks them up), and parses binance's JSON answers. The server checks each
request's API key header and HMAC signature, waits half the latency, acts on the order book-keeping
of :class:`tests.adapters.test_broker.FakeBinanceSpot` (one request at a time, as a matching engine
does), waits the other half and answers. It counts every order it *executes* by client order id:
binance keeps client ids unique among open orders only, so a market order that already filled does
not stop a second one with the same id, and the count is what a duplicate costs.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import ccxt

from tests.adapters.test_broker import API_KEY, ROUTES, SECRET, FakeBinanceSpot, Reject

TESTNET_HOST = "https://testnet.binance.vision"


class CountingSpot(FakeBinanceSpot):
    """:class:`FakeBinanceSpot` that remembers every execution (the model itself keeps the last order per id)."""

    def __init__(self) -> None:
        super().__init__()
        self.executions: Counter[str] = Counter()
        self.executed: list[dict[str, Any]] = []

    def _record(self, *args: Any) -> dict[str, Any]:
        order = super()._record(*args)
        if order["status"] != "NEW":
            self.executions[order["clientOrderId"]] += 1
            self.executed.append(dict(order))
        return order


class LoopbackBinance:
    """``with LoopbackBinance(latency_s) as server:``; ``server.exchange()`` is a ccxt binance aimed at it."""

    def __init__(self, latency_s: float, markets: tuple[dict[str, Any], dict[str, Any]]) -> None:
        self.latency_s = latency_s
        self.markets = markets
        self.model = CountingSpot()
        self.model.book = [(Decimal("8000.00"), Decimal("1000"))]  # deep: every order fills at once
        self.engine_lock = threading.Lock()
        self.bad_signatures = 0
        self.new_lookup = threading.Event()
        """Set when a look-up asks for a client order id never asked for before: a cycle is about to send a new order."""
        self._looked_up: set[str] = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's names
                self._answer("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._answer("POST")

            def do_DELETE(self) -> None:  # noqa: N802
                self._answer("DELETE")

            def _answer(self, method: str) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                signed = split.query if method != "POST" else body
                status, payload = server.handle(method, split.path, signed, self.headers.get("X-MBX-APIKEY"))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return None

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.http.server_address[1]}"
        self._thread = threading.Thread(target=self.http.serve_forever, daemon=True)

    def __enter__(self) -> LoopbackBinance:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.http.shutdown()
        self.http.server_close()

    def handle(self, method: str, path: str, signed: str, api_key: str | None) -> tuple[int, Any]:
        unsigned, _, signature = signed.rpartition("&signature=")
        if api_key != API_KEY or signature != hmac.new(SECRET.encode(), unsigned.encode(), hashlib.sha256).hexdigest():
            self.bad_signatures += 1
            return 401, {"code": -1022, "msg": "Signature for this request is not valid."}
        route = ROUTES.get((method, path.removeprefix("/api/v3/")))
        if route is None:
            return 404, {"code": -1000, "msg": f"no route {method} {path}"}
        params = dict(parse_qsl(signed))
        if (method, path) == ("GET", "/api/v3/order") and params.get("origClientOrderId") not in self._looked_up:
            self._looked_up.add(params.get("origClientOrderId", ""))
            self.new_lookup.set()
        time.sleep(self.latency_s / 2)  # on the way in
        try:
            with self.engine_lock:
                status, payload = 200, route[1](self.model, params)
        except Reject as reject:
            status, payload = 400, {"code": reject.code, "msg": reject.msg}
        time.sleep(self.latency_s / 2)  # on the way back
        return status, payload

    def exchange(self, timeout_s: float) -> ccxt.binance:
        """A real ccxt binance with the test keys and markets, whose testnet is this server."""
        instance = ccxt.binance(
            {"apiKey": API_KEY, "secret": SECRET, "timeout": int(timeout_s * 1000), "options": {"defaultType": "spot"}}
        )
        instance.set_markets(*copy.deepcopy(self.markets))
        instance.urls["test"] = {
            name: url.replace(TESTNET_HOST, self.base) if isinstance(url, str) else url for name, url in instance.urls["test"].items()
        }
        return instance
