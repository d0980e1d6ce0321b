"""[`weights_cache`] Redis: a replica of the live agent weights, and the fallback when the ledger cannot answer.

The ledger's live row is the record and is read on every cycle; the replica is used only when its
stored hash and weights match that row, or, with the ledger down, when it passes the same soundness
check. The resource keeps its key ``weights_cache`` so that existing run configurations still load.
"""

from __future__ import annotations

import dagster as dg


class WeightsReplicaResource(dg.ConfigurableResource):
    """Where the live weights are replicated (no URL: no replica, the ledger alone)."""

    redis_url: str | None = None
    """redis://host:6379/0; set through TRADEPIPE_REDIS_URL."""
