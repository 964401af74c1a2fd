"""Organisations: a case worker sees and changes only the cases of their organisation
and those shared with it; anything else is answered as if it did not exist, and counts
for nothing in lists, searches, reports and reconciliations. Auditors see everything."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from infrastructure.keys import KeyStore
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.conftest import Keys, new_case, record
from tests.e2e.test_negotiations import exchange, handover, held, negotiation


@pytest.fixture
def other(settings: Settings, keys: Keys) -> dict[str, str]:
    """A case worker of another organisation, org-b."""
    store = Store(settings)
    try:
        _, secret = KeyStore(store.engine).create("worker-b", "case_worker", "org-b")
    finally:
        store.close()
    return {"Authorization": f"Bearer {secret}"}


def as_keys(headers: dict[str, str]) -> Keys:
    """The helpers of test_negotiations write with ``keys.worker``: org-b's worker."""
    return Keys(worker=headers, auditor=headers, admin=headers, worker_secret="")


def test_another_organisations_case_is_not_found_anywhere(
    client: TestClient, keys: Keys, other: dict[str, str]
) -> None:
    case = held(client, keys, family_name="Testyan", given_names="Aram")
    cid = case["id"]
    assert case["org"] == "org-a" and case["shares"] == []
    for path in (
        f"/cases/{cid}",
        f"/cases/{cid}?as_of=2021-06-01",
        f"/cases/{cid}/history",
        f"/cases/{cid}/export",
    ):
        r = client.get(path, headers=other)
        assert r.status_code == 404, path
        assert r.json()["detail"] == "no case with this id"
    assert record(client, other, cid, type="note", text="x").status_code == 404
    r = client.post(f"/cases/{cid}/shares", json={"org": "org-b", "purpose": "x"}, headers=other)
    assert r.status_code == 404
    assert client.get("/cases", headers=other).json()["items"] == []
    assert client.get("/cases?q=Testyan", headers=other).json()["items"] == []
    assert client.get("/reports/summary", headers=other).json()["total"] == 0
    assert client.get("/reports/summary", headers=keys.worker).json()["total"] == 1
    assert client.get("/reports/summary", headers=keys.auditor).json()["total"] == 1
    assert client.get(f"/cases/{cid}/history", headers=keys.auditor).status_code == 200
    # nothing was written by the refused attempts
    assert client.get(f"/cases/{cid}", headers=keys.worker).json()["version"] == case["version"]


def test_a_shared_case_is_seen_and_changed_until_the_share_ends(
    client: TestClient, keys: Keys, other: dict[str, str]
) -> None:
    cid = held(client, keys)["id"]
    body = {"org": "org-b", "purpose": "tracing request from the family"}
    r = client.post(f"/cases/{cid}/shares", json=body, headers=keys.worker)
    assert r.status_code == 201, r.text
    assert [(s["org"], s["purpose"]) for s in r.json()["shares"]] == [("org-b", body["purpose"])]
    assert client.get(f"/cases/{cid}", headers=other).status_code == 200
    assert record(client, other, cid, type="note", text="called").status_code == 201
    assert [c["id"] for c in client.get("/cases", headers=other).json()["items"]] == [cid]
    # only the owner decides who sees the case
    again = client.post(
        f"/cases/{cid}/shares", json={"org": "org-a", "purpose": "x"}, headers=other
    )
    assert again.status_code == 403
    history = client.get(f"/cases/{cid}/history", headers=keys.auditor).json()["events"]
    shared = next(e for e in history if e["type"] == "shared")
    assert shared["fields"] == body and shared["recorded_by"] == {"key": "worker-1", "org": "org-a"}
    version = shared["version"]
    retract = {"type": "retracted", "version": version, "reason": "x"}
    assert record(client, other, cid, **retract).status_code == 409  # not by retraction
    r = client.delete(f"/cases/{cid}/shares/org-b", headers=keys.worker)
    assert r.status_code == 200 and r.json()["shares"] == []
    assert client.get(f"/cases/{cid}", headers=other).status_code == 404
    assert client.delete(f"/cases/{cid}/shares/org-b", headers=keys.worker).status_code == 409


