"""The views rebuilt while the service goes on (issue 12, part 2), on SQLite and
PostgreSQL: a load of writes and reads beside the rebuild is never refused nor held up
for the length of it, and the rebuilt views are what a rebuild with nothing else going
on makes of the same log. Timings are the bench's (``python -m bench --only rebuild``);
here the load's writes give up after a second, as the service's would with a 503."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from infrastructure import tables
from infrastructure.rebuild import rebuild
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.integration.rebuilding import (
    Load,
    events_in,
    make_register,
    projected,
    small_batches,
    table_names,
)

pytestmark = pytest.mark.usefixtures("no_shadow_left")


def test_a_rebuild_leaves_the_rows_the_live_writes_left(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every projected table, the counts included: the fill (aggregates whole, many at
    once), the recount and the swap give what each write projected as it was made."""
    small_batches(monkeypatch)
    make_register(store)
    live = projected(store)
    with store.write() as unit:  # spoil the views to see the rebuild mend them
        unit.session.execute(tables.case_views.update().values(status="unknown"))
        for table in (tables.case_periods, tables.counts, tables.negotiation_cases):
            unit.session.execute(table.delete())
    assert projected(store) != live
    assert rebuild(store) == events_in(store)
    assert projected(store) == live


class Stalled(AssertionError):
    """The load made no progress while the rebuild went on: writers were stopped."""


def test_views_rebuilt_under_a_load_of_writes_and_reads_are_those_a_quiet_rebuild_makes(
    settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_batches(monkeypatch)
    register = make_register(store)
    tables_before, events_before = table_names(store), events_in(store)
    load = Load(settings, register, wait_ms=30_000)  # this test is about the rows
    phases: list[str] = []
    fill_reports = catch_up_reports = 0

    def progress(done: int, total: int) -> None:
        nonlocal fill_reports, catch_up_reports
        if phases[-1].startswith("filling"):
            fill_reports += 1
            if fill_reports == 2:  # erase someone the fill has not reached yet
                load.erase = max(register.cases[3:])
        elif phases[-1].startswith("catching up"):
            catch_up_reports += 1
            if catch_up_reports > 3:
                return
        else:
            return
        if not load.advance(3):
            raise Stalled(f"no write went through at {done} of {total} events")

    load.start()
    try:
        count = rebuild(store, progress, phase=phases.append)
    finally:
        load.stop()
    assert load.errors == []
    assert fill_reports >= 5 and catch_up_reports >= 1  # writes were made at every step
    online = projected(store)
    assert count > events_before  # the views hold what was written meanwhile
    assert table_names(store) == tables_before  # no copy or replaced table is left

    assert rebuild(store) == events_in(store)  # with nothing going on
    assert projected(store) == online


def test_writers_and_readers_go_on_through_a_rebuild_and_none_is_refused(
    settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between any two of the rebuild's transactions the load's writes go through (a
    rebuild that held the write lock throughout would stall them: the test fails at
    once), and none of them waits a second for the lock (it would be refused, a 503)."""
    small_batches(monkeypatch)
    register = make_register(store)
    load = Load(settings, register, wait_ms=1000)

    def progress(done: int, total: int) -> None:
        if not load.advance(1, timeout=10):
            raise Stalled(f"no write went through at {done} of {total} events")

    load.start()
    try:
        rebuild(store, progress)
        assert load.advance(3)  # and after the swap
    finally:
        load.stop()
    assert load.errors == []
    assert load.done > 10


def test_a_read_that_outlasts_the_swaps_wait_makes_it_try_again_not_fail(
    settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: a transaction reading a live view table holds it until it ends; the
    swap waits for it only half a second (writers wait meanwhile), then lets go, catches
    up and tries again. (SQLite's readers never hold up its swap.)"""
    if settings.is_sqlite:
        pytest.skip("on SQLite readers keep their snapshot and hold up no swap")
    small_batches(monkeypatch)
    make_register(store)
    reader = store.engine.connect()
    reader.execute(select(tables.case_views.c.case_id).limit(1)).all()  # holds it, open
    phases: list[str] = []

    def phase(name: str) -> None:
        phases.append(name)
        if name.startswith("swapping") and len(phases) > 1 and phases.count(name) == 2:
            reader.rollback()  # the long read ends while the swap waits to try again

    try:
        assert rebuild(store, phase=phase) == events_in(store)
    finally:
        reader.close()
    assert phases.count("swapping the new views in") == 2
