"""Reports: report partition, HTML, files and delivery state; one suggestion row per recommendation key

Revision ID: 11_reports
Revises: 10_ledger_safety
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa
import tradepipe.adapters.db.types


# The revision id keeps its first name: existing ledgers store it in alembic_version.
revision = "11_reports"
down_revision = "10_ledger_safety"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("project_reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("partition_key", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("html", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("files", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("delivery", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.create_index("ix_project_reports_partition_key", ["partition_key"], unique=False)
    with op.batch_alter_table("improvement_suggestions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rule_key", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("evidence", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("times_seen", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("streak", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("last_seen_at", tradepipe.adapters.db.types.UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("updated_at", tradepipe.adapters.db.types.UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("task_id", sa.Integer(), nullable=True))
        batch_op.create_unique_constraint("uq_improvement_suggestions_rule_key", ["rule_key"])
        batch_op.create_foreign_key("fk_improvement_suggestions_task_id", "project_tasks", ["task_id"], ["id"])
    # The server defaults only fill existing rows; the models give every new row its value.
    with op.batch_alter_table("project_reports", schema=None) as batch_op:
        batch_op.alter_column("html", server_default=None)
        batch_op.alter_column("files", server_default=None)
        batch_op.alter_column("delivery", server_default=None)
    with op.batch_alter_table("improvement_suggestions", schema=None) as batch_op:
        batch_op.alter_column("evidence", server_default=None)
        batch_op.alter_column("times_seen", server_default=None)
        batch_op.alter_column("streak", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("improvement_suggestions", schema=None) as batch_op:
        batch_op.drop_constraint("fk_improvement_suggestions_task_id", type_="foreignkey")
        batch_op.drop_constraint("uq_improvement_suggestions_rule_key", type_="unique")
        for column in ("task_id", "updated_at", "last_seen_at", "streak", "times_seen", "evidence", "rule_key"):
            batch_op.drop_column(column)
    with op.batch_alter_table("project_reports", schema=None) as batch_op:
        batch_op.drop_index("ix_project_reports_partition_key")
        for column in ("delivery", "files", "html", "partition_key"):
            batch_op.drop_column(column)
