"""``GET /ready`` as a load balancer and an operator read it: 200 while the service can
serve; 503 with a problem naming what is missing when the register's schema needs an
upgrade, a migration's views rebuild is owed, the master key no longer opens the
register's keys, the chain's head cannot be read, or no signing key is loaded; 200
again once it is put right. Each is made to happen under a running service."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import delete, insert, select, update

from infrastructure import migrations, tables
from infrastructure.store import Store
from tests.conftest import Keys, new_case

Breakage = Callable[[Store], Iterator[None]]


@contextmanager
def schema_behind(store: Store) -> Iterator[None]:
    """As if the register were an older one (its version table one revision back)."""
    table = migrations.VERSION_TABLE
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE {table} SET version_num = '0003'")
    yield
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE {table} SET version_num = '{migrations.head()}'")


@contextmanager
def rebuild_owed(store: Store) -> Iterator[None]:
    """As if an upgrade had been killed between its migration and its rebuild."""
    with store.engine.begin() as conn:
        conn.execute(insert(tables.owed).values(what="views_rebuild", since=datetime.now(UTC)))
    yield
    with store.engine.begin() as conn:
        conn.execute(delete(tables.owed))


@contextmanager
def another_master_key(store: Store) -> Iterator[None]:
    """As if another process had rotated the master key under this one."""
    t = tables.master_check
    with store.engine.begin() as conn:
        kept = conn.execute(select(t.c.check_value)).scalar_one()
        conn.execute(update(t).values(check_value="0" * 64))
    yield
    with store.engine.begin() as conn:
        conn.execute(update(t).values(check_value=kept))


@contextmanager
def master_key_rotating(store: Store) -> Iterator[None]:
    """A master-key rotation begun by another process: every write is refused."""
    t = tables.master_check
    with store.engine.begin() as conn:
        conn.execute(update(t).values(rotating_to="0" * 64))
    yield
    with store.engine.begin() as conn:
        conn.execute(update(t).values(rotating_to=None))


@contextmanager
def signing_key_rotated(store: Store) -> Iterator[None]:
    """Another process rotated the signing key: this one's makes no more checkpoints."""
    from infrastructure.checkpoints import Signer
    from infrastructure.rotation import rotate

    assert store.signer is not None
    outgoing, incoming = store.signer, Signer(Ed25519PrivateKey.generate())
    rotate(store, outgoing, incoming)
    yield
    with store.engine.begin() as conn:  # for the test only: its own key in force again
        conn.execute(delete(tables.signing_keys))


@contextmanager
def head_unreadable(store: Store) -> Iterator[None]:
    """A head row that names a link the chain does not have."""
    t = tables.register_head
    with store.engine.begin() as conn:
        kept = conn.execute(select(t.c.chain_hash)).scalar_one()
        conn.execute(update(t).values(chain_hash="f" * 64))
    yield
    with store.engine.begin() as conn:
        conn.execute(update(t).values(chain_hash=kept))


@contextmanager
def no_signing_key(store: Store) -> Iterator[None]:
    signer, store.signer = store.signer, None
    yield
    store.signer = signer


@pytest.mark.parametrize(
    "breakage, what, says",
    [
        (schema_behind, "schema", "casebook upgrade"),
        (rebuild_owed, "views-rebuild", "casebook views rebuild"),
        (another_master_key, "master-key", "master key"),
        (master_key_rotating, "master-key", "rotation"),
        (signing_key_rotated, "signing-key", "in force"),
        (head_unreadable, "chain-head", "casebook verify"),
        (no_signing_key, "signing-key", "signing key"),
    ],
)
def test_ready_says_503_and_what_is_missing_then_200_once_it_is_put_right(
    client: TestClient, keys: Keys, breakage: Breakage, what: str, says: str
) -> None:
    new_case(client, keys.worker)  # a chain with a link in it
    client.app.state.readiness.check.ttl = 0  # each probe checks afresh
    assert client.get("/ready").json() == {"status": "ready"}
    store: Store = client.app.state.store
    with breakage(store):
        answer = client.get("/ready")
        assert answer.status_code == 503, answer.text
        problem: dict[str, Any] = answer.json()
        assert problem["type"].endswith("/not-ready") and problem["missing"] == [what]
        assert says in problem["detail"]
        assert answer.headers["Retry-After"] == "1"
        assert answer.headers["content-type"] == "application/problem+json"
    assert client.get("/ready").status_code == 200


def test_ready_needs_no_key_and_names_every_missing_thing_at_once(
    client: TestClient, keys: Keys
) -> None:
    new_case(client, keys.worker)
    client.app.state.readiness.check.ttl = 0
    store: Store = client.app.state.store
    with head_unreadable(store), no_signing_key(store):
        answer = client.get("/ready")
    assert answer.status_code == 503
    assert sorted(answer.json()["missing"]) == ["chain-head", "signing-key"]
