"""Negotiations, lists, agreements and exchanges through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import SOURCE, Keys, new_case, record

PARTY_SOURCE = {"kind": "party", "name": "AZ", "reported_on": "2021-07-03"}


def held(client: TestClient, keys: Keys, by: str = "AZ", **person: str) -> dict:
    """An invented person captured by ``by`` on 2021-01-05."""
    case = new_case(client, keys.worker, **person)
    r = record(
        client, keys.worker, case["id"], type="captured", occurred_on="2021-01-05", by_party=by
    )
    assert r.status_code == 201, r.text
    return r.json()


def negotiation(client: TestClient, keys: Keys, **extra: object) -> dict:
    body = {
        "title": "Exchange talks",
        "parties": ["AM", "AZ"],
        "mediators": ["RU"],
        "principle": "all_for_all",
        "opened_on": "2021-06-01",
        **extra,
    }
    r = client.post("/negotiations", json=body, headers=keys.worker)
    assert r.status_code == 201, r.text
    return r.json()


def exchange(client: TestClient, keys: Keys, handovers: list[dict], **extra: object):
    body = {
        "occurred_on": "2021-07-03",
        "place": "a border crossing",
        "mediators": ["RU"],
        "handovers": handovers,
        "source": PARTY_SOURCE,
        **extra,
    }
    return client.post("/exchanges", json=body, headers=keys.worker)


def handover(case: dict, outcome: str = "handed_over", **extra: object) -> dict:
    return {
        "case_id": case["id"],
        "from_party": "AZ",
        "to_party": "AM",
        "outcome": outcome,
        **extra,
    }


def test_an_exchange_repatriates_everyone_in_it_in_one_write(
    client: TestClient, keys: Keys
) -> None:
    people = [held(client, keys, family_name=f"Testyan{n}") for n in range(3)]
    n = negotiation(client, keys)
    r = exchange(client, keys, [handover(p) for p in people], negotiation_id=n["id"])
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["Location"] == f"/exchanges/{body['id']}"
    assert body["recorded"]["handed_over"] == 3
    for p in people:
        view = client.get(f"/cases/{p['id']}", headers=keys.worker).json()
        assert view["status"] == "repatriated"
        assert view["held_by"] is None
        assert view["negotiations"] == [n["id"]]
        history = client.get(f"/cases/{p['id']}/history", headers=keys.auditor).json()
        last = history["events"][-1]
        assert last["type"] == "handed_over"
        assert last["fields"]["exchange_id"] == body["id"]
    assert client.get(f"/exchanges/{body['id']}", headers=keys.auditor).json() == body
    listed = client.get(f"/cases?negotiation={n['id']}", headers=keys.worker).json()["items"]
    assert {c["id"] for c in listed} == {p["id"] for p in people}


def test_an_exchange_with_one_case_that_cannot_take_part_writes_nothing(
    client: TestClient, keys: Keys
) -> None:
    ok = held(client, keys, family_name="Testyan")
    dead = held(client, keys, family_name="Probayev")
    record(client, keys.worker, dead["id"], type="died", occurred_on="2021-03-01")
    elsewhere = held(client, keys, by="AM", family_name="Samplov")
    before = client.get("/audit/verify", headers=keys.auditor).json()["events"]
    r = exchange(client, keys, [handover(ok), handover(dead), handover(elsewhere)])
    assert r.status_code == 409, r.text
    problem = r.json()
    assert problem["type"].endswith("invalid-transition")
    assert {c["case_id"] for c in problem["cases"]} == {dead["id"], elsewhere["id"]}
    assert client.get("/audit/verify", headers=keys.auditor).json()["events"] == before
    assert client.get(f"/cases/{ok['id']}", headers=keys.worker).json()["status"] == "held"
    assert client.get("/exchanges", headers=keys.worker).json()["items"] == []


def test_a_stale_expected_version_refuses_the_whole_exchange(
    client: TestClient, keys: Keys
) -> None:
    a = held(client, keys)
    b = held(client, keys, family_name="Probayev")
    r = exchange(
        client, keys, [handover(a, expected_version=a["version"]), handover(b, expected_version=1)]
    )
    assert r.status_code == 409
    assert r.json()["type"].endswith("version-conflict")
    assert [c["case_id"] for c in r.json()["cases"]] == [b["id"]]
    assert r.json()["cases"][0]["current_version"] == b["version"]


def test_the_same_person_cannot_be_handed_over_twice(client: TestClient, keys: Keys) -> None:
    a = held(client, keys)
    assert exchange(client, keys, [handover(a)]).status_code == 201
    again = exchange(client, keys, [handover(a)], occurred_on="2021-07-04")
    assert again.status_code == 409
    assert "already repatriated" in again.json()["cases"][0]["detail"]
    earlier = exchange(client, keys, [handover(a)], occurred_on="2021-07-01")
    assert earlier.status_code == 409
    assert "already handed over on 2021-07-03" in earlier.json()["cases"][0]["detail"]


def test_a_person_recorded_unwilling_is_not_handed_over_but_may_refuse(
    client: TestClient, keys: Keys
) -> None:
    a = held(client, keys)
    record(
        client,
        keys.worker,
        a["id"],
        type="willingness_verified",
        occurred_on="2021-07-01",
        by="ICRC",
        result="unwilling",
    )
    r = exchange(client, keys, [handover(a)])
    assert r.status_code == 409
    assert "unwilling" in r.json()["cases"][0]["detail"]
    r = exchange(client, keys, [handover(a, "refused", refused_by="person")])
    assert r.status_code == 201, r.text
    view = client.get(f"/cases/{a['id']}", headers=keys.worker).json()
    assert (view["status"], view["held_by"]) == ("held", "AZ")


def test_a_retried_exchange_with_the_same_key_is_recorded_once(
    client: TestClient, keys: Keys
) -> None:
    a = held(client, keys)
    headers = {**keys.worker, "Idempotency-Key": "exchange-1"}
    body = {"occurred_on": "2021-07-03", "handovers": [handover(a)], "source": SOURCE}
    first = client.post("/exchanges", json=body, headers=headers)
    second = client.post("/exchanges", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert len(client.get("/exchanges", headers=keys.worker).json()["items"]) == 1


def test_lists_match_names_across_scripts_and_reconcile(client: TestClient, keys: Keys) -> None:
    sedrak = held(
        client, keys, family_name="Grigoryan", given_names="Sedrak", date_of_birth="1999-03-02"
    )
    other = held(
        client, keys, family_name="Asgarov", given_names="Nijat", nationality="AZ", by="AM"
    )
    unlisted = held(client, keys, family_name="Probyan", given_names="Levon")
    n = negotiation(client, keys)
    am = client.post(
        f"/negotiations/{n['id']}/lists",
        json={
            "submitted_by": "AM",
            "submitted_on": "2021-06-10",
            "entries": [
                {"name": "Григорян Седрак", "date_of_birth": "1999-03-02"},
                {"name": "Nobodyan Invented"},
            ],
        },
        headers=keys.worker,
    )
    assert am.status_code == 201, am.text
    entries = am.json()["list"]["entries"]
    assert entries[0]["match"] == {
        "result": "matched",
        "case_id": sedrak["id"],
        "score": entries[0]["match"]["score"],
    }
    assert entries[1]["match"]["result"] == "unmatched"
    az = client.post(
        f"/negotiations/{n['id']}/lists",
        json={
            "submitted_by": "AZ",
            "submitted_on": "2021-06-11",
            "entries": [{"case_id": other["id"]}, {"case_id": sedrak["id"]}],
        },
        headers=keys.worker,
    )
    assert az.status_code == 201, az.text
    view = client.get(f"/negotiations/{n['id']}", headers=keys.auditor).json()
    rec = view["reconciliation"]
    assert [e["case_id"] for e in rec["on_every_list"]] == [sedrak["id"]]
    assert [e["case_id"] for e in rec["only_on"]["AZ"]] == [other["id"]]
    assert rec["only_on"]["AM"] == []
    assert [e["name"] for e in rec["unmatched"]] == ["Nobodyan Invented"]
    assert {e["case_id"] for e in rec["outstanding"]} == {sedrak["id"], other["id"], unlisted["id"]}
    r = exchange(client, keys, [handover(sedrak)], negotiation_id=n["id"])
    assert r.status_code == 201
    rec = client.get(f"/negotiations/{n['id']}", headers=keys.auditor).json()["reconciliation"]
    assert [e["case_id"] for e in rec["handed_over"]] == [sedrak["id"]]
    assert rec["handed_over_without_willingness_check"] == [sedrak["id"]]
    assert {e["case_id"] for e in rec["outstanding"]} == {other["id"], unlisted["id"]}
    summary = client.get("/reports/summary", headers=keys.auditor).json()
    assert summary["returned_by_negotiation"] == [
        {"negotiation_id": n["id"], "returned": 1, "handed_over": 1}
    ]
    assert summary["exchanges"] == [
        {
            "from_party": "AZ",
            "to_party": "AM",
            "exchanges": 1,
            "handed_over": 1,
            "refused": 0,
            "absent": 0,
        }
    ]
    before = client.get("/reports/summary?as_of=2021-07-02", headers=keys.auditor).json()
    assert before["exchanges"] == [] and before["returned_by_negotiation"] == []


def test_confirming_a_candidate_records_the_spelling_as_an_alias(
    client: TestClient, keys: Keys
) -> None:
    a = held(client, keys, family_name="Babayev", given_names="Elvin", nationality="AZ", by="AM")
    b = held(client, keys, family_name="Babayev", given_names="Elvin", nationality="AZ", by="AM")
    n = negotiation(client, keys)
    r = client.post(
        f"/negotiations/{n['id']}/lists",
        json={
            "submitted_by": "AZ",
            "submitted_on": "2021-06-10",
            "entries": [{"name": "Babaeyev Elvin"}],
        },
        headers=keys.worker,
    )
    match = r.json()["list"]["entries"][0]["match"]
    assert match["result"] == "candidates"
    assert {c["case_id"] for c in match["candidates"]} == {a["id"], b["id"]}
    r = client.post(
        f"/negotiations/{n['id']}/matches",
        json={"party": "AZ", "list_version": 1, "entry": 0, "case_id": b["id"]},
        headers=keys.worker,
    )
    assert r.status_code == 201, r.text
    assert r.json()["list"]["entries"][0]["match"]["result"] == "confirmed"
    view = client.get(f"/cases/{b['id']}", headers=keys.worker).json()
    assert "Babaeyev Elvin" in view["person"]["aliases"]
    assert view["negotiations"] == [n["id"]]


def test_an_agreement_with_consideration_and_staged_exchanges(
    client: TestClient, keys: Keys
) -> None:
    people = [held(client, keys, family_name=f"Testyan{i}") for i in range(4)]
    n = negotiation(client, keys)
    r = client.post(
        f"/negotiations/{n['id']}/agreements",
        json={
            "agreed_on": "2021-06-20",
            "transfers": [
                {"case_id": p["id"], "from_party": "AZ", "to_party": "AM"} for p in people
            ],
            "consideration": [
                {"from_party": "AM", "to_party": "AZ", "description": "minefield maps"}
            ],
        },
        headers=keys.worker,
    )
    assert r.status_code == 201, r.text
    assert r.json()["agreement"]["number"] == 1
    assert (
        exchange(
            client, keys, [handover(p) for p in people[:2]], negotiation_id=n["id"], agreement=1
        ).status_code
        == 201
    )
    assert (
        exchange(
            client,
            keys,
            [handover(p) for p in people[2:]],
            negotiation_id=n["id"],
            agreement=1,
            occurred_on="2021-07-10",
        ).status_code
        == 201
    )
    rec = client.get(f"/negotiations/{n['id']}", headers=keys.worker).json()["reconciliation"]
    assert len(rec["agreed"]) == 4 and len(rec["handed_over"]) == 4 and rec["outstanding"] == []
    listed = client.get(f"/exchanges?negotiation={n['id']}", headers=keys.worker).json()["items"]
    assert [e["occurred_on"] for e in listed] == ["2021-07-03", "2021-07-10"]


def test_announced_figures_are_kept_beside_the_recorded_count(
    client: TestClient, keys: Keys
) -> None:
    people = [held(client, keys, family_name=f"Testyan{i}") for i in range(3)]
    r = exchange(
        client,
        keys,
        [handover(p) for p in people],
        announced=[{"by_party": "AZ", "count": 2}, {"by_party": "AM", "count": 4}],
    )
    assert r.status_code == 201
    assert [(a["count"], a["recorded"], a["difference"]) for a in r.json()["announced"]] == [
        (2, 3, -1),
        (4, 3, 1),
    ]


def test_an_announced_figure_about_one_direction_is_set_beside_that_direction(
    client: TestClient, keys: Keys
) -> None:
    ours = held(client, keys)
    theirs = held(client, keys, by="AM", family_name="Samplov", nationality="AZ")
    swap = [handover(ours), {**handover(theirs), "from_party": "AM", "to_party": "AZ"}]
    announced = [
        {"by_party": "AZ", "count": 1, "from_party": "AM", "to_party": "AZ"},
        {"by_party": "AM", "count": 3},
    ]
    r = exchange(client, keys, swap, announced=announced)
    assert r.status_code == 201, r.text
    assert [(a["recorded"], a["difference"]) for a in r.json()["announced"]] == [(1, 0), (2, 1)]


def test_a_handover_to_a_third_country_is_handed_over_but_not_returned(
    client: TestClient, keys: Keys
) -> None:
    home, away = held(client, keys), held(client, keys, family_name="Probayev")
    n = negotiation(client, keys)
    third = {**handover(away), "to_party": "TR"}
    assert (
        exchange(client, keys, [handover(home), third], negotiation_id=n["id"]).status_code == 201
    )
    assert client.get(f"/cases/{away['id']}", headers=keys.worker).json()["status"] == "released"
    summary = client.get("/reports/summary", headers=keys.worker).json()
    assert summary["returned_by_negotiation"] == [
        {"negotiation_id": n["id"], "returned": 1, "handed_over": 2}
    ]


def test_a_retracted_handover_no_longer_counts(client: TestClient, keys: Keys) -> None:
    a = held(client, keys)
    n = negotiation(client, keys)
    ex = exchange(client, keys, [handover(a)], negotiation_id=n["id"]).json()
    version = ex["handovers"][0]["version"]
    r = record(
        client, keys.worker, a["id"], type="retracted", version=version, reason="wrong person"
    )
    assert r.status_code == 201 and r.json()["status"] == "held"
    assert (
        client.get(f"/exchanges/{ex['id']}", headers=keys.worker).json()["handovers"][0]["standing"]
        is False
    )
    rec = client.get(f"/negotiations/{n['id']}", headers=keys.worker).json()["reconciliation"]
    assert rec["handed_over"] == [] and [e["case_id"] for e in rec["outstanding"]] == [a["id"]]


def test_bad_exchanges_are_refused_with_named_fields(client: TestClient, keys: Keys) -> None:
    a = held(client, keys)
    r = exchange(client, keys, [handover(a), handover(a)])
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "handovers[1].case_id"
    r = exchange(client, keys, [{**handover(a), "to_party": "AZ"}])
    assert r.status_code == 422
    r = exchange(client, keys, [handover(a)], negotiation_id="00000000-0000-4000-8000-000000000000")
    assert r.status_code == 404
    r = exchange(client, keys, [{**handover(a), "status": "repatriated"}])
    assert r.status_code == 422
    assert client.get(f"/cases/{a['id']}", headers=keys.worker).json()["status"] == "held"


def test_an_auditor_reads_negotiations_but_never_writes(client: TestClient, keys: Keys) -> None:
    n = negotiation(client, keys)
    assert client.get(f"/negotiations/{n['id']}", headers=keys.auditor).status_code == 200
    r = client.post("/negotiations", json={}, headers=keys.auditor)
    assert r.status_code == 403


def test_the_reconciliation_as_of_a_day_and_as_known_at_an_instant(
    client: TestClient, keys: Keys
) -> None:
    a = held(client, keys)
    b = held(client, keys, family_name="Probayev")
    n = negotiation(client, keys)
    client.post(
        f"/negotiations/{n['id']}/lists",
        json={
            "submitted_by": "AM",
            "submitted_on": "2021-06-10",
            "entries": [{"case_id": a["id"]}, {"case_id": b["id"]}],
        },
        headers=keys.worker,
    )
    listed_at = client.get(f"/negotiations/{n['id']}", headers=keys.auditor).json()["updated_at"]
    assert exchange(client, keys, [handover(a)], negotiation_id=n["id"]).status_code == 201
    url = f"/negotiations/{n['id']}"
    now = client.get(url, headers=keys.auditor).json()["reconciliation"]
    assert [e["case_id"] for e in now["handed_over"]] == [a["id"]]
    # The world on 1 July 2021, as known now: both listed, both held, nobody handed over.
    before = client.get(f"{url}?as_of=2021-07-01", headers=keys.auditor).json()
    assert before["as_of"] == "2021-07-01"
    assert before["reconciliation"]["handed_over"] == []
    assert {e["case_id"] for e in before["reconciliation"]["outstanding"]} == {a["id"], b["id"]}
    assert before["exchanges"] == []
    # Before the lists were submitted (in the world), nobody was on them.
    early = client.get(f"{url}?as_of=2021-06-01", headers=keys.auditor).json()
    assert early["lists"] == {} and early["reconciliation"]["only_on"] == {"AM": [], "AZ": []}
    # What the register knew when the list was recorded: the exchange was not yet known.
    known = client.get(url, params={"known_at": listed_at}, headers=keys.auditor).json()
    assert known["reconciliation"]["handed_over"] == []
    assert [e["case_id"] for e in known["reconciliation"]["only_on"]["AM"]] == sorted(
        [a["id"], b["id"]]
    )
    # Before the negotiation was recorded, the register knew of no such negotiation.
    r = client.get(url, params={"known_at": "2020-01-01T00:00:00Z"}, headers=keys.auditor)
    assert r.status_code == 404


def test_a_retried_list_submission_answers_the_same_and_records_once(
    client: TestClient, keys: Keys
) -> None:
    a = held(client, keys)
    n = negotiation(client, keys)
    body = {"submitted_by": "AM", "submitted_on": "2021-06-10", "entries": [{"case_id": a["id"]}]}
    headers = {**keys.worker, "Idempotency-Key": "list-1"}
    first = client.post(f"/negotiations/{n['id']}/lists", json=body, headers=headers)
    again = client.post(f"/negotiations/{n['id']}/lists", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert client.get(f"/negotiations/{n['id']}", headers=keys.worker).json()["version"] == 2
    other = {**body, "submitted_on": "2021-06-11"}
    r = client.post(f"/negotiations/{n['id']}/lists", json=other, headers=headers)
    assert r.status_code == 422 and r.json()["type"].endswith("idempotency-key-reused")


def test_a_list_naming_an_unknown_case_is_refused_whole(client: TestClient, keys: Keys) -> None:
    n = negotiation(client, keys)
    body = {
        "submitted_by": "AM",
        "submitted_on": "2021-06-10",
        "entries": [{"name": "Testyan Aram"}, {"case_id": "00000000-0000-4000-8000-000000000000"}],
    }
    r = client.post(f"/negotiations/{n['id']}/lists", json=body, headers=keys.worker)
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "entries[1].case_id", "message": "no such case"}]
    assert client.get(f"/negotiations/{n['id']}", headers=keys.worker).json()["lists"] == {}
    body = {**body, "submitted_by": "TR", "entries": [{"name": "Testyan Aram"}]}
    r = client.post(f"/negotiations/{n['id']}/lists", json=body, headers=keys.worker)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "submitted_by"


def test_a_retried_exchange_answers_exactly_the_first_answer(
    client: TestClient, keys: Keys
) -> None:
    a = held(client, keys)
    headers = {**keys.worker, "Idempotency-Key": "exchange-2"}
    body = {"occurred_on": "2021-07-03", "handovers": [handover(a)], "source": SOURCE}
    first = client.post("/exchanges", json=body, headers=headers)
    again = client.post("/exchanges", json=body, headers=headers)
    assert first.json() == again.json() and first.headers["ETag"] == again.headers["ETag"]
    assert again.json()["handovers"][0]["version"] == 3


def test_a_handover_dated_before_recorded_custody_is_refused(
    client: TestClient, keys: Keys
) -> None:
    a = held(client, keys)
    visit = {"occurred_on": "2021-08-10", "by": "ICRC", "held_by": "AZ"}
    assert record(client, keys.worker, a["id"], type="visited", **visit).status_code == 201
    r = exchange(client, keys, [handover(a)])  # 3 July, before the visit in custody
    assert r.status_code == 409
    assert "after this exchange" in r.json()["cases"][0]["detail"]
    assert exchange(client, keys, [handover(a)], occurred_on="2021-08-11").status_code == 201


def test_a_person_unwilling_to_go_home_may_be_handed_to_a_third_country(
    client: TestClient, keys: Keys
) -> None:
    a = held(client, keys)
    check = {"occurred_on": "2021-07-01", "by": "ICRC", "result": "unwilling"}
    record(client, keys.worker, a["id"], type="willingness_verified", **check)
    assert exchange(client, keys, [handover(a)]).status_code == 409
    r = exchange(client, keys, [{**handover(a), "to_party": "FR"}])
    assert r.status_code == 201, r.text
    assert client.get(f"/cases/{a['id']}", headers=keys.worker).json()["status"] == "released"


def test_exchange_parties_and_agreements_must_belong_to_the_negotiation(
    client: TestClient, keys: Keys
) -> None:
    a = held(client, keys)
    r = exchange(client, keys, [handover(a)], agreement=1)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "agreement"
    n = negotiation(client, keys, parties=["GE", "TR"])
    r = exchange(client, keys, [handover(a)], negotiation_id=n["id"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "handovers[0]"
    assert client.get(f"/cases/{a['id']}", headers=keys.worker).json()["status"] == "held"


def test_a_list_that_arrives_late_does_not_replace_a_newer_one(
    client: TestClient, keys: Keys
) -> None:
    a = held(client, keys)
    b = held(client, keys, family_name="Probayev")
    n = negotiation(client, keys)
    url = f"/negotiations/{n['id']}/lists"
    newer = {"submitted_by": "AM", "submitted_on": "2021-06-20", "entries": [{"case_id": a["id"]}]}
    older = {"submitted_by": "AM", "submitted_on": "2021-06-10", "entries": [{"case_id": b["id"]}]}
    assert client.post(url, json=newer, headers=keys.worker).status_code == 201
    assert client.post(url, json=older, headers=keys.worker).status_code == 201
    view = client.get(f"/negotiations/{n['id']}", headers=keys.worker).json()
    assert view["lists"]["AM"]["submitted_on"] == "2021-06-20"
    assert [e["case_id"] for e in view["reconciliation"]["only_on"]["AM"]] == [a["id"]]
    then = client.get(f"/negotiations/{n['id']}?as_of=2021-06-15", headers=keys.worker).json()
    assert [e["case_id"] for e in then["reconciliation"]["only_on"]["AM"]] == [b["id"]]


def test_names_with_candidates_stay_unmatched_with_their_candidates(
    client: TestClient, keys: Keys
) -> None:
    a = new_case(client, keys.worker, family_name="Sargsyan", given_names="Vardan")
    b = new_case(client, keys.worker, family_name="Sargsyan", given_names="Vardan")
    n = negotiation(client, keys)
    body = {
        "submitted_by": "AM",
        "submitted_on": "2021-06-10",
        "entries": [{"name": "Sargsian Vardan"}],
    }
    client.post(f"/negotiations/{n['id']}/lists", json=body, headers=keys.worker)
    rec = client.get(f"/negotiations/{n['id']}", headers=keys.worker).json()["reconciliation"]
    [entry] = rec["unmatched"]
    assert {c["case_id"] for c in entry["candidates"]} == {a["id"], b["id"]}
    assert rec["candidates"] == [entry]
