"""An erasure reaches the name index's copies that a views rebuild left behind: a copy
being filled when the rebuild was killed (and never resumed), or the replaced table of a
swap whose drop was cut short. Those hold keyed hashes of people's names; an erased
person's must not outlive the erasure there either."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy
from sqlalchemy import func, select

from infrastructure import shadow, tables
from infrastructure.rebuild import rebuild
from infrastructure.store import Store
from tests.book import Book
from tests.integration.rebuilding import make_register, small_batches
from tests.integration.test_rebuild_resume import Stop, stopping

pytestmark = pytest.mark.usefixtures("no_shadow_left")


def name_keys_in(store: Store, case_id: uuid.UUID, where: str) -> int:
    """The person's rows in the live name index ("live"), its copy ("copy") or the
    table a swap replaced ("retired")."""
    live = tables.case_name_keys.name
    if store.dialect == "sqlite":
        name, schema = live + {"live": "", "copy": "__rebuild", "retired": "__retired"}[where], None
    else:
        name, schema = live, {"live": None, "copy": shadow.SCHEMA, "retired": shadow.RETIRED}[where]
    t = sqlalchemy.Table(
        name, sqlalchemy.MetaData(), sqlalchemy.Column("case_id", sqlalchemy.Uuid), schema=schema
    )
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(t.c.case_id == case_id)).scalar_one())


def test_an_erasure_reaches_the_copy_of_a_rebuild_killed_while_filling(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_batches(monkeypatch)
    register = make_register(store)
    with pytest.raises(Stop):
        rebuild(store, **stopping("filling", 3))
    person = next(c for c in register.cases[3:] if name_keys_in(store, c, "copy") > 0)
    Book(store).erase(person, "the person asked", register.admin)
    assert name_keys_in(store, person, "live") == 0
    assert name_keys_in(store, person, "copy") == 0
    rebuild(store)  # resumed: the person is erased in the rebuilt views too
    assert name_keys_in(store, person, "live") == 0


def test_an_erasure_reaches_the_table_a_swap_replaced_when_its_drop_was_cut_short(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_batches(monkeypatch)
    register = make_register(store)
    person = register.cases[11]

    retire, calls = shadow.Shadow.retire, []

    def killed_after_the_swap(self: shadow.Shadow) -> None:
        calls.append(self)
        if len(calls) == 2:  # the first clears what an earlier rebuild left
            raise Stop  # the process dies right after the swap committed
        retire(self)

    monkeypatch.setattr(shadow.Shadow, "retire", killed_after_the_swap)
    with pytest.raises(Stop):
        rebuild(store)
    assert name_keys_in(store, person, "retired") > 0
    Book(store).erase(person, "the person asked", register.admin)
    assert name_keys_in(store, person, "live") == 0
    assert name_keys_in(store, person, "retired") == 0
