"""Alembic's environment for the register: migrations run on the connection the caller
opened (and locked), in its transaction, with the register's own version table."""

from __future__ import annotations

from alembic import context

from infrastructure.migrations import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, version_table=VERSION_TABLE, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
