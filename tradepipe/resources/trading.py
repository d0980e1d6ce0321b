"""[`trading`] The non-secret trading settings, as a resource the UI's Resources page lists field by field.

The fields mirror ``Settings`` (every field but the secrets), so a setting added to ``settings.py`` shows up
here without a second list to keep in step. ``settings()`` hands the assets back the typed ``Settings``.
"""

from __future__ import annotations

import types
import typing
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import dagster as dg
from pydantic import PrivateAttr

from tradepipe.config.settings import SECRET_FIELDS, Settings, settings_from_values

# Shown through environment variables (a URL may carry a password); the resources name the
# variable instead of the value when it is set (see ``_url`` in tradepipe/resources/__init__.py).
_AS_TEXT = (Path, Decimal, date)


def _config_type(annotation: Any) -> Any:
    """The Dagster-config type for a settings annotation: paths, decimals, dates and literals travel as text."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _config_type(members[0]) | None
    if origin is typing.Literal or annotation in _AS_TEXT:
        return str
    return annotation


def _config_value(value: Any) -> Any:
    if isinstance(value, _AS_TEXT):
        return str(value)
    return value


class _TradingConfigBase(dg.ConfigurableResource):
    _settings: Settings | None = PrivateAttr(default=None)

    @classmethod
    def from_settings(cls, settings: Settings, **shown_as: Any) -> "TradingConfigResource":
        """The resource for ``settings``; ``shown_as`` replaces a value by what the UI shows (e.g. an EnvVar)."""
        values = {name: _config_value(getattr(settings, name)) for name in _MIRRORED}
        return TradingConfigResource(**{**values, **shown_as})  # type: ignore[arg-type]

    def settings(self) -> Settings:
        """The typed settings these values describe (validated once; no environment is read)."""
        if self._settings is None:
            self._settings = settings_from_values(**{name: getattr(self, name) for name in _MIRRORED})
        return self._settings


_MIRRORED = tuple(name for name in Settings.model_fields if name not in SECRET_FIELDS)

if TYPE_CHECKING:

    class TradingConfigResource(_TradingConfigBase):
        def __getattr__(self, name: str) -> Any: ...

else:
    TradingConfigResource = type(
        "TradingConfigResource",
        (_TradingConfigBase,),
        {
            "__module__": __name__,
            "__doc__": "The non-secret trading settings (every TRADEPIPE_* setting but the secrets).",
            "__annotations__": {name: _config_type(Settings.model_fields[name].annotation) for name in _MIRRORED},
            **{name: _config_value(Settings.model_fields[name].get_default(call_default_factory=True)) for name in _MIRRORED},
        },
    )
