"""The REST contract of api.md, over HTTP through the app, on both stores."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta

from infrastructure.keys import KeyStore
from infrastructure.store import Store
from tests.conftest import SOURCE, new_case, record

PROBLEM = "application/problem+json"


def test_health_answers_without_a_key(client):
    response = client.get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_no_key_or_a_bad_key_is_401_problem_json(client):
    for headers in ({}, {"Authorization": "Bearer cbk_not-a-key"}, {"Authorization": "Basic x"}):
        response = client.get("/cases", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["type"].endswith("not-authenticated")


def test_an_auditor_may_read_but_never_write(client, keys):
    case = new_case(client, keys.worker)
    refused = record(client, keys.auditor, case["id"], type="note", text="x")
    assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
    assert client.post("/cases", json={}, headers=keys.auditor).status_code == 403
    assert client.get(f"/cases/{case['id']}", headers=keys.auditor).json()["version"] == 1
    assert client.get(f"/cases/{case['id']}/history", headers=keys.auditor).status_code == 200


def test_an_admin_administers_and_reads_no_case(client, keys):
    case = new_case(client, keys.worker)
    assert client.get(f"/cases/{case['id']}", headers=keys.admin).status_code == 403
    assert client.get("/reports/summary", headers=keys.admin).status_code == 200


def test_a_revoked_or_expired_key_is_refused_on_the_next_request(client, keys, settings):
    assert client.get("/cases", headers=keys.worker).status_code == 200
    store = Store(settings)
    KeyStore(store.engine).revoke("worker-1")
    _, expired = KeyStore(store.engine).create(
        "old", "auditor", "org-a", datetime.now(UTC) - timedelta(seconds=1)
    )
    store.close()
    assert client.get("/cases", headers=keys.worker).status_code == 401
    assert client.get("/cases", headers={"Authorization": f"Bearer {expired}"}).status_code == 401


def test_opening_a_case_answers_201_with_location_and_etag(client, keys):
    response = client.post(
        "/cases",
        json={
            "category": "missing_person",
            "person": {"family_name": "Testyan", "date_of_birth": "withheld", "sex": "unknown"},
            "source": {"kind": "family", "reported_on": "2021-01-02"},
        },
        headers=keys.worker,
    )
    assert response.status_code == 201
    view = response.json()
    assert response.headers["location"] == f"/cases/{view['id']}"
    assert response.headers["etag"] == '"1"'
    assert view["person"]["date_of_birth"] == "withheld"
    assert (view["status"], view["disputed"], view["version"]) == ("unknown", False, 1)


def test_bad_input_names_every_bad_field_and_writes_nothing(client, keys):
    response = client.post(
        "/cases",
        json={
            "category": "tourist",
            "person": {"family_name": "X", "eye_colour": "blue"},
            "source": {"kind": "party"},
            "version": 7,
        },
        headers=keys.worker,
    )
    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"category", "person.eye_colour", "version"} <= fields
    case = new_case(client, keys.worker)
    bad = record(
        client,
        keys.worker,
        case["id"],
        type="captured",
        occurred_on="1 May 2021",
        by_party="Azerbaijan",
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"occurred_on", "by_party"}
    wrong_date = record(client, keys.worker, case["id"], type="seen", occurred_on="2021-02-30")
    assert wrong_date.status_code == 422
    assert client.get(f"/cases/{case['id']}", headers=keys.worker).json()["version"] == 1
    assert client.get("/cases", headers=keys.worker).json()["items"] == [case]


def test_what_a_fact_schema_cannot_say_is_refused_by_the_domain_and_writes_nothing(client, keys):
    """The schema checks each field's kind once; the rules it cannot express (a date that
    is not in the calendar, one field or another, a future day, a closure dated at all)
    are the domain's, and each names its field."""
    case = new_case(client, keys.worker)
    tomorrow_but_one = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    refusals = {
        "sentence_ends_on": {
            "type": "sentenced",
            "occurred_on": "2021-03-01",
            "by_party": "AZ",
            "charge": "invented charge",
            "sentence_ends_on": "2031-02-30",
        },
        "to_place": {"type": "transferred", "occurred_on": "2021-03-01", "by_party": "AZ"},
        "occurred_on": {"type": "seen", "occurred_on": tomorrow_but_one},
        "source.reported_on": {
            "type": "seen",
            "occurred_on": "2021-03-01",
            "source": {"kind": "icrc", "reported_on": "2021-13-01"},
        },
    }
    for field, fact in refusals.items():
        refused = record(client, keys.worker, case["id"], **fact)
        assert refused.status_code == 422, field
        assert field in {e["field"] for e in refused.json()["errors"]}, refused.json()
    closed = record(
        client, keys.worker, case["id"], type="closed", occurred_on="2021-03-01", reason="done"
    )
    assert closed.status_code == 422
    assert {e["field"] for e in closed.json()["errors"]} == {"occurred_on"}
    assert client.get(f"/cases/{case['id']}", headers=keys.worker).json()["version"] == 1


