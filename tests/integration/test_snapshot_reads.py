"""PostgreSQL: a read that must see one state of the register (``Store.snapshot``: an
export, the report, a negotiation's lists) holds the projected tables from its start.
A views rebuild's swap replaces those tables; a snapshot taken before the swap and
first reading a table after it would read the new table as of the old snapshot, and
miss what the swap wrote (a share ended in its last catch-up, say). So the swap must
wait for such a read, and a read must wait for the swap."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy.exc import OperationalError

from infrastructure import tables
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.conftest import _empty_postgres


@pytest.mark.postgres
@pytest.mark.parametrize("table", [tables.case_access, tables.case_views, tables.counts])
def test_a_snapshot_read_holds_the_projected_tables_from_its_start(
    pg_database: str, tmp_path: Path, table: sqlalchemy.Table
) -> None:
    _empty_postgres(pg_database)
    engine = sqlalchemy.create_engine(pg_database, isolation_level="AUTOCOMMIT")
    store = Store(Settings(data_dir=tmp_path, database_url=pg_database))
    try:
        # The snapshot has read nothing of ``table`` yet.
        with (
            store.snapshot(),
            engine.connect() as swap,
            pytest.raises(OperationalError, match="lock"),
        ):
            swap.exec_driver_sql("SET lock_timeout = '200ms'")
            swap.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS casebook_elsewhere")
            swap.exec_driver_sql(f"ALTER TABLE {table.name} SET SCHEMA casebook_elsewhere")
        with engine.connect() as conn:  # the table stayed where it was
            conn.exec_driver_sql(f"SELECT count(*) FROM public.{table.name}")
    finally:
        store.close()
        engine.dispose()
