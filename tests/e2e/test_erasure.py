"""Erasure: a person's identifying data is erased for good on a lawful request (admins of
the organisation that owns the case). Their key is destroyed; names, notes and source
names are gone from every answer, the non-personal history stays, the case takes no new
fact, and the hash chain still verifies. On SQLite, nothing of the person (nor their
destroyed key) is left in the database's files; before the erasure, nothing of them is
there in clear either."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy
from fastapi.testclient import TestClient

from api.app import create_app
from infrastructure import tables
from infrastructure.exports import Export, replay_from_export, verify_export
from infrastructure.keys import KeyStore
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.book import Book as Casebook
from tests.conftest import Keys, record
from tests.e2e.test_negotiations import negotiation

# An invented person whose names appear nowhere else in the register or in this code's
# dependencies, so that finding any of them in a file means it is the person's.
FAMILY = "Qwzorthiennyk"
GIVEN = "Ulvbrecht"
FATHER = "Xarvendimos"
BIRTHPLACE = "Plovjeszkrad"
ALIAS = "Квзортиенник"  # a Cyrillic spelling: the name index transliterates it
SOURCE_NAME = f"Mrs {FAMILY}, his sister"
REFERENCE = f"letter from {GIVEN}'s sister"
NOTE = f"{GIVEN} {FAMILY} was seen limping; his sister asks for news"
LISTED_AS = "Квзортиенник Улвбрехт"  # how a party's list spells them
MISSPELT = "Uli Hadrutsky"  # a name the register does not match; a case worker ties it
CASE_CANARIES = (FAMILY, GIVEN, FATHER, BIRTHPLACE, ALIAS, "1987-03-29")
CANARIES = (*CASE_CANARIES, "Улвбрехт", "Hadrutsky")  # and as the lists spell them

REASON = "request under Art. 17, ref. DP-2024-0042"
PROBLEM_JSON = "application/problem+json"


def open_person(client: TestClient, keys: Keys) -> dict[str, Any]:
    """The invented person's case, with a capture (its source named after the family)
    and a note naming them: every kind of personal field erasure must reach."""
    body = {
        "category": "prisoner_of_war",
        "person": {
            "family_name": FAMILY,
            "given_names": GIVEN,
            "nationality": "AM",
            "date_of_birth": "1987-03-29",
            "father_name": FATHER,
            "place_of_birth": BIRTHPLACE,
            "aliases": [ALIAS],
        },
        "source": {"kind": "family", "name": SOURCE_NAME, "reference": REFERENCE},
    }
    r = client.post("/cases", json=body, headers=keys.worker)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    captured = {
        "type": "captured",
        "occurred_on": "2020-11-09",
        "by_party": "AZ",
        "place": "Hadrut",
        "source": {"kind": "family", "name": SOURCE_NAME, "reference": REFERENCE},
    }
    assert record(client, keys.worker, cid, **captured).status_code == 201
    r = record(client, keys.worker, cid, type="note", text=NOTE, source={"kind": "other"})
    assert r.status_code == 201, r.text
    return r.json()


def list_person(client: TestClient, keys: Keys, case_id: str) -> dict[str, Any]:
    """A negotiation where AZ's list names the person twice: once matched by the
    register, once tied to their case by a case worker; and names someone else."""
    n = negotiation(client, keys)
    body = {
        "submitted_by": "AZ",
        "submitted_on": "2021-06-12",
        "entries": [
            {"name": LISTED_AS, "nationality": "AM", "date_of_birth": "1987-03-29"},
            {"name": MISSPELT},
            {"name": "Nobodyan Vahe", "nationality": "AM"},
        ],
    }
    r = client.post(f"/negotiations/{n['id']}/lists", json=body, headers=keys.worker)
    assert r.status_code == 201, r.text
    entries = r.json()["list"]["entries"]
    assert entries[0]["match"]["case_id"] == case_id, entries[0]
    assert entries[1]["match"].get("case_id") is None, entries[1]
    tie = {"party": "AZ", "list_version": 1, "entry": 1, "case_id": case_id}
    r = client.post(f"/negotiations/{n['id']}/matches", json=tie, headers=keys.worker)
    assert r.status_code == 201, r.text
    assert r.json()["list"]["entries"][1]["match"]["result"] == "confirmed", r.text
    return n


def erase(
    client: TestClient, headers: dict[str, str], case_id: str, body: Any = None, **extra: str
) -> httpx.Response:
    body = {"reason": REASON} if body is None else body
    return client.post(f"/cases/{case_id}/erase", json=body, headers={**headers, **extra})


def names_in(text: str) -> list[str]:
    return [n for n in CANARIES if n in text or n.lower() in text.lower()]


def history(client: TestClient, keys: Keys, case_id: str) -> list[dict[str, Any]]:
    r = client.get(f"/cases/{case_id}/history", headers=keys.auditor)
    assert r.status_code == 200, r.text
    events: list[dict[str, Any]] = r.json()["events"]
    return events


def found(client: TestClient, keys: Keys, q: str) -> list[str]:
    r = client.get("/cases", params={"q": q}, headers=keys.worker)
    assert r.status_code == 200, r.text
    return [c["id"] for c in r.json()["items"]]


def key_of(settings: Settings, org: str, role: str, name: str) -> dict[str, str]:
    store = Store(settings)
    try:
        _, secret = KeyStore(store.engine).create(name, role, org)
    finally:
        store.close()
    return {"Authorization": f"Bearer {secret}"}


def decoded_export(text: str) -> bytes:
    """An export's lines, and the stored bytes each event line carries (base64), decoded:
    what a reader of the file could see."""
    out = [text.encode()]
    for line in text.splitlines():
        item = json.loads(line)
        if "state" in item:
            out.append(base64.b64decode(item["state"]))
    return b"\n".join(out)


def assert_problem(r: httpx.Response, status: int, kind: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON), r.headers
    assert r.json()["type"].rsplit("/", 1)[-1] == kind, r.json()


# ---- the answer, the view and the history ---------------------------------------------


def test_erasure_answers_the_case_without_the_persons_data(client: TestClient, keys: Keys) -> None:
    case = open_person(client, keys)
    cid, version = case["id"], case["version"]
    assert case["person"]["family_name"] == FAMILY  # the register had the name
    r = erase(client, keys.admin, cid)
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == f'"{version + 1}"'
    view = r.json()
    assert view["person"] == {"nationality": "AM"}, view["person"]
    assert set(view["erased"]) == {"at", "reason", "version"}, view["erased"]
    assert view["erased"]["reason"] == REASON and view["erased"]["version"] == version + 1
    assert view["version"] == version + 1
    # what is not personal stays: the custody, the category, the organisation
    assert (view["status"], view["held_by"], view["place"]) == ("held", "AZ", "Hadrut"), view
    assert view["category"] == "prisoner_of_war"
    assert names_in(r.text) == []
    now = client.get(f"/cases/{cid}", headers=keys.worker)
    assert now.status_code == 200 and now.headers["etag"] == f'"{version + 1}"'
    assert now.json()["person"] == {"nationality": "AM"}
    assert now.json()["erased"] == view["erased"]
    assert names_in(now.text) == []


def test_the_history_keeps_the_non_personal_facts_and_loses_the_rest(
    client: TestClient, keys: Keys
) -> None:
    cid = open_person(client, keys)["id"]
    before = client.get(f"/cases/{cid}/history", headers=keys.auditor)
    assert names_in(before.text) == list(CASE_CANARIES)  # the history showed all of it
    assert erase(client, keys.admin, cid).status_code == 200
    for headers in (keys.worker, keys.auditor):
        r = client.get(f"/cases/{cid}/history", headers=headers)
        assert r.status_code == 200, r.text
        assert names_in(r.text) == []
    events = history(client, keys, cid)
    assert [e["type"] for e in events] == ["opened", "captured", "note", "erased"]
    opened, captured, note, erased = events
    assert opened["fields"] == {"category": "prisoner_of_war", "nationality": "AM"}, opened
    assert captured["occurred_on"] == "2020-11-09"
    assert captured["fields"] == {"by_party": "AZ", "place": "Hadrut"}, captured
    assert captured["source"] == {"kind": "family"}, captured["source"]
    assert "text" not in note["fields"], note
    assert erased["fields"] == {"reason": REASON}, erased
    assert erased["recorded_by"] == {"key": "admin-1", "org": "org-a"}
    # the hashes the history shows did not change: the stored events are the same bytes
    assert [e["hash"] for e in events[:3]] == [e["hash"] for e in before.json()["events"][:3]]


def test_past_views_of_an_erased_person_hold_no_name_either(client: TestClient, keys: Keys) -> None:
    case = open_person(client, keys)
    cid, moment = case["id"], case["updated_at"]
    assert (
        client.get(f"/cases/{cid}", params={"known_at": moment}, headers=keys.worker).json()[
            "person"
        ]["family_name"]
        == FAMILY
    )
    assert erase(client, keys.admin, cid).status_code == 200
    for params in ({"known_at": moment}, {"as_of": "2020-12-01"}, {"as_of": "2020-11-01"}):
        r = client.get(f"/cases/{cid}", params=params, headers=keys.worker)
        assert r.status_code == 200, r.text
        assert names_in(r.text) == [], params
        assert r.json()["person"] == {"nationality": "AM"}, params


def test_a_search_by_the_name_no_longer_finds_the_person(client: TestClient, keys: Keys) -> None:
    cid = open_person(client, keys)["id"]
    other = client.post(
        "/cases",
        json={
            "category": "prisoner_of_war",
            "person": {"family_name": "Testyan", "given_names": "Aram", "nationality": "AM"},
            "source": {"kind": "family"},
        },
        headers=keys.worker,
    ).json()["id"]
    for q in (FAMILY, f"{GIVEN} {FAMILY}", ALIAS, "Kvzortiennik"):
        assert found(client, keys, q) == [cid], q
    assert erase(client, keys.admin, cid).status_code == 200
    for q in (FAMILY, f"{GIVEN} {FAMILY}", ALIAS, "Kvzortiennik", GIVEN):
        assert cid not in found(client, keys, q), q
    assert found(client, keys, "Testyan") == [other]  # search itself still works
    # the case is still listed (by what is not personal), without a name
    listed = client.get("/cases", params={"nationality": "AM"}, headers=keys.worker)
    assert sorted(c["id"] for c in listed.json()["items"]) == sorted([cid, other])
    assert names_in(listed.text) == []


def test_an_erased_case_takes_no_new_fact(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    cid = open_person(client, keys)["id"]
    erased = erase(client, keys.admin, cid).json()
    refused = [
        record(client, keys.worker, cid, type="note", text="news", source={"kind": "other"}),
        record(client, keys.worker, cid, type="seen", occurred_on="2021-01-05"),
        record(
            client,
            keys.worker,
            cid,
            type="identity_updated",
            occurred_on="2021-02-01",
            family_name=FAMILY,
            aliases=[GIVEN],
        ),
        record(client, keys.worker, cid, type="retracted", version=2, reason="wrong"),
    ]
    for r in refused:
        assert_problem(r, 409, "invalid-transition")
        assert names_in(r.text) == []
    key_of(settings, "org-b", "case_worker", "worker-b")
    shared = client.post(
        f"/cases/{cid}/shares", json={"org": "org-b", "purpose": "tracing"}, headers=keys.worker
    )
    assert_problem(shared, 409, "invalid-transition")
    again = erase(client, keys.admin, cid)
    assert_problem(again, 409, "invalid-transition")
    now = client.get(f"/cases/{cid}", headers=keys.worker).json()
    assert now["version"] == erased["version"] and now["erased"] == erased["erased"]
    assert [e["type"] for e in history(client, keys, cid)][-1] == "erased"


def test_only_an_admin_erases(client: TestClient, keys: Keys) -> None:
    case = open_person(client, keys)
    cid = case["id"]
    for headers in (keys.worker, keys.auditor):
        r = erase(client, headers, cid)
        assert_problem(r, 403, "forbidden")
        assert names_in(r.text) == []
    assert_problem(erase(client, {}, cid), 401, "not-authenticated")
    now = client.get(f"/cases/{cid}", headers=keys.worker).json()
    assert now["version"] == case["version"] and now["person"]["family_name"] == FAMILY
    assert "erased" not in [e["type"] for e in history(client, keys, cid)]


def test_an_admin_of_another_organisation_cannot_erase(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    case = open_person(client, keys)
    cid = case["id"]
    admin_b = key_of(settings, "org-b", "admin", "admin-b")
    key_of(settings, "org-b", "case_worker", "worker-b")
    r = erase(client, admin_b, cid)
    assert_problem(r, 404, "not-found")  # not visible to org-b: as if it did not exist
    assert names_in(r.text) == []
    share = {"org": "org-b", "purpose": "tracing request from the family"}
    shared = client.post(f"/cases/{cid}/shares", json=share, headers=keys.worker)
    assert shared.status_code == 201, shared.text
    r = erase(client, admin_b, cid)
    assert_problem(r, 403, "forbidden")  # seen by org-b, but only the owner erases
    assert names_in(r.text) == []
    now = client.get(f"/cases/{cid}", headers=keys.worker).json()
    assert now["version"] == shared.json()["version"] and now["person"]["family_name"] == FAMILY
    assert "erased" not in [e["type"] for e in history(client, keys, cid)]
    # an unknown case is a 404 to the owner's admin too
    assert_problem(
        erase(client, keys.admin, "00000000-0000-4000-8000-000000000000"), 404, "not-found"
    )


def test_the_chain_verifies_after_an_erasure(client: TestClient, keys: Keys) -> None:
    cid = open_person(client, keys)["id"]
    before = client.get("/audit/verify", headers=keys.auditor).json()
    assert before["ok"] is True and before["events"] == 3
    assert erase(client, keys.admin, cid).status_code == 200
    after = client.get("/audit/verify", headers=keys.auditor)
    assert after.status_code == 200, after.text
    assert after.json()["ok"] is True and after.json()["events"] == 4, after.json()
    assert after.json()["head"] == history(client, keys, cid)[-1]["hash"]
    assert client.get("/audit/verify", headers=keys.admin).json()["ok"] is True
    # the case file verifies offline, and replays without the person's data
    export = client.get(f"/cases/{cid}/export", headers=keys.auditor)
    assert export.status_code == 200, export.text
    assert names_in(decoded_export(export.text).decode("utf-8", "replace")) == []
    lines = Export.read(export.text.splitlines())
    assert verify_export(lines).ok is True
    replayed = replay_from_export(lines, uuid.UUID(cid)).state()
    assert replayed.erased is not None and replayed.person.family_name is None
    assert (replayed.status, replayed.held_by) == ("held", "AZ")


def test_an_export_never_holds_the_persons_data(client: TestClient, keys: Keys) -> None:
    """Before any erasure: the stored bytes of a case file carry the personal parts
    sealed, so a copy taken home loses them when the key is destroyed."""
    cid = open_person(client, keys)["id"]
    export = client.get(f"/cases/{cid}/export", headers=keys.auditor)
    assert export.status_code == 200, export.text
    assert names_in(decoded_export(export.text).decode("utf-8", "replace")) == []
    assert b'"sealed"' in decoded_export(export.text)


def test_the_negotiation_lists_lose_the_names_tied_to_the_person(
    client: TestClient, keys: Keys
) -> None:
    cid = open_person(client, keys)["id"]
    n = list_person(client, keys, cid)
    before = client.get(f"/negotiations/{n['id']}", headers=keys.worker)
    assert LISTED_AS in before.text and MISSPELT in before.text
    assert found(client, keys, MISSPELT) == [cid]  # the confirmed spelling is an alias now
    assert erase(client, keys.admin, cid).status_code == 200
    assert found(client, keys, MISSPELT) == [] and found(client, keys, LISTED_AS) == []
    for headers in (keys.worker, keys.auditor):
        r = client.get(f"/negotiations/{n['id']}", headers=headers)
        assert r.status_code == 200, r.text
        assert names_in(r.text) == [] and MISSPELT not in r.text
        entries = r.json()["lists"]["AZ"]["entries"]
        assert [(e["name"], e.get("erased")) for e in entries] == [
            (None, True),
            (None, True),
            ("Nobodyan Vahe", None),  # someone else: kept
        ]
        assert "date_of_birth" not in entries[0] and entries[0]["nationality"] == "AM"
        assert [e["match"].get("case_id") for e in entries[:2]] == [cid, cid]
    assert client.get("/audit/verify", headers=keys.auditor).json()["ok"] is True
    # a new version of the list from the same party still takes names
    body = {"submitted_by": "AZ", "submitted_on": "2021-06-20", "entries": [{"name": "Testyan"}]}
    r = client.post(f"/negotiations/{n['id']}/lists", json=body, headers=keys.worker)
    assert r.status_code == 201, r.text


def test_reads_of_an_erased_case_are_still_audited(client: TestClient, keys: Keys) -> None:
    cid = open_person(client, keys)["id"]
    assert erase(client, keys.admin, cid).status_code == 200
    client.get(f"/cases/{cid}", headers=keys.worker)
    client.get(f"/cases/{cid}/history", headers=keys.auditor)
    r = client.get("/audit/access", params={"case_id": cid}, headers=keys.auditor)
    assert r.status_code == 200, r.text
    assert [(i["key"], i["route"]) for i in r.json()["items"]] == [
        ("worker-1", "GET /cases/{case_id}"),
        ("auditor-1", "GET /cases/{case_id}/history"),
    ]


# ---- what the request must be ---------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"reason": ""},
        {"reason": None},
        {"reason": 42},
        {"reason": "x", "family_name": FAMILY},
        {"reason": "x", "person": {"family_name": FAMILY}},
        [],
    ],
    ids=["none", "empty", "null", "number", "unknown-field", "unknown-object", "not-an-object"],
)
def test_an_erasure_needs_a_reason_and_nothing_else(
    client: TestClient, keys: Keys, body: Any
) -> None:
    case = open_person(client, keys)
    cid = case["id"]
    r = erase(client, keys.admin, cid, body)
    assert_problem(r, 422, "invalid-input")
    assert names_in(r.text) == []
    now = client.get(f"/cases/{cid}", headers=keys.worker).json()
    assert now["version"] == case["version"] and now.get("erased") is None
    assert now["person"]["family_name"] == FAMILY
    assert found(client, keys, FAMILY) == [cid]


def test_a_retried_erasure_answers_as_the_first_time(client: TestClient, keys: Keys) -> None:
    cid = open_person(client, keys)["id"]
    first = erase(client, keys.admin, cid, **{"Idempotency-Key": "erase-1"})
    assert first.status_code == 200, first.text
    retry = erase(client, keys.admin, cid, **{"Idempotency-Key": "erase-1"})
    assert retry.status_code == 200, retry.text
    assert retry.json() == first.json()
    assert retry.headers["etag"] == first.headers["etag"]
    assert [e["type"] for e in history(client, keys, cid)].count("erased") == 1
    # the same key for another request is refused, not replayed
    other = erase(client, keys.admin, cid, {"reason": "another"}, **{"Idempotency-Key": "erase-1"})
    assert_problem(other, 422, "idempotency-key-reused")
    # without the key, a second erasure is a conflict
    assert_problem(erase(client, keys.admin, cid), 409, "invalid-transition")


def test_an_erasure_may_be_conditional(client: TestClient, keys: Keys) -> None:
    case = open_person(client, keys)
    cid, version = case["id"], case["version"]
    stale = erase(client, keys.admin, cid, **{"If-Match": f'"{version - 1}"'})
    assert_problem(stale, 409, "version-conflict")
    assert (
        client.get(f"/cases/{cid}", headers=keys.worker).json()["person"]["family_name"] == FAMILY
    )
    r = erase(client, keys.admin, cid, **{"If-Match": f'"{version}"'})
    assert r.status_code == 200, r.text
    assert r.json()["erased"]["version"] == version + 1


def test_another_process_forgets_the_key_on_its_next_request(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    """Each process caches opened keys; an erasure made by one takes effect in every
    other on its next request."""
    cid = open_person(client, keys)["id"]
    with TestClient(create_app(settings)) as second:
        assert (
            second.get(f"/cases/{cid}", headers=keys.worker).json()["person"]["family_name"]
            == FAMILY
        )  # its key is now cached there
        assert second.get(f"/cases/{cid}/history", headers=keys.auditor).status_code == 200
        assert erase(client, keys.admin, cid).status_code == 200
        for path in (f"/cases/{cid}", f"/cases/{cid}/history", f"/cases/{cid}?as_of=2021-01-01"):
            r = second.get(path, headers=keys.auditor)
            assert r.status_code == 200, r.text
            assert names_in(r.text) == [], path
        r = second.get("/cases", params={"q": FAMILY}, headers=keys.worker)
        assert r.json()["items"] == []
        note = record(second, keys.worker, cid, type="note", text=NOTE, source={"kind": "other"})
        assert_problem(note, 409, "invalid-transition")


# ---- what is left in the database -----------------------------------------------------


def test_after_an_erasure_the_store_holds_no_key_and_no_name(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    """At the SQL level, on either store: the wrapped key is gone (its row says when),
    the erasure is counted, the name index holds nothing for the case, and the view is
    kept in clear, with nothing personal in it."""
    cid = open_person(client, keys)["id"]
    keep = client.post(
        "/cases",
        json={
            "category": "missing_person",
            "person": {"family_name": "Testyan"},
            "source": {"kind": "family"},
        },
        headers=keys.worker,
    ).json()["id"]
    engine = sqlalchemy.create_engine(settings.url())
    case_id, kept_id = uuid.UUID(cid), uuid.UUID(keep)
    pk, er, nk, v = tables.person_keys, tables.erasures, tables.case_name_keys, tables.case_views
    try:
        with engine.connect() as conn:
            row = conn.execute(sqlalchemy.select(pk).where(pk.c.key_id == case_id)).one()
            assert row.wrapped is not None and row.erased_at is None
            assert conn.execute(sqlalchemy.select(nk).where(nk.c.case_id == case_id)).all()
            view = conn.execute(
                sqlalchemy.select(v.c.view).where(v.c.case_id == case_id)
            ).scalar_one()
            assert view.startswith("s1:") and names_in(view) == []  # sealed at rest
        assert erase(client, keys.admin, cid).status_code == 200
        with engine.connect() as conn:
            row = conn.execute(sqlalchemy.select(pk).where(pk.c.key_id == case_id)).one()
            assert row.wrapped is None and row.erased_at is not None
            erasures = conn.execute(sqlalchemy.select(er.c.key_id)).scalars().all()
            assert erasures == [case_id]
            names = conn.execute(sqlalchemy.select(nk).where(nk.c.case_id == case_id)).all()
            assert names == []
            view = conn.execute(
                sqlalchemy.select(v.c.view).where(v.c.case_id == case_id)
            ).scalar_one()
            assert not view.startswith("s1:") and names_in(view) == []
            assert json.loads(view)["person"] == {"nationality": "AM"}
            # the other person is untouched
            other = conn.execute(sqlalchemy.select(pk).where(pk.c.key_id == kept_id)).one()
            assert other.wrapped is not None and other.erased_at is None
            assert conn.execute(sqlalchemy.select(nk).where(nk.c.case_id == kept_id)).all()
            # nowhere in any table of the database (the event log's included), in clear
            all_tables = sqlalchemy.inspect(conn).get_table_names()
            assert "casebook_person_keys" in all_tables and len(all_tables) > len(
                tables.metadata.sorted_tables
            )
            for name in all_tables:
                for stored in conn.exec_driver_sql(f'SELECT * FROM "{name}"').all():
                    text = " ".join(
                        bytes(c).decode("utf-8", "replace")
                        if isinstance(c, bytes | memoryview)
                        else str(c)
                        for c in stored
                    )
                    assert names_in(text) == [], name
    finally:
        engine.dispose()
    assert found(client, keys, "Testyan") == [keep]


# ---- the canary: SQLite's files --------------------------------------------------------


def database_files(settings: Settings) -> dict[str, bytes]:
    """The SQLite database file and, when they exist, its WAL and shared-memory index."""
    db = settings.data_dir / "casebook.sqlite"
    assert db.exists(), f"no database at {db}"
    files = {}
    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), Path(f"{db}-journal")):
        if path.exists():
            files[path.name] = path.read_bytes()
    return files


def wrapped_keys(settings: Settings) -> dict[uuid.UUID, bytes | None]:
    """Every data key as stored (wrapped), by the id it belongs to."""
    engine = sqlalchemy.create_engine(settings.url())
    pk = tables.person_keys
    try:
        with engine.connect() as conn:
            rows = conn.execute(sqlalchemy.select(pk.c.key_id, pk.c.wrapped)).all()
    finally:
        engine.dispose()
    return {k: None if w is None else bytes(w) for k, w in rows}


def canaries_in(blob: bytes) -> list[str]:
    hits = []
    for name in CANARIES:
        for form in {name, name.lower(), name.upper()}:
            if form.encode() in blob:
                hits.append(form)
    return hits


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_canary_nothing_of_an_erased_person_is_left_in_the_database_files(
    client: TestClient,
    keys: Keys,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # every logger at DEBUG, including those that set their own level when imported
    # (SQLAlchemy's, which then logs every statement and its parameters)
    for logger in (None, "casebook", "sqlalchemy", "eventsourcing", "uvicorn", "fastapi"):
        caplog.set_level(logging.DEBUG, logger=logger)
    case = open_person(client, keys)
    cid = case["id"]
    n = list_person(client, keys, cid)

    # many other people, so that the key table's and the views' B-trees split and the
    # person's rows are moved about before they are erased
    for i in range(300):
        r = client.post(
            "/cases",
            json={
                "category": "detained_person",
                "person": {"family_name": f"Testyan{i}", "given_names": "Aram"},
                "source": {"kind": "ngo", "name": f"witness {i}"},
            },
            headers=keys.worker,
        )
        assert r.status_code == 201, r.text
        if i % 50 == 0:
            assert (
                record(
                    client, keys.worker, r.json()["id"], type="note", text=f"note {i}"
                ).status_code
                == 201
            )

    # the register has the person, and answers with their name (the test is not vacuous)
    seen = client.get(f"/cases/{cid}", headers=keys.worker)
    assert seen.json()["person"]["family_name"] == FAMILY
    assert found(client, keys, FAMILY) == [cid]
    assert NOTE in client.get(f"/cases/{cid}/history", headers=keys.auditor).text
    assert LISTED_AS in client.get(f"/negotiations/{n['id']}", headers=keys.worker).text
    # ... but keeps nothing of them in clear in its files
    before = database_files(settings)
    for name, blob in before.items():
        assert canaries_in(blob) == [], f"in clear in {name} before the erasure"
    keys_before = wrapped_keys(settings)
    # the people's, each name entry's on the list, and the negotiation's own (its title)
    assert len(keys_before) == 301 + 3 + 1
    wrapped = keys_before[uuid.UUID(cid)]
    assert wrapped is not None and len(wrapped) >= 32
    # the key is in the files, in one form or another, until it is destroyed
    assert any(wrapped in blob for blob in before.values()), "the wrapped key was not found"

    r = erase(client, keys.admin, cid)
    assert r.status_code == 200, r.text

    keys_after = wrapped_keys(settings)
    destroyed = {k: keys_before[k] for k, w in keys_after.items() if w is None}
    # the person's key, and those of the two list entries tied to their case
    assert uuid.UUID(cid) in destroyed and len(destroyed) == 3, destroyed.keys()
    after = database_files(settings)
    for name, blob in after.items():
        assert canaries_in(blob) == [], f"{canaries_in(blob)} left in {name}"
        for key_id, key in destroyed.items():
            assert key is not None
            assert key not in blob, f"the destroyed key of {key_id} is left in {name}"
            assert key[12:28] not in blob, f"a part of the key of {key_id} is left in {name}"
    assert not after.get("casebook.sqlite-wal"), "the WAL was not truncated"

    # the register's answers and exports
    for path in (
        f"/cases/{cid}",
        f"/cases/{cid}/history",
        f"/cases/{cid}/export",
        f"/negotiations/{n['id']}",
    ):
        got = client.get(path, headers=keys.auditor)
        assert got.status_code == 200, got.text
        assert names_in(got.text) == [], path
    case_file = client.get(f"/cases/{cid}/export", headers=keys.auditor).text
    assert canaries_in(decoded_export(case_file)) == []
    assert found(client, keys, FAMILY) == [] and found(client, keys, ALIAS) == []
    store = Store(settings)
    try:
        register_file = "".join(Casebook(store).export(None))
    finally:
        store.close()
    assert len(Export.read(register_file.splitlines()).events) > 300
    assert canaries_in(decoded_export(register_file)) == []
    assert verify_export(Export.read(register_file.splitlines())).ok is True
    verified = client.get("/audit/verify", headers=keys.auditor)
    assert verified.status_code == 200 and verified.json()["ok"] is True, verified.text

    # and nothing of them was written to a log; the test client's own log (httpx) names
    # the URLs it asked for, search words included: that is the caller's, not ours
    logged = "\n".join(
        f"{rec.name} {rec.getMessage()} {rec.args!r} {rec.exc_text or ''}"
        for rec in caplog.records
        if not rec.name.startswith(("httpx", "httpcore"))
    )
    assert logged, "no log was captured: the check below would prove nothing"
    assert "sqlalchemy.engine" in logged and "casebook.requests" in logged
    assert canaries_in(logged.encode()) == [], "a log names the person"
    out, err = capfd.readouterr()
    assert canaries_in(out.encode()) == [] and canaries_in(err.encode()) == [], "printed"
    # the files, once more, after all these reads
    for name, blob in database_files(settings).items():
        assert canaries_in(blob) == [], name
        assert not any(key is not None and key in blob for key in destroyed.values()), name
