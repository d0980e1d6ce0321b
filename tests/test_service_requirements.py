"""A missing service or the shared candles: skip on a laptop, fail in CI."""

from pathlib import Path

import pytest

from tests import conftest


def test_missing_shared_data_skips_on_a_laptop_and_fails_when_required(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEPIPE_TEST_SHARED_DATA", str(tmp_path / "nope"))
    monkeypatch.setattr(conftest, "REQUIRE_SERVICES", False)
    with pytest.raises(pytest.skip.Exception, match="shared candles not found"):
        conftest.shared_data_dir()
    monkeypatch.setattr(conftest, "REQUIRE_SERVICES", True)
    with pytest.raises(pytest.fail.Exception, match="TRADEPIPE_TEST_REQUIRE_SERVICES=1"):
        conftest.shared_data_dir()
    (tmp_path / "here" / "ohlcv").mkdir(parents=True)
    monkeypatch.setenv("TRADEPIPE_TEST_SHARED_DATA", str(tmp_path / "here"))
    assert conftest.shared_data_dir() == tmp_path / "here"
