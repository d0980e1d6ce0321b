"""Names that become paths: book names, walk-forward run names, chart and report file names.

A name is data, never a path: up to 64 of ``A-Z a-z 0-9 _ . -``, not starting with a dot (so neither
``..`` nor a hidden file), checked here once for every command and asset that builds a path from one.
Files tradepipe writes from a name land under ``TRADEPIPE_HOME``: ``path_under_home`` resolves the path
(links included) and refuses one that leaves it.
"""

from __future__ import annotations

import re
from pathlib import Path

NAME_MAX_LENGTH = 64
_NAME = re.compile(rf"^[A-Za-z0-9_-][A-Za-z0-9_.-]{{0,{NAME_MAX_LENGTH - 1}}}$")


class NameRefused(ValueError):
    """A name that cannot be used as one path component, or a path outside TRADEPIPE_HOME; one line."""


def check_name(name: str, what: str) -> str:
    """``name`` if it is a safe path component; ``NameRefused`` naming ``what`` (e.g. "book") otherwise."""
    if not _NAME.match(name):
        shown = name if len(name) <= 2 * NAME_MAX_LENGTH else name[: 2 * NAME_MAX_LENGTH] + "..."
        raise NameRefused(f"{what} {shown!r}: use 1 to {NAME_MAX_LENGTH} letters, digits, '_', '.' or '-', not starting with '.'")
    return name


def path_under_home(home: Path, *parts: str) -> Path:
    """``home/part/...`` resolved; ``NameRefused`` if it is not inside ``home`` (a link pointing out, say).

    The parts are fixed folder names or names already passed through ``check_name``."""
    root = Path(home).resolve()
    target = root.joinpath(*parts).resolve()
    if not target.is_relative_to(root):
        raise NameRefused(f"{target} is outside TRADEPIPE_HOME ({root}): nothing is written there")
    return target