def test_a_stale_if_match_or_expected_version_is_a_409_version_conflict(client, keys):
    case = new_case(client, keys.worker)
    ok = client.post(
        f"/cases/{case['id']}/events",
        headers={**keys.worker, "If-Match": '"1"'},
        json={"type": "seen", "occurred_on": "2021-01-01", "source": SOURCE},
    )
    assert ok.status_code == 201 and ok.headers["etag"] == '"2"'
    stale = client.post(
        f"/cases/{case['id']}/events",
        headers={**keys.worker, "If-Match": '"1"'},
        json={"type": "seen", "occurred_on": "2021-01-02", "source": SOURCE},
    )
    assert stale.status_code == 409
    assert stale.json()["type"].endswith("version-conflict")
    assert stale.json()["current_version"] == 2
    in_body = record(client, keys.worker, case["id"], type="note", text="x", expected_version=1)
    assert in_body.status_code == 409
    assert client.get(f"/cases/{case['id']}", headers=keys.worker).json()["version"] == 2


def test_a_forbidden_transition_is_a_409_invalid_transition(client, keys):
    case = new_case(client, keys.worker)
    record(client, keys.worker, case["id"], type="died", occurred_on="2021-02-01")
    refused = record(
        client,
        keys.worker,
        case["id"],
        type="released",
        occurred_on="2021-07-03",
        by_party="AZ",
        to_party="AM",
    )
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("invalid-transition")
    assert refused.json()["conflicts_with"] == [2]


