"""The read audit: every answer carrying a person's data is recorded (who, when, which
case, which route) before it leaves; a read that cannot be recorded is refused."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy
from fastapi.testclient import TestClient

from infrastructure.settings import Settings
from tests.conftest import Keys, new_case
from tests.e2e.test_negotiations import held, negotiation


def reads(client: TestClient, keys: Keys, case_id: str) -> list[tuple[str, str, str]]:
    r = client.get("/audit/access", params={"case_id": case_id}, headers=keys.auditor)
    assert r.status_code == 200, r.text
    return [(i["key"], i["org"], i["route"]) for i in r.json()["items"]]


def test_every_read_of_a_persons_data_is_recorded(client: TestClient, keys: Keys) -> None:
    case = new_case(client, keys.worker, family_name="Grigoryan", given_names="Sedrak")
    cid = case["id"]
    assert reads(client, keys, cid) == []  # opening it is in the log, not a read
    client.get(f"/cases/{cid}", headers=keys.worker)
    client.get(f"/cases/{cid}?as_of=2021-01-01", headers=keys.worker)
    client.get("/cases", params={"q": "Григорян"}, headers=keys.worker)
    client.get(f"/cases/{cid}/history", headers=keys.auditor)
    client.get(f"/cases/{cid}/export", headers=keys.auditor)
    n = negotiation(client, keys)
    body = {"submitted_by": "AM", "submitted_on": "2021-06-10", "entries": [{"case_id": cid}]}
    client.post(f"/negotiations/{n['id']}/lists", json=body, headers=keys.worker)
    client.get(f"/negotiations/{n['id']}", headers=keys.worker)
    assert reads(client, keys, cid) == [
        ("worker-1", "org-a", "GET /cases/{case_id}"),
        ("worker-1", "org-a", "GET /cases/{case_id}"),
        ("worker-1", "org-a", "GET /cases"),
        ("auditor-1", "org-a", "GET /cases/{case_id}/history"),
        ("auditor-1", "org-a", "GET /cases/{case_id}/export"),
        ("worker-1", "org-a", "GET /negotiations/{negotiation_id}"),
    ]
    items = client.get("/audit/access", params={"case_id": cid}, headers=keys.auditor).json()
    assert "Григорян" not in str(items)  # the route's template, never the query's words
    # paginated, oldest first
    page = client.get("/audit/access", params={"case_id": cid, "limit": 4}, headers=keys.auditor)
    rest = client.get(
        "/audit/access",
        params={"case_id": cid, "cursor": page.json()["next_cursor"]},
        headers=keys.auditor,
    )
    assert len(page.json()["items"]) == 4 and len(rest.json()["items"]) == 2
    assert rest.json()["next_cursor"] is None


def test_a_refused_read_records_nothing_and_only_auditors_list_reads(
    client: TestClient, keys: Keys
) -> None:
    cid = held(client, keys)["id"]
    assert client.get(f"/cases/{cid}/history", headers=keys.admin).status_code == 403
    assert (
        client.get("/audit/access", params={"case_id": cid}, headers=keys.worker).status_code == 403
    )
    assert reads(client, keys, cid) == []


def test_a_read_that_cannot_be_recorded_is_refused(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    cid = new_case(client, keys.worker, family_name="Testyan")["id"]
    engine = sqlalchemy.create_engine(settings.url())
    with engine.begin() as conn:  # the read audit's table is gone
        conn.exec_driver_sql("DROP TABLE casebook_access_log")
    engine.dispose()
    r = client.get(f"/cases/{cid}", headers=keys.worker)
    assert r.status_code == 503 and r.json()["type"].endswith("read-not-recorded")
    assert "Testyan" not in r.text and r.headers["Retry-After"] == "1"
    r = client.get("/cases", headers=keys.worker)
    assert r.status_code == 503 and "Testyan" not in r.text


def test_reads_at_once_share_durable_commits_and_each_is_recorded(
    settings: Settings, keys: Keys
) -> None:
    """Group commit: forty reads at once, each answered only after its record is
    committed, in fewer commits than reads."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from sqlalchemy import event, func, select

    from infrastructure import tables
    from infrastructure.keys import KeyStore
    from infrastructure.readlog import Reader, ReadNotRecorded
    from infrastructure.store import Store

    store = Store(settings)
    try:
        key = KeyStore(store.engine).list()[0]
        commits: list[int] = []
        event.listen(store.side_engine, "commit", lambda conn: commits.append(1))
        start = Barrier(40)
        cases = [uuid.uuid4() for _ in range(40)]

        def read(case_id: uuid.UUID) -> None:
            start.wait()
            store.record_read(Reader(key, "GET /cases/{case_id}"), [case_id])

        with ThreadPoolExecutor(40) as pool:
            list(pool.map(read, cases))
        t = tables.access_log
        with store.engine.connect() as conn:
            recorded = conn.execute(select(func.count()).select_from(t)).scalar_one()
        assert recorded == 40 and 1 <= len(commits) < 40
        store.read_audit.close()  # a read after the writer stopped is refused, not lost
        with pytest.raises(ReadNotRecorded):
            store.record_read(Reader(key, "GET /cases/{case_id}"), [cases[0]])
    finally:
        store.close()
