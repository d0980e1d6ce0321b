"""When the live weights count as stale (pure rule, no clock)."""

from tradepipe.sensors.alerts import stale_weights_reason

H = 3_600_000
NOW = 1_764_633_600_000


def test_a_recent_live_set_is_fresh_and_an_old_one_is_stale() -> None:
    assert stale_weights_reason(NOW, 36, NOW - 35 * H, NOW - 100 * H, "database") is None
    reason = stale_weights_reason(NOW, 36, NOW - 37 * H, NOW - 100 * H, "redis")
    assert reason is not None and "2025-11-30T11:00:00Z" in reason and "36 h" in reason


def test_static_defaults_are_stale_only_after_the_book_traded_that_long_on_them() -> None:
    assert stale_weights_reason(NOW, 36, None, NOW - 2 * H, "defaults") is None  # a fresh book: nothing decided yet
    assert "static defaults since" in (stale_weights_reason(NOW, 36, None, NOW - 40 * H, "defaults") or "")
    assert stale_weights_reason(NOW, 36, None, None, None) is None


def test_trading_on_the_last_known_file_is_stale_whatever_its_age() -> None:
    assert "last-known weights file" in (stale_weights_reason(NOW, 36, NOW - H, NOW - 2 * H, "last_known") or "")
