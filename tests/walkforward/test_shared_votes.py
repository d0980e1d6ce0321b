"""Books traded side by side reuse the votes one cycle cast (``CycleInputs.signals``): each book's
orders, fills and equity equal those of the same strategy traded alone, where its own cycle casts them.
Real candles with an hour ETH lacks and a NaN close in BTC, so the skip rules change the usable symbols."""

from __future__ import annotations

from pathlib import Path

from tradepipe.config.settings import load_settings
from tradepipe.research.data import load_market
from tradepipe.research.engine import config_from_settings, default_strategies, run_walk_forward
from tests.walkforward.conftest import write_slice


def _edit(name: str, lines: list[str]) -> list[str]:
    if name.startswith("ETH"):
        return lines[:700] + lines[701:]
    fields = lines[900].split(",")
    fields[5] = "nan"
    return lines[:900] + [",".join(fields)] + lines[901:]


def test_each_book_trades_as_it_does_alone(cdd_dir: Path, tmp_path: Path) -> None:
    candles = write_slice(cdd_dir, tmp_path / "cdd", 11_000, 1_500, _edit)  # 2018-12 .. 2019-02
    settings = load_settings(market_source="replay", replay_dir=candles, timeframe="1h", symbols="BTC/USDT,ETH/USDT")
    config = config_from_settings(settings)
    market = load_market(candles, config.symbols, "1h")
    strategies = default_strategies(config, ["hedge"])
    cycles: dict[str, list[tuple]] = {}

    def record(into: dict[str, list[tuple]]):
        def on_cycle(key, inputs, result) -> None:
            into.setdefault(key, []).append((
                inputs.bar_open_ms, [(s.agent, s.symbol, s.value, s.confidence, s.abstained) for s in result.signals],
                [(o.symbol, o.side, o.quantity, o.client_order_id) for o in result.plan.orders],
                [(f.fill.symbol, f.fill.quantity, f.fill.price, f.fill.fee) for f in result.fills],
                result.valuation.equity,
            ))
        return on_cycle

    together = run_walk_forward(market, config, strategies, on_cycle=record(cycles))
    assert set(cycles) == {spec.key for spec in strategies}
    traded = 0
    for spec in strategies:
        own: dict[str, list[tuple]] = {}
        alone = run_walk_forward(market, config, [spec], on_cycle=record(own))
        assert own[spec.key] == cycles[spec.key], spec.key
        assert alone.books[spec.key].equity == together.books[spec.key].equity
        assert alone.books[spec.key].fills == together.books[spec.key].fills
        traded += together.books[spec.key].fills
    assert traded > 100  # the books did trade
