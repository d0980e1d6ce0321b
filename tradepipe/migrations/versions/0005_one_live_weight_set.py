"""One live weight set per book: a unique index over the live rows of weight_history

Two promotions at once could leave two live rows (or none). Before the index is created, a book
that already has several live rows keeps the most recently promoted one (highest id on a tie).

Revision ID: 0005_one_live_weight_set
Revises: 0004_controls
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa


revision = '0005_one_live_weight_set'
down_revision = '0004_controls'
branch_labels = None
depends_on = None

weight_history = sa.table(
    'weight_history',
    sa.column('id', sa.Integer()),
    sa.column('book', sa.String()),
    sa.column('is_live', sa.Boolean()),
    sa.column('promoted_at', sa.DateTime()),
)


def upgrade() -> None:
    bind = op.get_bind()
    live = bind.execute(
        sa.select(weight_history.c.id, weight_history.c.book, weight_history.c.promoted_at).where(weight_history.c.is_live == sa.true())
    ).all()
    keep: dict[str, tuple] = {}
    for row_id, book, promoted_at in live:
        rank = (promoted_at is not None, str(promoted_at or ''), row_id)
        if book not in keep or rank > keep[book][0]:
            keep[book] = (rank, row_id)
    demoted = [row_id for row_id, book, _ in live if keep[book][1] != row_id]
    if demoted:
        bind.execute(sa.update(weight_history).where(weight_history.c.id.in_(demoted)).values(is_live=False))
    with op.batch_alter_table('weight_history', schema=None) as batch_op:
        batch_op.create_index(
            'uq_weight_history_one_live', ['book'], unique=True,
            sqlite_where=sa.text('is_live'), postgresql_where=sa.text('is_live'),
        )


def downgrade() -> None:
    with op.batch_alter_table('weight_history', schema=None) as batch_op:
        batch_op.drop_index('uq_weight_history_one_live', sqlite_where=sa.text('is_live'), postgresql_where=sa.text('is_live'))
