"""A views rebuild stopped part-way (its process killed, or an error) goes on where it
stopped when run again, takes in what was written meanwhile, and ends with the views a
whole rebuild makes; copies made by other code, or from another log, are thrown away,
and copies the register no longer matches are never swapped in; one rebuild runs at a
time; and the swapped-in tables keep their indexes (and, after ``casebook upgrade``,
their declared names), on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest
import sqlalchemy
from sqlalchemy import text, update

from bench.common import fact
from infrastructure import migrations
from infrastructure.rebuild import RebuildRefused, rebuild
from infrastructure.settings import Settings
from infrastructure.shadow import STATE, RebuildBusy, before_migrations
from infrastructure.store import Store
from tests.book import Book
from tests.e2e.test_cli import run
from tests.integration.rebuilding import (
    events_in,
    make_register,
    projected,
    small_batches,
    table_names,
)

pytestmark = pytest.mark.usefixtures("no_shadow_left")


@pytest.fixture
def whole(store: Store, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[tuple[object, ...]]]:
    """A register, in small batches; the views a whole rebuild makes of it."""
    small_batches(monkeypatch)
    store.test_register = make_register(store)  # type: ignore[attr-defined]
    rebuild(store)
    return projected(store)


class Stop(Exception):
    """The rebuild's process dies here."""


def stopping(step: str, at: int, then: Callable[[], None] | None = None) -> dict[str, object]:
    """A rebuild's callbacks that call ``then`` at its first report of the fill and stop
    it at its ``at``-th report of ``step``."""
    phases: list[str] = []
    reports: dict[str, int] = {}

    def progress(done: int, total: int) -> None:
        now = phases[-1].split(" ")[0]
        reports[now] = reports.get(now, 0) + 1
        if then is not None and now == "filling" and reports[now] == 1:
            then()
        if now == step and reports[now] == at:
            raise Stop

    return {"progress": progress, "phase": phases.append}


def first_report(store: Store) -> tuple[int, int]:
    """Rebuild; the first report it made (events already projected, of how many) and
    what it returned."""
    reports: list[int] = []
    count = rebuild(store, lambda done, total: reports.append(done))
    return reports[0], count


def shadow_state(store: Store, **values: object) -> None:
    """Change the state a stopped rebuild left."""
    state = (
        STATE
        if store.dialect == "sqlite"
        else STATE.to_metadata(sqlalchemy.MetaData(), schema="casebook_rebuild")
    )
    with store.engine.begin() as conn:
        conn.execute(update(state).values(**values))


def test_a_rebuild_stopped_while_filling_goes_on_from_where_it_stopped(store: Store, whole):
    tables_before = table_names(store)
    with pytest.raises(Stop):
        rebuild(store, **stopping("filling", 4))
    assert table_names(store) != tables_before  # the copies stay for the next run
    assert projected(store) == whole  # and the live views were not touched
    started_at, count = first_report(store)
    assert started_at > 0  # the batches filled before the stop are not made again
    assert count == events_in(store)
    assert projected(store) == whole
    assert table_names(store) == tables_before


def test_a_rebuild_stopped_while_catching_up_takes_in_what_was_written_meanwhile(
    store: Store, whole
) -> None:
    register = store.test_register  # type: ignore[attr-defined]
    book = Book(store)

    def write() -> None:
        for n, case_id in enumerate(register.cases[5:15]):
            book.record_fact(case_id, fact(n), register.worker)

    with pytest.raises(Stop):
        rebuild(store, **stopping("catching", 1, then=write))
    book.erase(register.cases[6], "request ref. DP-3", register.admin)  # filled already
    book.open_case(
        {
            "category": "missing_person",
            "person": {"family_name": "Latyan"},
            "source": {"kind": "ngo"},
        },
        register.worker,
    )
    started_at, count = first_report(store)
    assert started_at > 0 and count == events_in(store)
    online = projected(store)
    rebuild(store)
    assert projected(store) == online != whole


