"""Every trading cycle records the version of the weights it traded with

Revision ID: 10_ledger_safety
Revises: 0001
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa
import tradepipe.adapters.db.types


# The revision id keeps its first name: existing ledgers store it in alembic_version.
revision = '10_ledger_safety'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('trading_cycles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('weight_history_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('weights_published_at', tradepipe.adapters.db.types.UtcDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('trading_cycles', schema=None) as batch_op:
        batch_op.drop_column('weights_published_at')
        batch_op.drop_column('weight_history_id')
