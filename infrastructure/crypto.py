"""Per-person encryption: each person's identifying data sealed with a key of their own.

Crypto-shredding reconciles an immutable log with erasure (domain.md, "Data
protection"). Every case has a data key (AES-256-GCM), made when the case is opened and
kept in ``casebook_person_keys``, outside the event log, wrapped (AES-256-GCM) by the
master key that the operator provides (``CASEBOOK_MASTER_KEY`` or
``CASEBOOK_MASTER_KEY_FILE``; production refuses to start without one). What is sealed
with it:

- in every case event, the identity (all but ``CLEAR_FIELDS``: nationality), the
  personal fields of the fact's data (``PERSONAL_DATA``: notes, causes, charges,
  reasons, purposes, a state of health) and the source's name and reference: they are
  taken out of the event's state and stored as one sealed blob, ``sealed``
  (``SealingMapper``); the rest of the event stays readable, so the case's
  non-personal history replays after an erasure;
- the case's status view (``seal_text``), unless the person was erased (then nothing
  personal is left in it);
- each name entry of a negotiation's list (its name and date of birth) with a key of
  the entry's own, made when the list is recorded: a list may name people the register
  does not hold, and an entry is tied to a case only by matching. Erasing a person
  destroys the keys of the entries tied to their case (matched or confirmed), and
  records ``NamesErased`` on each such negotiation.

Search needs no name in clear: the name index holds keyed hashes (HMAC-SHA-256 with the
register's name-index key) of the normalised name parts, and candidates are scored in
memory after their views are opened.

Erasing destroys the wrapped key (``destroy``) and records that it was done
(``casebook_erasures``); every sealed blob of that person is then noise. Each process
caches opened keys; it forgets them all whenever the newest erasure in the database
changes (``refresh``, called by the store at the start of every read and write and
before a replay), so an erasure in one process takes effect in the others on their
next request.

The wrapping key is derived from the master key with HKDF, and so is the master key's
check value, which says which master key this is: it is recorded on first start
(``casebook_master_check``), so a store opened with another master key refuses to
start, and its first 16 hex digits (``fingerprint``) are stored next to every key it
wraps (``wrapped_by``), so a master-key rotation (``infrastructure.rotation``) knows
which keys it has rewrapped. The name index's key and the request digests' key are
secrets of the register's own (``infrastructure.secrets``), wrapped by the master key
like the people's keys: a rotation rewraps them and leaves their values, so the name
index and the idempotency records stay good.

Each blob is bound to where it belongs (the case and version of an event, the case of a
view) as associated data, so a blob moved elsewhere does not open.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import threading
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from infrastructure import tables
from infrastructure.faults import StoreUnavailable
from infrastructure.inserts import insert_rows
from infrastructure.settings import Settings

log = logging.getLogger("casebook")

DEV_MASTER_KEY_FILE = "master.key"
SEALED_TEXT = "s1:"  # a sealed view starts so; a view in clear starts with "{"
NONCE = 12
CACHE_LIMIT = 100_000
FINGERPRINT = 16  # hex digits of the check value stored next to each wrapped key


class MissingMasterKey(Exception):
    """No usable master key: the service does not start."""


class MissingPersonKey(Exception):
    """A sealed record whose person has no key and was never erased: the store is
    damaged (or the master key is not the one the data was sealed with)."""


class NoKeyRow(MissingPersonKey):
    """No key was ever made for this id."""


class MasterKeyChanged(StoreUnavailable):
    """A key is wrapped by another master key than this process's: the master key is
    being rotated (or was), and this process must be restarted with the new one. Its
    writes are refused too (``Store.write``): nothing is sealed under the old key once
    a rotation has begun."""

    detail = (
        "the register's master key is being rotated (or was): the service must be "
        "restarted with the new key; nothing was recorded"
    )


def load_master_key(settings: Settings) -> bytes:
    """The operator's master key: 32 bytes, base64 in ``CASEBOOK_MASTER_KEY`` or in the
    file ``CASEBOOK_MASTER_KEY_FILE``. In development, a key file is made in the data
    folder on first use; in production, there must be one."""
    if settings.master_key is not None:
        return _decode_master(settings.master_key.get_secret_value(), "CASEBOOK_MASTER_KEY")
    path = settings.master_key_file
    if path is None:
        if settings.mode == "production":
            raise MissingMasterKey(
                "production mode needs CASEBOOK_MASTER_KEY or CASEBOOK_MASTER_KEY_FILE: "
                "32 random bytes, base64 (`casebook master-key` makes one)"
            )
        path = settings.data_dir / DEV_MASTER_KEY_FILE
        if not path.exists():
            _write_new_master(path)
            log.warning("development master key made at %s: keep it apart from the data", path)
    return read_master_key_file(path)


def new_master_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def read_master_key_file(path: Path) -> bytes:
    """A master key kept in a file (the new key of a rotation): 32 bytes, base64."""
    try:
        text = Path(path).read_text().strip()
    except OSError as e:
        raise MissingMasterKey(f"cannot read the master key file: {e.strerror}") from None
    return _decode_master(text, str(path))


def _decode_master(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise MissingMasterKey(f"{where}: the master key must be 32 bytes, base64")
    return key


def _write_new_master(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process made it first
    with os.fdopen(fd, "w") as f:
        f.write(new_master_key() + "\n")


class Keyring:
    """The people's data keys: made, opened (and cached), destroyed."""

    def __init__(self, master: bytes):
        # Derived from the master key: the key that wraps data keys and secrets, and the
        # check value that says which master key this is (one-way: it tells nothing of
        # the key), recorded on first start and, shortened, next to each wrapped key.
        self._master = AESGCM(_derive(master, b"casebook key wrap"))
        self.check_value = _derive(master, b"casebook master key check").hex()
        self.fingerprint = self.check_value[:FINGERPRINT]
        # The register's own secrets (``use_secrets``), read when the store opens.
        self._index_key: bytes | None = None
        self._digest_key: bytes | None = None
        self._cache: dict[UUID, AESGCM | None] = {}  # None: erased
        self._epoch: int | None = None
        self._generation = 0  # bumped when the cache is emptied
        self._lock = threading.Lock()
        # Told of the keys each write makes: the store keeps them on the write, to be
        # forgotten if it rolls back (``rolled_back``).
        self.made: Callable[[list[UUID]], None] | None = None
        self._destroyed = 0  # keys this process destroyed, committed or not (``mark``)
        # Where keys are read when not cached: set by the store (its write transaction
        # when one is open in this context, else a new connection).
        self.connection: Callable[[], AbstractContextManager[tuple[Connection, bool]]] | None = None

    # -- the register's secrets ----------------------------------------------------
    def use_secrets(self, index_key: bytes, digest_key: bytes) -> None:
        """The name index's key and the request digests' key, as the register keeps
        them (``infrastructure.secrets``)."""
        self._index_key, self._digest_key = index_key, digest_key

    def name_key(self, key: str) -> str:
        """A blocking key as the name index stores it: keyed, so not reversible by
        hashing a dictionary of names without the register's secret."""
        return hmac.new(_loaded(self._index_key), key.encode(), hashlib.sha256).hexdigest()[:32]

    def digest(self, text: str) -> str:
        """A keyed digest of a request (its idempotency record): 256 bits."""
        return hmac.new(_loaded(self._digest_key), text.encode(), hashlib.sha256).hexdigest()

    def wrap(self, aad: bytes, secret: bytes) -> bytes:
        """``secret`` (a data key, a secret of the register) wrapped by the master key,
        bound to ``aad`` (whose key it is)."""
        nonce = os.urandom(NONCE)
        return nonce + self._master.encrypt(nonce, secret, aad)

    def unwrap(self, aad: bytes, wrapped: bytes) -> bytes:
        """What ``wrap`` wrapped; ``InvalidTag`` for another master key or place."""
        wrapped = bytes(wrapped)
        return self._master.decrypt(wrapped[:NONCE], wrapped[NONCE:], aad)

    def still_current(self, check_value: str, rotating_to: str | None) -> None:
        """``MasterKeyChanged`` unless this is the register's master key and no rotation
        is under way (as a write reads them first, under the write lock): once a
        rotation has begun, nothing is sealed or wrapped under the old key."""
        if check_value != self.check_value or rotating_to is not None:
            raise MasterKeyChanged()

    # -- keys ------------------------------------------------------------------------
    def connect(
        self, on: Connection | None = None
    ) -> AbstractContextManager[tuple[Connection, bool]]:
        """``on`` if given (a read that holds one), else the write in progress in this
        context, else a new connection; and whether it is the write."""
        if on is not None:
            return nullcontext((on, False))
        if self.connection is None:
            raise RuntimeError("the keyring is not bound to a store")
        return self.connection()

    def refresh(self, conn: Connection) -> None:
        """Forget every cached key if anyone was erased since the last look (the newest
        erasure's id changed)."""
        self.refresh_to(conn.execute(select(func.max(tables.erasures.c.id))).scalar() or 0)

    def refresh_to(self, epoch: int) -> None:
        """``refresh``, with the newest erasure's id read by the caller."""
        if epoch != self._epoch:
            with self._lock:
                self._cache.clear()
                self._generation += 1
                self._epoch = epoch

    def forget(self) -> None:
        """Empty the cache of opened keys; each is read again when next needed. For work
        that opens every key once, such as the views rebuild, whose memory then stays
        flat however many people the register holds."""
        with self._lock:
            self._cache.clear()
            self._generation += 1

    def refresh_now(self) -> None:
        with self.connect() as (conn, _):
            self.refresh(conn)

    def mark(self) -> int:
        """Where a write starts: how many keys this process had destroyed then
        (``rolled_back`` says whether the write destroyed any)."""
        return self._destroyed

    def rolled_back(self, mark: int, made: Iterable[UUID]) -> bool:
        """The write begun at ``mark`` did not commit: forget the keys it made (``made``:
        they have no row). Returns whether it destroyed any key (then every aggregate
        replayed in it after that read as erased, and must not stay cached)."""
        with self._lock:
            for key_id in made:
                self._cache.pop(key_id, None)
        return self._destroyed != mark

    def create(self, key_ids: list[UUID], at: datetime) -> None:
        """New data keys, one per id (a case's, or a list entry's), in one statement of
        the write in progress."""
        rows, made = [], {}
        for key_id in key_ids:
            data_key = AESGCM.generate_key(bit_length=256)
            wrapped = self.wrap(wrap_aad(key_id), data_key)
            rows.append(
                {
                    "key_id": key_id,
                    "wrapped": wrapped,
                    "wrapped_by": self.fingerprint,
                    "created_at": at,
                }
            )
            made[key_id] = AESGCM(data_key)
        if not rows:
            return
        with self.connect() as (conn, in_write):
            if not in_write:
                raise RuntimeError("keys are made only inside Store.write()")
            insert_rows(conn, tables.person_keys, rows)
        if self.made is not None:
            self.made(key_ids)  # the write in progress keeps them, to forget on rollback
        with self._lock:
            for key_id, aes in made.items():
                self._remember(key_id, aes)

    def destroy(self, conn: Connection, key_id: UUID, at: datetime) -> None:
        """Destroy a key (the row keeps that it existed and when it went) and record
        the erasure, which makes every process forget its cached keys."""
        t = tables.person_keys
        conn.execute(
            update(t)
            .where(t.c.key_id == key_id)
            .values(wrapped=None, wrapped_by=None, erased_at=at)
        )
        conn.execute(insert(tables.erasures).values(key_id=key_id, erased_at=at))
        with self._lock:
            self._cache.pop(key_id, None)  # read again: from this transaction, or after it
            self._destroyed += 1

    def key(self, key_id: UUID) -> AESGCM | None:
        """The data key, or None once it was destroyed."""
        if key_id in self._cache:
            return self._cache[key_id]
        found = self.load([key_id])
        if key_id not in found:
            raise NoKeyRow(f"no data key for {key_id}")
        return found[key_id]

    def load(
        self, key_ids: Iterable[UUID], on: Connection | None = None
    ) -> dict[UUID, AESGCM | None]:
        """Read many keys at once (a page of a list, an exchange, a long list): on
        ``on`` if given (a read that holds one), else on the write in progress if there
        is one, else on a connection of the keyring's own."""
        missing = [k for k in key_ids if k not in self._cache]
        if not missing:
            return {}
        t, found = tables.person_keys, {}
        generation = self._generation
        with self.connect(on) as (conn, in_write):
            for i in range(0, len(missing), 500):
                rows = conn.execute(
                    select(t.c.key_id, t.c.wrapped, t.c.wrapped_by).where(
                        t.c.key_id.in_(missing[i : i + 500])
                    )
                )
                for key_id, wrapped, wrapped_by in rows:
                    if wrapped is not None and wrapped_by != self.fingerprint:
                        raise MasterKeyChanged()
                    found[key_id] = None if wrapped is None else self._unwrap(key_id, wrapped)
        with self._lock:
            # Read before another thread saw a new erasure and emptied the cache: the
            # keys may be stale, so they are used once and not cached.
            if generation == self._generation:
                for key_id, aes in found.items():
                    # A destroyed key read inside a write may yet be rolled back.
                    if aes is not None or not in_write:
                        self._remember(key_id, aes)
        return found

    def _unwrap(self, key_id: UUID, wrapped: bytes) -> AESGCM:
        try:
            data_key = self.unwrap(wrap_aad(key_id), wrapped)
        except InvalidTag:
            raise MissingPersonKey("a data key does not open with this master key") from None
        return AESGCM(data_key)

    def _remember(self, key_id: UUID, aes: AESGCM | None) -> None:
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[key_id] = aes

    # -- sealing -------------------------------------------------------------------
    def seal(self, case_id: UUID, aad: bytes, plaintext: bytes) -> bytes:
        try:
            aes = self.key(case_id)
        except NoKeyRow:
            # A case opened before per-person encryption (its earlier events are in
            # clear) gets its key when something of it is first sealed.
            self.create([case_id], datetime.now(UTC))
            aes = self.key(case_id)
        if aes is None:
            raise MissingPersonKey("the person was erased: nothing more is sealed for them")
        nonce = os.urandom(NONCE)
        return nonce + aes.encrypt(nonce, plaintext, aad)

    def open(self, case_id: UUID, aad: bytes, blob: bytes) -> bytes | None:
        """The plaintext, or None when the person was erased."""
        aes = self.key(case_id)
        if aes is None:
            return None
        try:
            return aes.decrypt(blob[:NONCE], blob[NONCE:], aad)
        except InvalidTag:
            raise MissingPersonKey(f"a sealed record of case {case_id} does not open") from None

    def seal_text(self, case_id: UUID, text: str) -> str:
        blob = self.seal(case_id, _view_aad(case_id), text.encode())
        return SEALED_TEXT + base64.b64encode(blob).decode()

    def open_text(self, case_id: UUID, text: str) -> str | None:
        """A view as stored: sealed, or in clear (an erased person's)."""
        if not text.startswith(SEALED_TEXT):
            return text
        plain = self.open(case_id, _view_aad(case_id), base64.b64decode(text[len(SEALED_TEXT) :]))
        return None if plain is None else plain.decode()


class NoKeys(Keyring):
    """A keyring that holds no key: what replaying an export offline has. Exports carry
    the stored bytes, personal parts sealed, and never a key; so an export leaks no
    person's data, and a copy taken before an erasure loses it with the key too."""

    def __init__(self) -> None:
        super().__init__(os.urandom(32))
        self.use_secrets(os.urandom(32), os.urandom(32))

    def key(self, key_id: UUID) -> AESGCM | None:
        return None

    def load(
        self, key_ids: Iterable[UUID], on: Connection | None = None
    ) -> dict[UUID, AESGCM | None]:
        return {}


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master)


def _loaded(secret: bytes | None) -> bytes:
    if secret is None:
        raise RuntimeError("the register's secrets are not loaded (Store opens them)")
    return secret


def wrap_aad(key_id: UUID) -> bytes:
    """Where a data key belongs, bound to its wrapped form: a wrapped key copied to
    another row does not open."""
    return b"casebook person key:" + key_id.bytes


def _view_aad(case_id: UUID) -> bytes:
    return b"casebook view:" + case_id.bytes