@pytest.mark.parametrize("made", ["by other code", "from another log"])
def test_copies_made_by_other_code_or_from_another_log_are_thrown_away(
    store: Store, whole, made: str
) -> None:
    with pytest.raises(Stop):
        rebuild(store, **stopping("filling", 4))
    shadow_state(
        store, **({"fingerprint": "0" * 64} if made == "by other code" else {"head_hash": "0" * 64})
    )
    started_at, _ = first_report(store)
    assert started_at == 0  # from scratch
    assert projected(store) == whole


def test_copies_are_not_swapped_in_when_the_schema_changed_under_the_rebuild(
    store: Store, whole
) -> None:
    version = f"UPDATE {migrations.VERSION_TABLE} SET version_num = :v"

    def migrate() -> None:  # as if `casebook upgrade` had run meanwhile
        with store.engine.begin() as conn:
            conn.execute(text(version), {"v": "0001"})

    try:
        with pytest.raises(RebuildRefused, match="not swapped in"):
            rebuild(store, **stopping("filling", 99, then=migrate))
        assert projected(store) == whole
    finally:
        with store.engine.begin() as conn:
            conn.execute(text(version), {"v": migrations.head()})


def test_one_rebuild_runs_at_a_time(store: Store, whole) -> None:
    refused: list[Exception] = []

    def progress(done: int, total: int) -> None:
        if not refused:
            with pytest.raises(RebuildBusy) as e:
                rebuild(store)
            refused.append(e.value)

    rebuild(store, progress)
    assert refused and projected(store) == whole


KILLED = """
import sys, time
from infrastructure import rebuild
from infrastructure.settings import Settings
from infrastructure.store import Store
rebuild.FILL_ROWS = 20
def progress(done, total):
    print("filled", done, flush=True)
    time.sleep(0.05)
rebuild.rebuild(Store(Settings()), progress)
"""


def test_a_rebuild_whose_process_is_killed_goes_on_when_run_again(
    settings: Settings, store: Store, whole
) -> None:
    env = {**os.environ, "CASEBOOK_DATA_DIR": str(settings.data_dir)}
    if settings.database_url:
        env["CASEBOOK_DATABASE_URL"] = settings.database_url
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED], env=env, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    reports = [child.stdout.readline() for _ in range(3)]
    child.kill()  # SIGKILL: no cleanup of any kind
    child.wait(30)
    assert all(r.startswith("filled") for r in reports), reports
    again = run(settings, "views", "rebuild")
    assert "resuming a rebuild" in again.stderr
    assert f"rebuilt the views from {events_in(store)} events" in again.stdout
    assert projected(store) == whole
    with pytest.raises(Stop):
        rebuild(store, **stopping("filling", 3))
    afresh = run(settings, "views", "rebuild", "--restart")
    assert "resuming" not in afresh.stderr and projected(store) == whole


def test_rebuilt_tables_keep_their_indexes_and_get_their_declared_names_back_for_migrations(
    settings: Settings, store: Store, whole, tmp_path
) -> None:
    from tests.integration.test_migrations import schema_of
    from tests.integration.test_query_plans import _full_scans, _hot_statements, _plan

    if settings.is_sqlite:  # the schema a new register gets: the declared names
        fresh = Store(Settings(data_dir=tmp_path / "fresh"))
        declared = schema_of(fresh.engine)
        fresh.close()
    else:  # names are per schema there: a rebuild never changes them
        declared = schema_of(store.engine)
    for _ in range(2):  # SQLite: once under the other names, once under the declared
        rebuild(store)
        scans = {
            name: found
            for name, (statement, params) in _hot_statements(store).items()
            if (found := _full_scans(store, _plan(store, statement, params)))
        }
        assert scans == {}
    # SQLite: three rebuilds so far, so the live indexes bear the other names, and
    # those of the copies a stopped rebuild leaves bear the declared ones.
    with pytest.raises(Stop):
        rebuild(store, **stopping("filling", 3))
    before_migrations(store.engine)  # what `casebook upgrade` does first
    assert schema_of(store.engine) == declared
    assert not any("rebuild" in t or "retired" in t for t in table_names(store))
    assert projected(store) == whole