def test_sharing_needs_a_known_organisation_and_a_purpose(
    client: TestClient, keys: Keys, other: dict[str, str]
) -> None:
    cid = held(client, keys)["id"]
    r = client.post(
        f"/cases/{cid}/shares", json={"org": "org-zz", "purpose": "x"}, headers=keys.worker
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "org"
    r = client.post(f"/cases/{cid}/shares", json={"org": "org-b"}, headers=keys.worker)
    assert r.status_code == 422
    r = client.post(
        f"/cases/{cid}/shares", json={"org": "org-a", "purpose": "x"}, headers=keys.worker
    )
    assert r.status_code == 409
    events = client.get(f"/cases/{cid}/history", headers=keys.auditor).json()["events"]
    assert "shared" not in [e["type"] for e in events]
    r = record(client, keys.worker, cid, type="shared", org="org-b", purpose="x")
    assert r.status_code == 422  # shares are made with the share routes only


def test_negotiations_and_their_totals_count_only_what_the_caller_may_see(
    client: TestClient, keys: Keys, other: dict[str, str]
) -> None:
    ours = held(client, keys)
    n = negotiation(client, keys)
    assert client.get(f"/negotiations/{n['id']}", headers=other).status_code == 404
    assert client.get("/negotiations", headers=other).json()["items"] == []
    theirs = negotiation(client, as_keys(other))
    # org-b's reconciliation does not count org-a's held person, nor list them
    rec = client.get(f"/negotiations/{theirs['id']}", headers=other).json()["reconciliation"]
    assert rec["outstanding"] == [] and rec["counts"]["outstanding"] == 0
    rec = client.get(f"/negotiations/{n['id']}", headers=keys.worker).json()["reconciliation"]
    assert [e["case_id"] for e in rec["outstanding"]] == [ours["id"]]
    # org-b cannot list, agree on, or hand over org-a's person
    body = {
        "submitted_by": "AM",
        "submitted_on": "2021-06-10",
        "entries": [{"case_id": ours["id"]}],
    }
    r = client.post(f"/negotiations/{theirs['id']}/lists", json=body, headers=other)
    assert r.status_code == 422 and r.json()["errors"][0]["message"] == "no such case"
    r = client.post(
        "/exchanges",
        json={
            "occurred_on": "2021-07-03",
            "handovers": [handover(ours)],
            "source": {"kind": "party", "name": "AZ"},
        },
        headers=other,
    )
    assert r.status_code == 409 and r.json()["cases"][0]["problem"] == "not-found"
    assert exchange(client, keys, [handover(ours)], negotiation_id=n["id"]).status_code == 201
    assert client.get("/exchanges", headers=other).json()["items"] == []
    assert client.get("/reports/summary", headers=other).json()["exchanges"] == []
    assert client.get("/reports/summary", headers=keys.auditor).json()["exchanges"] != []


def test_list_matching_finds_only_the_callers_cases(
    client: TestClient, keys: Keys, other: dict[str, str]
) -> None:
    new_case(client, keys.worker, family_name="Grigoryan", given_names="Sedrak")
    body = {
        "submitted_by": "AM",
        "submitted_on": "2021-06-10",
        "entries": [{"name": "Григорян Седрак"}],
    }
    n = negotiation(client, keys)
    r = client.post(f"/negotiations/{n['id']}/lists", json=body, headers=keys.worker)
    assert r.json()["list"]["entries"][0]["match"]["result"] == "matched"
    theirs = negotiation(client, as_keys(other))
    r = client.post(f"/negotiations/{theirs['id']}/lists", json=body, headers=other)
    assert r.json()["list"]["entries"][0]["match"] == {"result": "unmatched"}
