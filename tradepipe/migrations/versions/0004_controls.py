"""Trader controls: pause/resume entries, force-exit, reload weights, queued for the trading cycle to apply

Revision ID: 0004_controls
Revises: 11_reports
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa
import tradepipe.adapters.db.types


revision = "0004_controls"
down_revision = "11_reports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('control_commands',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('book', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=True),
    sa.Column('requested_by', sa.String(length=128), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.Text(), nullable=False),
    sa.Column('requested_at', tradepipe.adapters.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('applied_at', tradepipe.adapters.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('cycle_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['cycle_id'], ['trading_cycles.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('control_commands', schema=None) as batch_op:
        batch_op.create_index('ix_control_commands_book_status', ['book', 'status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('control_commands', schema=None) as batch_op:
        batch_op.drop_index('ix_control_commands_book_status')
    op.drop_table('control_commands')
