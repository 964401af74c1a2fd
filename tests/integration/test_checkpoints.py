"""Signed checkpoints on both stores: made on demand and automatically, and a kept
checkpoint finds even a full, consistent rewrite of the chain."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from infrastructure import tables
from infrastructure.checkpoints import MissingSecret, Signer
from infrastructure.keys import KeyStore
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.book import Book as Casebook
from tests.conftest import populate, relink, seen


@pytest.fixture
def signed(settings: Settings):
    settings = settings.model_copy(update={"checkpoint_every": 5})
    store = Store(settings)
    store.signer = Signer.from_settings(settings)
    key = KeyStore(store.engine).create("worker-1", "case_worker", "org-a")[0]
    casebook = Casebook(store)
    populate(casebook, key, 3, [seen(1), seen(2), seen(3)])
    yield casebook
    store.close()


def stored(casebook: Casebook) -> list:
    with casebook.store.read() as conn:
        return conn.execute(select(tables.checkpoints).order_by(tables.checkpoints.c.id)).all()


def test_checkpoints_are_made_every_so_many_events_and_on_demand(signed: Casebook):
    assert [c.position for c in stored(signed)] == [5, 10]
    made = signed.store.checkpoint()
    assert made.position == 12 and made.signature_holds()
    assert made.head == signed.verify().head
    result = signed.verify()
    assert result.ok and result.checkpoints == 3


def test_a_kept_checkpoint_finds_a_full_consistent_rewrite(signed: Casebook):
    kept = signed.store.checkpoint()
    store = signed.store
    e, c = store.events_table, tables.chain
    with store.engine.begin() as conn:
        # Someone with write access to the database alters an early event, recomputes
        # every later link and the head, and removes the stored checkpoints.
        victim = conn.execute(select(e.c.id, e.c.state).where(e.c.id == 2)).one()
        conn.execute(
            update(e).where(e.c.id == 2).values(state=victim.state.replace(b"2021", b"2020"))
        )
        rows = conn.execute(
            select(c.c.position, e.c.originator_id, e.c.originator_version, e.c.topic, e.c.state)
            .join(e, e.c.id == c.c.notification_id)
            .order_by(c.c.position)
        ).all()
        hashes = relink(rows)
        for row, forged in zip(rows, hashes, strict=True):
            conn.execute(update(c).where(c.c.position == row.position).values(hash=forged))
        conn.execute(update(tables.register_head).values(chain_hash=hashes[-1]))
        conn.execute(delete(tables.checkpoints))
    assert signed.verify().ok  # consistent: the chain alone cannot tell
    found = signed.verify([kept])
    assert (found.ok, found.broken_at) == (False, kept.position)
    assert "rewritten" in (found.problem or "")


def test_a_checkpoint_signed_with_another_key_is_refused(signed: Casebook, tmp_path: Path):
    other = Signer.from_settings(Settings(data_dir=tmp_path / "elsewhere"))
    forged = other.sign(12, signed.verify().head)
    result = signed.verify([forged])
    assert not result.ok and "another key" in (result.problem or "")
    tampered = dataclasses.replace(signed.store.checkpoint(), position=11)
    assert "signature" in (signed.verify([tampered]).problem or "")


def test_production_mode_refuses_to_sign_without_an_operator_key(tmp_path: Path):
    with pytest.raises(MissingSecret):
        Signer.from_settings(Settings(data_dir=tmp_path, mode="production"))
    dev = Signer.from_settings(Settings(data_dir=tmp_path))
    key_file = tmp_path / "checkpoint-signing-key.pem"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    operator = Signer.from_settings(
        Settings(data_dir=tmp_path / "x", mode="production", signing_key_file=key_file)
    )
    assert operator.public_key == dev.public_key
