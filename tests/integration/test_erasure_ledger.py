"""The erasure ledger (``infrastructure.ledger``, ``infrastructure.reconcile``): written
before an erasure commits, paired with its register, and made good again whenever a
store opens a register for the service."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import delete, insert

from domain.cases import EraseCase
from infrastructure import ledger as ledger_module
from infrastructure.keys import ApiKey, KeyStore
from infrastructure.ledger import ErasureLedger, LedgerRefused, ledger_url
from infrastructure.reconcile import adopt
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.integration.test_bulk import CAPTURED, person


@pytest.fixture
def admin(store: Store) -> ApiKey:
    return KeyStore(store.engine).create("admin", "admin", "org-a")[0]


def test_an_erasure_that_rolled_back_leaves_no_intent(
    store: Store, admin: ApiKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    [case_id] = store.register.open_cases([person(1, CAPTURED)], admin)

    def disk_fails(*args: object) -> None:
        raise OSError("the disk failed")

    monkeypatch.setattr(store.keyring, "destroy", disk_fails)
    with pytest.raises(OSError):
        store.register.erase_case(EraseCase(case_id, "a lawful request"), admin)
    monkeypatch.undo()
    assert store.ledger.entries() == []
    assert store.register.get_case(case_id).state().erased is None


def test_an_intent_left_by_a_killed_process_counts_as_done(
    store: Store, admin: ApiKey, settings: Settings
) -> None:
    """Killed at the commit, the process cannot say whether the erasure committed: the
    next store to open the register makes it, rather than risk undoing one."""
    [asked, other] = store.register.open_cases([person(1), person(2)], admin)
    with store.ledger.engine.begin() as conn:
        conn.execute(
            insert(ledger_module.entries).values(
                case_id=str(asked),
                key_ids=json.dumps([str(asked)]),
                intended_at=datetime.now(UTC),
                state="intended",
            )
        )
    opened = Store(settings)
    try:
        state = opened.register.get_case(asked).state()
        assert state.erased is not None and "erasure ledger" in state.erased["reason"]
        assert opened.register.get_case(other).state().erased is None
    finally:
        opened.close()


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_a_register_put_back_by_other_tools_is_erased_again_when_a_store_opens_it(
    store: Store, admin: ApiKey, settings: Settings
) -> None:
    """Not through ``casebook restore``: the database file copied back by hand (as a
    server's own backup tools would put it back), the copy made before an erasure that
    was itself made before the ledger existed (the ledger takes it in from the
    register when a store opens it)."""
    [case_id, other] = store.register.open_cases([person(1), person(2)], admin)
    store.close()
    db = settings.sqlite_path()
    copy = db.read_bytes()  # the service stopped: one file
    erasing = Store(settings)
    erasing.register.erase_case(EraseCase(case_id, "a lawful request"), admin)
    with erasing.ledger.engine.begin() as conn:  # as if erased before the ledger
        conn.execute(delete(ledger_module.entries))
    erasing.close()
    Store(settings).close()  # the first open since: the ledger takes the erasure in
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


def test_a_register_refuses_a_ledger_that_is_not_its_own_until_adopted(
    store: Store, admin: ApiKey, settings: Settings, tmp_path: Path
) -> None:
    [case_id] = store.register.open_cases([person(1)], admin)
    store.register.erase_case(EraseCase(case_id, "a lawful request"), admin)
    store.close()
    lost = settings.model_copy(update={"erasure_ledger_url": f"sqlite:///{tmp_path}/new.sqlite"})
    with pytest.raises(LedgerRefused, match="not this register's"):
        Store(lost)
    reader = Store(lost, require_current=False)  # a verifier still reads it
    try:
        assert adopt(reader, reader.ledger) == 1  # the register's own erasure taken in
    finally:
        reader.close()
    Store(lost).close()
    ledger = ErasureLedger(ledger_url(lost))
    try:
        assert [e.case_id for e in ledger.entries()] == [case_id]
    finally:
        ledger.close()


def test_the_ledger_cannot_be_the_registers_own_database(settings: Settings) -> None:
    same = settings.model_copy(update={"erasure_ledger_url": settings.url()})
    with pytest.raises(LedgerRefused, match="register's own database"):
        Store(same)


def test_a_restore_marked_unfinished_keeps_every_store_out(
    store: Store, settings: Settings
) -> None:
    with store.ledger.engine.begin() as conn:
        conn.execute(insert(ledger_module.facts).values(name="restoring", value="now"))
    with pytest.raises(LedgerRefused, match="restore of this register was not finished"):
        Store(settings)
    with store.ledger.engine.begin() as conn:
        conn.execute(delete(ledger_module.facts).where(ledger_module.facts.c.name == "restoring"))
    Store(settings).close()
