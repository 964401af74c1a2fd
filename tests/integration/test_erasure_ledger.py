"""The erasure ledger's intents: written before an erasure commits, settled against
the register when a store opens (``infrastructure.ledger``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from domain.cases import EraseCase
from infrastructure import ledger as ledger_module
from infrastructure.keys import ApiKey, KeyStore
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.integration.test_bulk import CAPTURED, person


@pytest.fixture
def admin(store: Store) -> ApiKey:
    return KeyStore(store.engine).create("admin", "admin", "org-a")[0]


def _age(store: Store, hours: float, state: str) -> None:
    """Every ledger entry made ``hours`` ago, in ``state``: as a process killed between
    the erasure's commit and its mark would leave it."""
    with store.ledger.engine.begin() as conn:
        conn.execute(
            update(ledger_module.entries).values(
                state=state, intended_at=datetime.now(UTC) - timedelta(hours=hours)
            )
        )


def test_an_intent_whose_erasure_never_committed_is_dropped(
    store: Store, admin: ApiKey, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    [case_id] = store.register.open_cases([person(1, CAPTURED)], admin)

    def disk_fails(*args: object) -> None:
        raise OSError("the disk failed")

    monkeypatch.setattr(store.keyring, "destroy", disk_fails)
    with pytest.raises(OSError):
        store.register.erase_case(EraseCase(case_id, "a lawful request"), admin)
    monkeypatch.undo()
    [entry] = store.ledger.entries()
    assert (entry.case_id, entry.state) == (case_id, "intended")

    opened = Store(settings)  # a recent intent: its write may still be in progress
    opened.close()
    assert [e.state for e in store.ledger.entries()] == ["intended"]
    _age(store, 1, "intended")
    opened = Store(settings)
    try:
        assert opened.ledger.entries() == []
        assert opened.register.get_case(case_id).state().erased is None
    finally:
        opened.close()


def test_an_erasure_that_committed_before_its_mark_is_settled_as_done(
    store: Store, admin: ApiKey, settings: Settings
) -> None:
    [case_id, other] = store.register.open_cases([person(1), person(2)], admin)
    store.register.erase_case(EraseCase(case_id, "a lawful request"), admin)
    assert [(e.case_id, e.state) for e in store.ledger.entries()] == [(case_id, "done")]
    _age(store, 1, "intended")  # killed between the commit and the mark
    opened = Store(settings)
    try:
        assert [(e.case_id, e.state) for e in opened.ledger.entries()] == [(case_id, "done")]
        erased = [f for f in opened.register.get_case(case_id).facts if f.type == "erased"]
        assert len(erased) == 1  # settled, not made again
        assert opened.register.get_case(other).state().erased is None
    finally:
        opened.close()


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_a_register_put_back_by_other_tools_is_erased_again_when_a_store_opens_it(
    store: Store, admin: ApiKey, settings: Settings
) -> None:
    """Not through ``casebook restore``: the database file copied back by hand (as a
    server's own backup tools would put it back). The ledger is apart from it."""
    [case_id, other] = store.register.open_cases([person(1), person(2)], admin)
    store.close()
    db = settings.sqlite_path()
    copy = db.read_bytes()  # the service stopped: one file
    erasing = Store(settings)
    erasing.register.erase_case(EraseCase(case_id, "a lawful request"), admin)
    erasing.close()
    for leftover in (f"{db}-wal", f"{db}-shm"):
        Path(leftover).unlink(missing_ok=True)
    db.write_bytes(copy)
    check = Store(settings, require_current=False)  # a verifier: reads, changes nothing
    assert check.register.get_case(case_id).state().erased is None
    check.close()
    opened = Store(settings)
    try:
        state = opened.register.get_case(case_id).state()
        assert state.erased is not None and "erasure ledger" in state.erased["reason"]
        assert state.person.family_name is None
        assert opened.register.get_case(other).state().erased is None
    finally:
        opened.close()
