"""The edge, tried as an attacker and as an unlucky operator would: each test here
reproduces a finding of the outside attack and fault test, on both stores where the
store matters, and checks what a client gets now."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import event

from api.app import create_app
from api.routers.cases import spooled
from api.writes import refuse_if_match
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.conftest import Keys, new_case, record
from tests.e2e.test_negotiations import exchange, handover, held, negotiation
from tests.e2e.test_organisations import other as other  # a fixture
from tests.e2e.test_read_audit import reads

pg_only = pytest.mark.parametrize(
    "settings", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
sqlite_only = pytest.mark.parametrize("settings", ["sqlite"], indirect=True)


def share(client: TestClient, keys: Keys, cid: str, **headers: str) -> Any:
    body = {"org": "org-b", "purpose": "tracing request"}
    return client.post(f"/cases/{cid}/shares", json=body, headers={**keys.worker, **headers})


# ---- idempotent retries are reads ---------------------------------------------------


def test_a_retry_after_the_share_ended_shows_nothing(
    client: TestClient, keys: Keys, other: dict[str, str]
) -> None:
    cid = held(client, keys, family_name="Testyan", given_names="Aram")["id"]
    assert share(client, keys, cid).status_code == 201
    note = {"type": "note", "text": "called the family", "source": {"kind": "ngo"}}
    retried = {**other, "Idempotency-Key": "k1"}
    first = client.post(f"/cases/{cid}/events", json=note, headers=retried)
    assert first.status_code == 201 and "Testyan" in first.text
    assert client.delete(f"/cases/{cid}/shares/org-b", headers=keys.worker).status_code == 200
    again = client.post(f"/cases/{cid}/events", json=note, headers=retried)
    assert again.status_code == 404 and "Testyan" not in again.text
    assert ("worker-b", "org-b", "POST /cases/{case_id}/events") not in reads(client, keys, cid)


def test_a_retry_is_recorded_as_a_read_and_refused_when_it_cannot_be(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    cid = new_case(client, keys.worker, family_name="Testyan")["id"]
    note = {"type": "note", "text": "x", "source": {"kind": "ngo"}}
    headers = {**keys.worker, "Idempotency-Key": "k2"}
    first = client.post(f"/cases/{cid}/events", json=note, headers=headers)
    assert reads(client, keys, cid) == []  # a write is in the log, not the read audit
    again = client.post(f"/cases/{cid}/events", json=note, headers=headers)
    assert again.status_code == 201 and again.json() == first.json()
    assert reads(client, keys, cid) == [("worker-1", "org-a", "POST /cases/{case_id}/events")]
    n = negotiation(client, keys)
    listed = {"submitted_by": "AM", "submitted_on": "2021-06-10", "entries": [{"case_id": cid}]}
    for _ in range(2):
        retried = {**keys.worker, "Idempotency-Key": "k3"}
        r = client.post(f"/negotiations/{n['id']}/lists", json=listed, headers=retried)
        assert r.status_code == 201
    assert reads(client, keys, cid)[-1] == (
        "worker-1",
        "org-a",
        "POST /negotiations/{negotiation_id}/lists",
    )
    drop_table(settings, "casebook_access_log")
    refused = client.post(f"/cases/{cid}/events", json=note, headers=headers)
    assert refused.status_code == 503 and refused.json()["type"].endswith("read-not-recorded")
    assert "Testyan" not in refused.text and refused.headers["Retry-After"] == "1"
    # the read audit's own list says it is unavailable, not that it broke
    r = client.get("/audit/access", params={"case_id": cid}, headers=keys.auditor)
    assert r.status_code == 503 and r.headers["Retry-After"] == "1"


def drop_table(settings: Settings, name: str) -> None:
    engine = sqlalchemy.create_engine(settings.url())
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE {name}")
    engine.dispose()


# ---- storage faults ----------------------------------------------------------------


@contextmanager
def on_every_connection(engine: sqlalchemy.Engine, statement: str) -> Iterator[None]:
    """Run ``statement`` on every new connection of ``engine`` (the pool is emptied
    first, and again afterwards)."""

    def on_connect(dbapi_connection: Any, _: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(statement)
        cursor.close()
        if engine.dialect.name == "postgresql":
            dbapi_connection.commit()

    event.listen(engine, "connect", on_connect)
    engine.dispose()
    try:
        yield
    finally:
        event.remove(engine, "connect", on_connect)
        engine.dispose()


def versions(settings: Settings, cid: str) -> int:
    store = Store(settings)
    try:
        return len(store.register.get_case(uuid.UUID(cid)).facts)
    finally:
        store.close()


def test_a_read_only_store_answers_503_with_retry_after_and_writes_nothing(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    cid = new_case(client, keys.worker)["id"]
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    read_only = (
        "PRAGMA query_only = ON"
        if store.dialect == "sqlite"
        else "SET default_transaction_read_only = on"
    )
    with on_every_connection(store.engine, read_only):
        r = record(client, keys.worker, cid, type="note", text="x")
        assert r.status_code == 503, r.text
        assert r.json()["type"] == "/problems/store-unavailable"
        assert r.headers["Retry-After"] == "1"
        ready = client.get("/ready")  # a load balancer takes the instance out
        assert ready.status_code == 503 and "refuses writes" in ready.json()["detail"]
    assert versions(settings, cid) == 1
    assert client.get("/audit/verify", headers=keys.auditor).json()["ok"] is True
    assert record(client, keys.worker, cid, type="note", text="x").status_code == 201


@sqlite_only
def test_a_full_disk_answers_507_and_writes_nothing(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    """On SQLite, whose own file-size limit gives the error a full disk gives; the
    PostgreSQL error (SQLSTATE 53100) is classified the same way (tests/unit)."""
    cid = new_case(client, keys.worker)["id"]
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    with store.engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
    with on_every_connection(store.engine, f"PRAGMA max_page_count = {pages}"):
        r = record(client, keys.worker, cid, type="note", text="x" * 4000)
        assert r.status_code == 507, r.text
        assert r.json()["type"] == "/problems/storage-full"
        assert r.headers["Retry-After"] == "1"
    assert versions(settings, cid) == 1
    assert client.get("/audit/verify", headers=keys.auditor).json()["ok"] is True
    assert record(client, keys.worker, cid, type="note", text="x").status_code == 201


@pg_only
def test_terminated_database_connections_cost_a_reconnect_not_an_error(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    cid = new_case(client, keys.worker)["id"]
    assert client.get(f"/cases/{cid}", headers=keys.worker).status_code == 200
    admin = sqlalchemy.create_engine(settings.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        killed = conn.exec_driver_sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).scalar_one()
    admin.dispose()
    assert killed >= 1  # the service's pooled connections
    assert client.get(f"/cases/{cid}", headers=keys.worker).status_code == 200
    assert record(client, keys.worker, cid, type="note", text="x").status_code == 201
    assert client.get("/cases", headers=keys.worker).status_code == 200


# ---- the read audit never holds a worker thread for long ---------------------------


@pytest.mark.timeout(30)
def test_a_lock_on_the_read_audit_refuses_reads_quickly_and_writes_go_on(
    settings: Settings, keys: Keys
) -> None:
    # Long waits everywhere else: only the read audit's own short wait can answer.
    patient = settings.model_copy(
        update={
            "read_audit_wait_ms": 300,
            "pg_lock_timeout_ms": 120_000,
            "sqlite_busy_timeout_ms": 120_000,
        }
    )
    with TestClient(create_app(patient)) as client:
        cid = new_case(client, keys.worker)["id"]
        with held_lock(patient):
            r = client.get(f"/cases/{cid}", headers=keys.worker)
            assert r.status_code == 503 and r.json()["type"].endswith("read-not-recorded")
            if not patient.is_sqlite:  # SQLite has one write lock for everything
                assert record(client, keys.worker, cid, type="note", text="x").status_code == 201
        assert client.get(f"/cases/{cid}", headers=keys.worker).status_code == 200


@contextmanager
def held_lock(settings: Settings) -> Iterator[None]:
    """Another session holding the read audit's table (PostgreSQL) or the database's
    write lock (SQLite), until the block ends."""
    if settings.is_sqlite:
        conn = sqlite3.connect(settings.url().removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    engine = sqlalchemy.create_engine(settings.url())
    with engine.connect() as conn:
        conn.exec_driver_sql("LOCK TABLE casebook_access_log IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            conn.rollback()
    engine.dispose()


# ---- time parameters, If-Match, negotiation ids ------------------------------------


def test_time_parameters_out_of_range_are_refused_on_every_route(
    client: TestClient, keys: Keys
) -> None:
    cid = held(client, keys)["id"]
    nid = negotiation(client, keys)["id"]
    for path in (f"/cases/{cid}", "/cases", "/reports/summary", f"/negotiations/{nid}"):
        for instant in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
            r = client.get(path, params={"known_at": instant}, headers=keys.worker)
            assert r.status_code == 422, (path, instant, r.text)
            assert r.json()["errors"][0]["field"] == "known_at"
        for day in ("0001-01-01", "9999-12-31"):
            r = client.get(path, params={"as_of": day}, headers=keys.worker)
            assert r.status_code in (200, 404), (path, day, r.text)  # 404: not known then


def test_a_stale_if_match_writes_nothing_on_shares_and_matches(
    client: TestClient, keys: Keys, other: dict[str, str]
) -> None:
    case = held(client, keys, family_name="Testyan", given_names="Aram")
    cid, version = case["id"], case["version"]
    stale = {"If-Match": f'"{version - 1}"'}
    r = share(client, keys, cid, **stale)
    assert r.status_code == 409 and r.json()["current_version"] == version
    r = share(client, keys, cid, **{"If-Match": f'"{version}"'})
    assert r.status_code == 201 and r.headers["ETag"] == f'"{version + 1}"'
    r = client.delete(f"/cases/{cid}/shares/org-b", headers={**keys.worker, **stale})
    assert r.status_code == 409
    assert client.get(f"/cases/{cid}", headers=other).status_code == 200  # still shared
    n = negotiation(client, keys)
    entries = [{"name": "Nobodyan Vahe"}]
    listed = {"submitted_by": "AZ", "submitted_on": "2021-06-12", "entries": entries}
    r = client.post(f"/negotiations/{n['id']}/lists", json=listed, headers=keys.worker)
    at = r.json()["version"]
    confirm = {"party": "AZ", "list_version": 1, "entry": 0, "case_id": cid}
    url = f"/negotiations/{n['id']}/matches"
    r = client.post(url, json=confirm, headers={**keys.worker, "If-Match": f'"{at - 1}"'})
    assert r.status_code == 409 and r.json()["current_version"] == at
    r = client.post(url, json=confirm, headers={**keys.worker, "If-Match": f'"{at}"'})
    assert r.status_code == 201, r.text


def test_routes_that_create_a_record_refuse_if_match(client: TestClient, keys: Keys) -> None:
    stale = {**keys.worker, "If-Match": '"1"'}
    person = {"family_name": "Testyan"}
    body = {"category": "missing_person", "person": person, "source": {"kind": "ngo"}}
    r = client.post("/cases", json=body, headers=stale)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "If-Match"
    talks = {"title": "t", "parties": ["AM", "AZ"], "principle": "other", "opened_on": "2021-06-01"}
    assert client.post("/negotiations", json=talks, headers=stale).status_code == 422
    cid = held(client, keys)["id"]
    handover = {"case_id": cid, "from_party": "AZ", "to_party": "AM", "outcome": "handed_over"}
    swap = {"occurred_on": "2021-07-03", "handovers": [handover], "source": {"kind": "icrc"}}
    assert client.post("/exchanges", json=swap, headers=stale).status_code == 422
    assert client.get("/cases", headers=keys.worker).json()["items"][0]["status"] == "held"
    assert client.get("/negotiations", headers=keys.worker).json()["items"] == []


def test_every_write_route_honours_if_match_or_refuses_it() -> None:
    """So that a route added later cannot silently ignore it."""
    app = create_app(Settings())
    writes = [
        r
        for r in app.routes
        if isinstance(r, APIRoute) and r.methods & {"POST", "PUT", "PATCH", "DELETE"}
    ]
    not_writes = {("POST", "/audit/verify")}  # a check that changes nothing
    for route in writes:
        if (next(iter(route.methods)), route.path) in not_writes:
            continue
        headers = {p.alias for p in route.dependant.header_params}
        refuses = any(d.call is refuse_if_match for d in route.dependant.dependencies)
        assert "If-Match" in headers or refuses, route.path


def test_a_case_shared_with_another_organisation_does_not_show_the_owners_negotiations(
    client: TestClient, keys: Keys, other: dict[str, str]
) -> None:
    cid = held(client, keys)["id"]
    nid = negotiation(client, keys)["id"]
    listed = {"submitted_by": "AM", "submitted_on": "2021-06-10", "entries": [{"case_id": cid}]}
    assert client.post(f"/negotiations/{nid}/lists", json=listed, headers=keys.worker).is_success
    assert share(client, keys, cid).status_code == 201
    assert client.get(f"/cases/{cid}", headers=keys.worker).json()["negotiations"] == [nid]
    assert client.get(f"/cases/{cid}", headers=keys.auditor).json()["negotiations"] == [nid]
    for path in (f"/cases/{cid}", f"/cases/{cid}?as_of=2021-07-01"):
        assert client.get(path, headers=other).json()["negotiations"] == [], path
    assert client.get("/cases", headers=other).json()["items"][0]["negotiations"] == []
    by_negotiation = client.get("/cases", params={"negotiation": nid}, headers=other)
    assert by_negotiation.json()["items"] == []
    mine = client.get("/cases", params={"negotiation": nid}, headers=keys.worker)
    assert [c["id"] for c in mine.json()["items"]] == [cid]
    r = record(client, other, cid, type="note", text="x")
    assert r.status_code == 201 and r.json()["negotiations"] == []
    # Nor do the case's facts: a confirmed spelling names the list it came from, and a
    # handover its exchange and negotiation.
    entries = [{"name": "Nobodyan Vahe"}]
    listed = {"submitted_by": "AZ", "submitted_on": "2021-06-12", "entries": entries}
    assert client.post(f"/negotiations/{nid}/lists", json=listed, headers=keys.worker).is_success
    confirm = {"party": "AZ", "list_version": 1, "entry": 0, "case_id": cid}
    r = client.post(f"/negotiations/{nid}/matches", json=confirm, headers=keys.worker)
    assert r.status_code == 201, r.text
    typed = str(uuid.uuid4())  # an id someone typed in a reference: no negotiation's
    source = {"kind": "ngo", "reference": f"file {typed}"}
    assert record(client, keys.worker, cid, type="note", text="x", source=source).is_success
    swap = exchange(client, keys, [handover({"id": cid})], negotiation_id=nid)
    assert swap.status_code == 201, swap.text
    xid = swap.json()["id"]
    for headers, shown in ((other, False), (keys.worker, True), (keys.auditor, True)):
        events = client.get(f"/cases/{cid}/history", headers=headers).json()["events"]
        text = json.dumps(events)
        assert (nid in text, xid in text) == (shown, shown), headers
        if not shown:
            assert "withheld" in text
        assert typed in text
    # A case file carries the stored events whole: the owner's and auditors' only.
    assert client.get(f"/cases/{cid}/export", headers=other).status_code == 403
    assert client.get(f"/cases/{cid}/export", headers=keys.worker).status_code == 200


def test_an_export_holds_no_database_connection_while_it_is_sent(
    client: TestClient, keys: Keys
) -> None:
    """A client that reads a case file slowly, or never, holds a spooled file: the
    snapshot it was read from is closed before the first byte goes out."""
    cid = held(client, keys)["id"]
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    cases = client.app.state.cases  # type: ignore[attr-defined]
    pool = store.engine.pool
    held_before = pool.checkedout()  # type: ignore[attr-defined]
    unread = spooled(cases.export(uuid.UUID(cid)))
    assert pool.checkedout() == held_before  # type: ignore[attr-defined]
    lines = b"".join(unread).decode().splitlines()
    assert json.loads(lines[0])["kind"] == "header" and len(lines) >= 4
    r = client.get(f"/cases/{cid}/export", headers=keys.worker)
    assert r.status_code == 200 and r.text.splitlines()[1:] == lines[1:]  # but the time
