"""PostgreSQL plans a list's page from its statistics of the tables. With none (a
register filled faster than autovacuum looks, or autovacuum off, as on the CI
machine), it guessed that an organisation sees a handful of cases and read every case
it sees to sort them. Each process therefore analyses the tables after it has written
enough (``persistence.PlannerStatistics``): after a bulk opening, a page of the list
walks the register in order and stops after a page."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy

from domain.cases import NewPerson, OpenCase
from domain.input import parse_opening
from infrastructure.cases import CaseReads
from infrastructure.keys import KeyStore
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.conftest import _empty_postgres
from tests.integration.test_query_plans import _Worker


@pytest.mark.postgres
def test_after_a_bulk_opening_a_page_is_planned_as_a_walk_in_order(
    pg_database: str, tmp_path: Path
) -> None:
    _empty_postgres(pg_database)
    engine = sqlalchemy.create_engine(pg_database, isolation_level="AUTOCOMMIT")
    store = Store(Settings(data_dir=tmp_path, database_url=pg_database))
    try:
        key = KeyStore(store.engine).create("worker-1", "case_worker", "org-a")[0]
        opening = {
            "category": "civilian_internee",
            "person": {"family_name": "Testyan", "nationality": "AM"},
            "source": {"kind": "family"},
        }
        person = NewPerson(OpenCase(*parse_opening(opening)), ())
        store.register.open_cases([person] * 1200, key)
        store.statistics.wait()  # it runs beside the write, which has answered
        page = CaseReads.page_query(CaseReads.list_query({}, None, _Worker()), 0, 50)
        compiled = page.compile(
            dialect=store.engine.dialect, compile_kwargs={"literal_binds": True}
        )
        with engine.connect() as conn:
            plan = [r[0] for r in conn.exec_driver_sql(f"EXPLAIN {compiled}")]
            analysed = conn.exec_driver_sql(
                "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'casebook_case_views'"
            ).scalar_one()
    finally:
        store.close()
        engine.dispose()
    # The page walks the views in log order and stops: no sort of every case seen.
    assert not any("Sort" in line for line in plan), "\n".join(plan)
    assert any("casebook_case_views_seq_key" in line for line in plan), "\n".join(plan)
    assert analysed is not None
