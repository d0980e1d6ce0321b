"""[`weights_cache`] Redis, where the live agent weights are published for fast reads (optional)."""

from __future__ import annotations

import dagster as dg


class WeightsCacheResource(dg.ConfigurableResource):
    """The database's live row is the record; this cache only makes it fast to read. No URL: no cache."""

    redis_url: str | None = None
    """redis://host:6379/0; set through TRADEPIPE_REDIS_URL."""