def test_a_retried_post_with_the_same_idempotency_key_records_once(client, keys):
    case = new_case(client, keys.worker)
    headers = {**keys.worker, "Idempotency-Key": "note-42"}
    body = {"type": "note", "text": "called the family", "source": SOURCE}
    first = client.post(f"/cases/{case['id']}/events", json=body, headers=headers)
    again = client.post(f"/cases/{case['id']}/events", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again.headers["etag"] == '"2"'
    other = client.post(f"/cases/{case['id']}/events", json={**body, "text": "y"}, headers=headers)
    assert other.status_code == 422
    history = client.get(f"/cases/{case['id']}/history", headers=keys.worker).json()
    assert len(history["events"]) == 2


def test_lists_are_paginated_with_a_cursor(client, keys):
    opened = [new_case(client, keys.worker)["id"] for _ in range(7)]
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/cases", params=params, headers=keys.worker).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == opened
    assert client.get("/cases", params={"cursor": "bogus"}, headers=keys.worker).status_code == 400
    assert client.get("/cases", params={"limit": 501}, headers=keys.worker).status_code == 422


def test_filters_select_by_status_holder_and_dispute(client, keys):
    held = new_case(client, keys.worker)
    record(
        client, keys.worker, held["id"], type="captured", occurred_on="2021-01-01", by_party="AZ"
    )
    disputed = new_case(client, keys.worker)
    record(
        client,
        keys.worker,
        disputed["id"],
        type="visited",
        occurred_on="2021-01-01",
        by="ICRC",
        held_by="AZ",
    )
    record(
        client,
        keys.worker,
        disputed["id"],
        type="holding_denied",
        occurred_on="2021-02-01",
        by_party="AZ",
        source={"kind": "party", "name": "AZ"},
    )
    new_case(client, keys.worker)

    def ids(**params):
        return {
            c["id"]
            for c in client.get("/cases", params=params, headers=keys.worker).json()["items"]
        }

    assert ids(held_by="AZ") == {held["id"], disputed["id"]}
    assert ids(disputed="true") == {disputed["id"]}
    assert len(ids(status="unknown")) == 1
    summary = client.get(
        "/reports/summary", params={"group_by": "held_by"}, headers=keys.worker
    ).json()
    assert {"value": "AZ", "count": 2} in summary["groups"] and summary["total"] == 3


def test_q_finds_one_person_across_armenian_cyrillic_and_latin_spellings(client, keys):
    target = new_case(client, keys.worker, family_name="Sedrakyan", given_names="Hovhannes")
    new_case(client, keys.worker, family_name="Mammadov", given_names="Elchin")
    for spelling in ("Setrakyan", "Седракян", "Սեդրակյան", "Hovhannes Sedrakian"):
        found = client.get("/cases", params={"q": spelling}, headers=keys.worker).json()
        assert [c["id"] for c in found["items"]] == [target["id"]], spelling


def test_a_body_over_the_limit_is_413_whether_its_length_is_declared_or_not(client, keys, settings):
    over = settings.max_body_bytes + 1000
    huge = {"type": "note", "text": "x" * over, "source": SOURCE}
    case = new_case(client, keys.worker)
    response = client.post(f"/cases/{case['id']}/events", json=huge, headers=keys.worker)
    assert response.status_code == 413 and response.headers["content-type"] == PROBLEM

    def chunks():
        yield b'{"type": "note", "text": "'
        for _ in range(over // 100_000 + 1):
            yield b"x" * 100_000
        yield b'", "source": {"kind": "other"}}'

    chunked = client.post(
        f"/cases/{case['id']}/events",
        content=chunks(),
        headers={**keys.worker, "Content-Type": "application/json"},
    )
    assert chunked.status_code == 413
    assert client.get(f"/cases/{case['id']}", headers=keys.worker).json()["version"] == 1


def test_unknown_ids_and_routes_are_404_problems(client, keys):
    unknown = client.get("/cases/6f1c2f4e-8a3b-4c2d-9e8f-0a1b2c3d4e5f", headers=keys.worker)
    assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM
    assert client.get("/nowhere", headers=keys.worker).status_code == 404


def test_as_of_and_known_at_validate_their_input(client, keys):
    case = new_case(client, keys.worker)
    for params in ({"as_of": "yesterday"}, {"known_at": "2021-01-01T00:00:00"}):
        response = client.get(f"/cases/{case['id']}", params=params, headers=keys.worker)
        assert response.status_code == 422, params


def test_docs_are_served_without_any_cdn(client):
    page = client.get("/docs").text
    assert "swagger-ui-bundle.js" in page
    assert not re.findall(r"(?:src|href)=['\"]https?://", page)
    spec = client.get("/openapi.json").json()
    assert {
        "/cases",
        "/cases/{case_id}",
        "/cases/{case_id}/events",
        "/cases/{case_id}/history",
        "/reports/summary",
        "/health",
    } <= set(spec["paths"])


def test_each_request_logs_one_line_without_its_query_string(client, keys, caplog):
    new_case(client, keys.worker, family_name="Zzyzxian")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="casebook.requests"):
        client.get("/cases", params={"q": "Zzyzxian"}, headers=keys.worker)
    lines = [r.getMessage() for r in caplog.records if r.name == "casebook.requests"]
    assert len(lines) == 1
    assert '"route": "/cases"' in lines[0] and '"key": "worker-1"' in lines[0]
    assert "Zzyzxian" not in caplog.text


def test_an_unexpected_error_is_a_500_problem_that_logs_no_data(client, keys, caplog, monkeypatch):
    case = new_case(client, keys.worker)

    def broken(*args: object) -> None:
        raise RuntimeError("choked on Zzyzxian Testyan")

    monkeypatch.setattr(client.app.state.cases, "read_view", broken)
    caplog.clear()
    response = client.get(f"/cases/{case['id']}", headers=keys.worker)
    assert response.status_code == 500 and response.headers["content-type"] == PROBLEM
    assert "Zzyzxian" not in response.text and "Traceback" not in response.text
    assert "Zzyzxian" not in caplog.text and "RuntimeError" in caplog.text


def test_auditors_verify_the_chain_and_see_each_events_hash(client, keys):
    case = new_case(client, keys.worker)
    record(client, keys.worker, case["id"], type="seen", occurred_on="2021-01-01")
    assert client.get("/audit/verify", headers=keys.worker).status_code == 403
    verified = client.get("/audit/verify", headers=keys.auditor)
    assert verified.status_code == 200
    body = verified.json()
    assert (body["ok"], body["events"]) == (True, 2) and len(body["head"]) == 64
    assert client.get("/audit/verify", headers=keys.admin).json() == body
    history = client.get(f"/cases/{case['id']}/history", headers=keys.auditor).json()
    hashes = [e["hash"] for e in history["events"]]
    assert len(set(hashes)) == 2 and hashes[-1] == body["head"]


def test_admins_make_checkpoints_that_auditors_list_and_verify_against(client, keys):
    new_case(client, keys.worker)
    assert client.post("/audit/checkpoints", headers=keys.auditor).status_code == 403
    made = client.post("/audit/checkpoints", headers=keys.admin)
    assert made.status_code == 201
    checkpoint = made.json()
    assert checkpoint["position"] == 1 and len(checkpoint["signature"]) == 128
    listed = client.get("/audit/checkpoints", headers=keys.auditor).json()
    assert listed == {"items": [checkpoint], "next_cursor": None}
    assert client.get("/audit/checkpoints", headers=keys.worker).status_code == 403
    verified = client.post(
        "/audit/verify", json={"checkpoints": [checkpoint]}, headers=keys.auditor
    ).json()
    assert verified["ok"] and verified["checkpoints"] == 2  # the kept one and the stored one
    forged = {**checkpoint, "head": "0" * 64}
    refused = client.post("/audit/verify", json={"checkpoints": [forged]}, headers=keys.auditor)
    assert refused.json()["ok"] is False and refused.json()["first_broken_position"] == 1


def test_careless_and_hostile_parameters_are_422_or_400_never_500(client, keys):
    import base64

    case = new_case(client, keys.worker)
    url = f"/cases/{case['id']}"
    for forged in ({"s": 2**70}, {"s": True}, {"s": -1}, {"o": 1}):
        cursor = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode()
        response = client.get("/cases", params={"cursor": cursor}, headers=keys.worker)
        assert response.status_code == 400, forged
    for params in ({"nationality": "A\x00"}, {"q": "Test\x00yan"}, {"q": "\u202eTest"}):
        assert client.get("/cases", params=params, headers=keys.worker).status_code == 422
    assert (
        client.get(url, params={"known_at": "1900000000"}, headers=keys.worker).status_code == 422
    )
    for if_match in ('W/"1"', "1", '"1', "*x"):
        response = client.post(
            f"{url}/events",
            headers={**keys.worker, "If-Match": if_match},
            json={"type": "note", "text": "x", "source": SOURCE},
        )
        assert response.status_code == 422, if_match
    anything = client.post(
        f"{url}/events",
        headers={**keys.worker, "If-Match": "*"},
        json={"type": "note", "text": "x", "source": SOURCE},
    )
    assert anything.status_code == 201
    for loose in (True, "2", 2.0):
        response = record(
            client, keys.worker, case["id"], type="note", text="y", expected_version=loose
        )
        assert response.status_code == 422, loose
    assert client.get(url, headers=keys.worker).json()["version"] == 2
    assert client.head("/health").status_code == 200


def test_a_past_view_carries_no_etag(client, keys):
    case = new_case(client, keys.worker)
    past = client.get(f"/cases/{case['id']}", params={"as_of": "2021-01-01"}, headers=keys.worker)
    assert past.status_code == 200 and "etag" not in past.headers


def test_a_case_file_is_exported_as_json_lines_that_verify(client, keys):
    from infrastructure.exports import Export, verify_export

    case = new_case(client, keys.worker)
    record(client, keys.worker, case["id"], type="seen", occurred_on="2021-01-01")
    response = client.get(f"/cases/{case['id']}/export", headers=keys.auditor)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    export = Export.read(response.text.splitlines())
    assert [e["version"] for e in export.events] == [1, 2]
    assert verify_export(export).ok
    unknown = client.get("/cases/6f1c2f4e-8a3b-4c2d-9e8f-0a1b2c3d4e5f/export", headers=keys.auditor)
    assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM
    assert client.get(f"/cases/{case['id']}/export", headers=keys.admin).status_code == 403


def test_the_register_as_of_a_day_and_known_at_an_instant_over_http(client, keys):
    case = new_case(client, keys.worker)
    record(
        client, keys.worker, case["id"], type="captured", occurred_on="2021-01-15", by_party="AZ"
    )
    record(
        client,
        keys.worker,
        case["id"],
        type="released",
        occurred_on="2021-07-03",
        by_party="AZ",
        to_party="AM",
    )
    summer = client.get(
        "/reports/summary",
        params={"group_by": "status", "as_of": "2021-07-01"},
        headers=keys.auditor,
    ).json()
    assert summer["groups"] == [{"value": "held", "count": 1}] and summer["as_of"] == "2021-07-01"
    now = client.get("/reports/summary", headers=keys.auditor).json()
    assert now["groups"] == [{"value": "repatriated", "count": 1}]
    listed = client.get(
        "/cases", params={"as_of": "2021-07-01", "held_by": "AZ"}, headers=keys.auditor
    ).json()
    assert [c["id"] for c in listed["items"]] == [case["id"]]
    assert listed["items"][0]["status"] == "held"
    before = client.get(
        "/reports/summary", params={"known_at": "2020-01-01T00:00:00Z"}, headers=keys.auditor
    ).json()
    assert before["total"] == 0
    bad = client.get("/reports/summary", params={"as_of": "2021-02-30"}, headers=keys.auditor)
    assert bad.status_code == 422


def test_known_at_means_the_same_instant_whatever_its_offset(client, keys):
    case = new_case(client, keys.worker)
    record(
        client, keys.worker, case["id"], type="captured", occurred_on="2021-01-15", by_party="AZ"
    )
    history = client.get(f"/cases/{case['id']}/history", headers=keys.auditor).json()
    from datetime import datetime, timedelta, timezone

    opened = datetime.fromisoformat(history["events"][0]["recorded_at"])
    utc = opened.astimezone(UTC).isoformat()
    east = opened.astimezone(timezone(timedelta(hours=2))).isoformat()
    west = opened.astimezone(timezone(timedelta(hours=-5))).isoformat()
    answers = [
        client.get(
            "/reports/summary",
            params={"group_by": "held_by", "known_at": when},
            headers=keys.auditor,
        ).json()["groups"]
        for when in (utc, east, west)
    ]
    assert answers == [[{"value": None, "count": 1}]] * 3
    listed = client.get("/cases", params={"known_at": east}, headers=keys.auditor)
    assert listed.status_code == 200 and len(listed.json()["items"]) == 1


def test_auditors_read_the_installations_public_key_that_signs_checkpoints(client, keys):
    published = client.get("/audit/key", headers=keys.auditor).json()
    made = client.post("/audit/checkpoints", headers=keys.admin).json()
    assert made["public_key"] == published["public_key"] and len(published["key_id"]) == 16
    assert client.get("/audit/key", headers=keys.worker).status_code == 403
