"""Shared fixtures: the stores every integration and e2e test runs on, keys, clients.

PostgreSQL: each test run makes its own database (``casebook_test_<random>``) and drops
it at the end, so runs never see each other's events; each test starts from empty
tables. Without a server the PostgreSQL tests skip with the reason printed, unless
``CASEBOOK_REQUIRE_POSTGRES=1`` (set by ``.ci/run``), which turns that into a failure.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy
from fastapi.testclient import TestClient

from api.app import create_app
from infrastructure.crypto import new_master_key
from infrastructure.keys import KeyStore
from infrastructure.ledger import PG_SUFFIX
from infrastructure.ledger import entries as ledger_entries
from infrastructure.ledger import facts as ledger_facts
from infrastructure.settings import Settings
from infrastructure.store import Store

PG_ADMIN_URL = os.environ.get(
    "CASEBOOK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_PG = os.environ.get("CASEBOOK_REQUIRE_POSTGRES") == "1"

# One master key for the run, inherited by the processes that tests start (writers on
# the same database must open each other's sealed data). tests/unit/test_crypto.py
# covers the key file that development mode makes when none is given.
os.environ.setdefault("CASEBOOK_MASTER_KEY", new_master_key())


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run; its URL."""
    admin = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"casebook_test_{secrets.token_hex(4)}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except sqlalchemy.exc.OperationalError as e:
        reason = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {str(e).splitlines()[0]}"
        if REQUIRE_PG:
            pytest.fail(reason + " (CASEBOOK_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{PG_SUFFIX} WITH (FORCE)")
    admin.dispose()


def _empty_postgres(url: str) -> None:
    """The run's database emptied, and the erasure ledger's beside it emptied of its
    entries and marks (each test's register is new, and pairs with the ledger when it
    first opens; the ledger's database is kept: making one costs a test a second)."""
    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
        name = url.rsplit("/", 1)[1]
        found = conn.exec_driver_sql(
            f"SELECT 1 FROM pg_database WHERE datname = '{name}{PG_SUFFIX}'"
        ).first()
    engine.dispose()
    if found is None:
        return
    ledger = sqlalchemy.create_engine(url + PG_SUFFIX)
    with ledger.begin() as conn:
        if sqlalchemy.inspect(conn).has_table(ledger_entries.name):
            conn.execute(sqlalchemy.delete(ledger_entries))
            conn.execute(sqlalchemy.delete(ledger_facts).where(ledger_facts.c.name != "ledger_id"))
    ledger.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings for an empty store: a SQLite file, or the run's PostgreSQL database."""
    if request.param == "sqlite":
        yield Settings(data_dir=tmp_path)
        return
    url = request.getfixturevalue("pg_database")
    _empty_postgres(url)
    yield Settings(data_dir=tmp_path, database_url=url)


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    s = Store(settings)
    yield s
    s.close()


@dataclass
class Keys:
    worker: dict[str, str]
    auditor: dict[str, str]
    admin: dict[str, str]
    worker_secret: str


@pytest.fixture
def keys(settings: Settings) -> Keys:
    store = Store(settings)
    try:
        ks = KeyStore(store.engine)
        _, worker = ks.create("worker-1", "case_worker", "org-a")
        _, auditor = ks.create("auditor-1", "auditor", "org-a")
        _, admin = ks.create("admin-1", "admin", "org-a")
    finally:
        store.close()
    return Keys(
        worker={"Authorization": f"Bearer {worker}"},
        auditor={"Authorization": f"Bearer {auditor}"},
        admin={"Authorization": f"Bearer {admin}"},
        worker_secret=worker,
    )


@pytest.fixture
def client(settings: Settings, keys: Keys) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


SOURCE = {"kind": "icrc", "name": "ICRC delegation", "reported_on": "2021-01-10"}


def new_case(client: TestClient, headers: dict[str, str], **person: str) -> dict:
    """Open a case for an invented person; return the case view."""
    body = {
        "category": "prisoner_of_war",
        "person": {"family_name": "Testyan", "given_names": "Aram", "nationality": "AM", **person},
        "source": {"kind": "family", "name": "a relative"},
    }
    response = client.post("/cases", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def record(client: TestClient, headers: dict[str, str], case_id: str, **fact: object):
    fact.setdefault("source", SOURCE)
    return client.post(f"/cases/{case_id}/events", json=fact, headers=headers)


def populate(casebook, key, cases: int, facts: list[dict]) -> list:
    """Open ``cases`` cases of invented people and record ``facts`` on each; their ids."""
    ids = []
    for n in range(cases):
        case = casebook.open_case(
            {
                "category": "detained_person",
                "person": {"family_name": f"Testyan{n}"},
                "source": {"kind": "ngo"},
            },
            key,
        )
        for fact in facts:
            casebook.record_fact(case.case_id, fact, key)
        ids.append(case.case_id)
    return ids


def seen(day: int) -> dict:
    return {"type": "seen", "occurred_on": f"2021-01-{day:02d}", "source": {"kind": "icrc"}}


def relink(rows) -> list[str]:
    """The chain's hashes recomputed over rows of (position, originator_id,
    originator_version, topic, state), as an auditor or a forger would."""
    from infrastructure.chain import GENESIS, link_hash

    hashes, previous = [], GENESIS
    for row in rows:
        previous = link_hash(
            previous,
            row.position,
            row.originator_id,
            row.originator_version,
            row.topic,
            bytes(row.state),
        )
        hashes.append(previous)
    return hashes
