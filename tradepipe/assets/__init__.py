"""Software-defined assets: thin shells over tradepipe.core."""

import warnings

import dagster as dg

# Chosen deliberately and pinned by the lock file: one-day backfill policies (beta) and partitioned
# asset checks (preview, so that a check never loads every partition). Silenced before the asset
# modules are imported, since dagster warns when the decorators run.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
