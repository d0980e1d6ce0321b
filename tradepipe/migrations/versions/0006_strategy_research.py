"""Strategy research: variant family, origin, metrics, DSR, PBO, trials, reason; variant events; model registry columns

Revision ID: 0006_strategy_research
Revises: 0005_one_live_weight_set
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa
import tradepipe.adapters.db.types


revision = "0006_strategy_research"
down_revision = '0005_one_live_weight_set'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("strategy_variants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("family", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("origin", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("generation", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("metrics", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("deflated_sharpe", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("pbo", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("trials", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("updated_at", tradepipe.adapters.db.types.UtcDateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint("uq_strategy_variants_name", ["name"])
    op.create_table(
        "strategy_variant_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("variant_id", sa.Integer(), sa.ForeignKey("strategy_variants.id"), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("at", tradepipe.adapters.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_strategy_variant_events_variant_id", "strategy_variant_events", ["variant_id"], unique=False)
    with op.batch_alter_table("ml_models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("features", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("hyperparameters", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("train_start", tradepipe.adapters.db.types.UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("train_end", tradepipe.adapters.db.types.UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("partition_key", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("status", sa.String(length=16), nullable=False, server_default="trained"))
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("ml_models", schema=None) as batch_op:
        for column in ("reason", "status", "sha256", "partition_key", "train_end", "train_start", "hyperparameters", "features", "kind"):
            batch_op.drop_column(column)
    op.drop_index("ix_strategy_variant_events_variant_id", table_name="strategy_variant_events")
    op.drop_table("strategy_variant_events")
    with op.batch_alter_table("strategy_variants", schema=None) as batch_op:
        batch_op.drop_constraint("uq_strategy_variants_name", type_="unique")
        for column in ("updated_at", "reason", "trials", "pbo", "deflated_sharpe", "metrics", "generation", "origin", "family"):
            batch_op.drop_column(column)
