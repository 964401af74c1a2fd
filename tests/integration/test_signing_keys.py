"""Rotating the checkpoint-signing key, on both stores: every checkpoint still verifies
with the key that was in force at its position, reached through the signed statements
from a key the auditor trusts; a forged statement, a retired key signing for a later
position, or a key no statement reaches, breaks verification at its position."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, insert, select, update

from infrastructure import rotation, tables
from infrastructure.auditing import AuditReads
from infrastructure.checkpoints import Checkpoint, Signer, StaleSigningKey
from infrastructure.exports import Export, verify_export
from infrastructure.keys import KeyStore
from infrastructure.settings import Settings
from infrastructure.signing import Announcement
from infrastructure.store import Store
from tests.book import Book as Casebook
from tests.conftest import populate, relink, seen
from tests.e2e.test_cli import run


def rotate_in_folder(store: Store, settings: Settings) -> Signer:
    """What `casebook signing-key rotate` does in development, in this process."""
    outgoing, incoming = Signer.from_settings(settings), rotation.make_next_key(settings)
    rotation.rotate(store, outgoing, incoming)
    rotation.install_next_key(settings, incoming)
    store.signer = Signer.from_settings(settings)
    return store.signer


@dataclass
class Rotated:
    casebook: Casebook
    settings: Settings
    signers: list[Signer]  # oldest first
    made: list[Checkpoint]  # one signed by each key, in turn

    @property
    def store(self) -> Store:
        return self.casebook.store


@pytest.fixture
def rotated(settings: Settings) -> Iterator[Rotated]:
    """Events, a checkpoint, a rotation, more events and a checkpoint, a second
    rotation, and again: three keys, each with a checkpoint of its own."""
    store = Store(settings)
    store.signer = Signer.from_settings(settings)
    worker = KeyStore(store.engine).create("worker-1", "case_worker", "org-a")[0]
    casebook = Casebook(store)
    signers, made = [store.signer], []
    for turn in range(3):
        populate(casebook, worker, 1, [seen(turn + 1)])
        made.append(store.checkpoint())
        if turn < 2:
            signers.append(rotate_in_folder(store, settings))
    yield Rotated(casebook, settings, signers, made)
    store.close()


def announcements(store: Store) -> list:
    with store.engine.connect() as conn:
        return conn.execute(select(tables.signing_keys).order_by("sequence")).all()


def test_after_two_rotations_every_checkpoint_verifies_with_the_key_of_its_time(
    rotated: Rotated,
) -> None:
    assert [cp.public_key for cp in rotated.made] == [s.public_key for s in rotated.signers]
    result = rotated.casebook.verify()
    assert (result.ok, result.checkpoints, result.keys) == (True, 3, 3), result.problem
    # The statements hand over at the head of their time: after the first two cases.
    assert [a.position for a in announcements(rotated.store)] == [2, 4]
    # An auditor who kept the first checkpoint, on a machine without the installation's
    # key, reaches the newest key from it; so does one who kept the first public key.
    verifier = Store(rotated.settings)
    try:
        alone = AuditReads(verifier)
        result = alone.verify([rotated.made[0]])
        assert (result.ok, result.checkpoints, result.keys) == (True, 4, 3), result.problem
        trusted = rotated.signers[0].public_key
        assert alone.verify(trusted=trusted).ok
        assert alone.verify([rotated.made[2]], trusted=rotated.signers[1].public_key).ok
    finally:
        verifier.close()


class Impostor:
    """Says it is one key, signs with another."""

    def __init__(self, claimed: Signer, actual: Signer):
        self.public_key, self._actual = claimed.public_key, actual

    def sign_bytes(self, data: bytes) -> bytes:
        return self._actual.sign_bytes(data)


def insert_announcement(store: Store, made: Announcement) -> None:
    with store.engine.begin() as conn:
        rotation._record(conn, made)


def forger(settings: Settings, name: str) -> Signer:
    return Signer.from_settings(Settings(data_dir=settings.data_dir / name))


def test_an_announcement_not_signed_by_the_key_before_it_fails_verification(
    rotated: Rotated,
) -> None:
    """Someone who can write to the database announces a key of their own."""
    store, newest = rotated.store, rotated.signers[-1]
    theirs, witness = forger(rotated.settings, "a"), forger(rotated.settings, "b")
    head = rotated.casebook.verify().head
    now = datetime.now(UTC).isoformat()
    # Claimed to come from the key in force, signed by another.
    claimed = Announcement.make(3, Impostor(newest, witness), theirs, 6, head, now)  # type: ignore[arg-type]
    insert_announcement(store, claimed)
    result = rotated.casebook.verify()
    assert (result.ok, result.broken_at) == (False, 6)
    assert f"announcement of signing key {theirs.key_id}" in (result.problem or "")
    assert "not signed by the key in force before it" in (result.problem or "")
    broken = run(rotated.settings, "verify", check=False)
    assert broken.returncode == 1 and "BROKEN at position 6" in broken.stdout
    # Signed by its own outgoing key, which was never in force.
    with store.engine.begin() as conn:
        conn.execute(delete(tables.signing_keys).where(tables.signing_keys.c.sequence == 3))
    insert_announcement(store, Announcement.make(3, witness, theirs, 6, head, now))
    result = rotated.casebook.verify()
    assert (result.ok, result.broken_at) == (False, 6)
    assert "was not in force before it" in (result.problem or "")


def test_an_announcement_altered_in_the_database_fails_verification(rotated: Rotated) -> None:
    store = rotated.store
    k = tables.signing_keys
    with store.engine.begin() as conn:
        statement = conn.execute(select(k.c.statement).where(k.c.sequence == 1)).scalar_one()
        moved = statement.replace('"position":2', '"position":1')
        conn.execute(update(k).where(k.c.sequence == 1).values(statement=moved))
    result = rotated.casebook.verify()
    assert (result.ok, result.broken_at) == (False, 1)
    assert "not signed by the key in force before it" in (result.problem or "")


def test_the_announcements_find_a_full_rewrite_of_the_chain_before_them(
    rotated: Rotated,
) -> None:
    """Each statement signs the chain's hash at its position, by two keys the rewriter
    does not hold: a consistent rewrite, stored checkpoints deleted, is still found."""
    store = rotated.store
    e, c = store.events_table, tables.chain
    with store.engine.begin() as conn:
        victim = conn.execute(select(e.c.id, e.c.state).where(e.c.id == 1)).one()
        altered = bytearray(victim.state)
        altered[-2] ^= 1
        conn.execute(update(e).where(e.c.id == 1).values(state=bytes(altered)))
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
    result = rotated.casebook.verify()
    assert (result.ok, result.broken_at) == (False, 2)
    assert "rewritten at or before position 2" in (result.problem or "")


def test_a_checkpoint_signed_by_a_key_not_in_force_at_its_position_fails(
    rotated: Rotated,
) -> None:
    """A retired key, leaked, cannot sign for the chain after its retirement."""
    store, (first, second, _) = rotated.store, rotated.signers
    head = rotated.casebook.verify().head
    late = first.sign(6, head)  # the first key was retired at position 2
    with store.engine.begin() as conn:
        conn.execute(insert(tables.checkpoints).values(**late.as_dict()))
    result = rotated.casebook.verify()
    assert (result.ok, result.broken_at) == (False, 6)
    assert f"signed with key {first.key_id}, which was not in force there" in (result.problem or "")
    assert "from 0 to 2" in (result.problem or "")
    # Nor a new key for the chain before it was announced.
    early = rotated.casebook.verify([second.sign(1, chain_hash(store, 1))])
    assert (early.ok, early.broken_at) == (False, 1) and "not in force" in (early.problem or "")


def chain_hash(store: Store, position: int) -> str:
    with store.engine.connect() as conn:
        c = tables.chain
        found: str = conn.execute(select(c.c.hash).where(c.c.position == position)).scalar_one()
        return found


def test_a_key_the_announcements_do_not_reach_fails(rotated: Rotated) -> None:
    stranger = forger(rotated.settings, "stranger")
    result = rotated.casebook.verify(trusted=stranger.public_key)
    assert (result.ok, result.broken_at) == (False, 2)
    assert "do not reach the key you trust" in (result.problem or "")
    # The newest statement deleted: the installation's key is reached no more.
    with rotated.store.engine.begin() as conn:
        conn.execute(delete(tables.signing_keys).where(tables.signing_keys.c.sequence == 2))
    cut = rotated.casebook.verify()
    assert not cut.ok and "do not reach the key you trust" in (cut.problem or "")


def test_only_the_key_in_force_signs_and_rotates(rotated: Rotated) -> None:
    store, (first, second, third) = rotated.store, rotated.signers
    store.signer = first
    with pytest.raises(StaleSigningKey, match=f"key id {third.key_id}"):
        store.checkpoint()
    with pytest.raises(StaleSigningKey):
        rotation.require_current(store.engine, second)
    rotation.require_current(store.engine, third)
    with pytest.raises(rotation.RotationRefused, match="not the one in force"):
        rotation.rotate(store, second, forger(rotated.settings, "next"))
    with pytest.raises(rotation.RotationRefused, match="signed for this register before"):
        rotation.rotate(store, third, first)
    assert len(announcements(store)) == 2  # nothing recorded


def test_an_export_verifies_from_a_kept_old_checkpoint_through_the_rotations(
    rotated: Rotated,
) -> None:
    raw = list(rotated.casebook.export(None))
    export = Export.read(raw)
    assert len(export.announcements) == 2 and export.checkpoint is not None
    assert export.checkpoint.public_key == rotated.signers[2].public_key
    result = verify_export(export, [rotated.made[0]])
    assert (result.ok, result.checkpoints, result.keys) == (True, 2, 3), result.problem
    assert verify_export(export, trusted=rotated.signers[0].public_key).ok
    # An announcement line altered in the file: its signatures no longer hold.
    tampered = [
        line.replace('\\"position\\":4', '\\"position\\":3') if '"signing_key"' in line else line
        for line in raw
    ]
    assert tampered != raw
    broken = verify_export(Export.read(tampered), [rotated.made[0]])
    assert (broken.ok, broken.broken_at) == (False, 3)
    assert "not signed by the key in force before it" in (broken.problem or "")


def test_a_register_from_before_rotations_verifies_and_rotates(settings: Settings) -> None:
    """Its one key, never announced, is the one its checkpoints were signed with: the
    first rotation hands over from it, and its checkpoint still verifies after."""
    from infrastructure import migrations
    from infrastructure.crypto import load_master_key
    from infrastructure.persistence import plain_engine
    from tests.integration.test_migrations import load_old_register, old

    settings = old(settings)
    load_old_register(settings)
    engine = plain_engine(settings)
    try:
        assert "0005" in migrations.upgrade(engine, lambda: load_master_key(settings))
    finally:
        engine.dispose()
    store = Store(settings)
    try:
        first = store.signer = Signer.from_settings(settings)
        (before,) = [cp for _, cp in checkpoints_of(store)]
        assert before.public_key == first.public_key
        second = rotate_in_folder(store, settings)
        after = store.checkpoint()
        result = Casebook(store).verify()
        assert (result.ok, result.checkpoints, result.keys) == (True, 2, 2), result.problem
        listed = AuditReads(store).keys()
        assert [k["public_key"] for k in listed] == [first.public_key, second.public_key]
        assert (listed[0]["first_checkpoint"], listed[1]["last_checkpoint"]) == (
            before.position,
            after.position,
        )
    finally:
        store.close()


def checkpoints_of(store: Store) -> list:
    from infrastructure import checkpoints

    with store.engine.connect() as conn:
        return checkpoints.listed(conn)
