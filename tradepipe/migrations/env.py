"""Alembic environment: one linear history, the same migrations on SQLite and PostgreSQL."""

from alembic import context

from tradepipe.adapters.db.engine import get_engine
from tradepipe.adapters.db.models import Base

config = context.config


def run_migrations() -> None:
    url = config.get_main_option("sqlalchemy.url")
    engine = get_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations()
