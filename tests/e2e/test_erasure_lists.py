"""Erasure and the negotiations' lists, beyond the current version: a person's entries
are redacted on every version of every list (the negotiations are found through
``casebook_negotiation_mentions``), as of past days and as known at past instants; the
erased case is no longer proposed as a candidate for any entry. And what is not a
person's: negotiation titles, what is given in return and the sources of agreements and
exchanges are sealed at rest with a key of the record's own, answered in clear, and no
person's erasure reaches them."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.book import Book as Casebook
from tests.conftest import Keys, new_case
from tests.e2e.test_erasure import (
    LISTED_AS,
    canaries_in,
    database_files,
    decoded_export,
    erase,
    names_in,
    open_person,
)
from tests.e2e.test_negotiations import exchange, handover, held, negotiation

# Someone else on the lists: their entries must come through every erasure untouched.
NOBODY = {"name": "Nobodyan Vahe", "nationality": "AM"}

# Invented words that appear nowhere else (nor in this code's dependencies): finding one
# of them in a file means it is the record's own text, in clear.
TITLE = "Zyrphanthelor talks on the Vexmordian detainees"
CONSIDERATION = "maps of the Quorvelline minefields"
EXCHANGE_CONSIDERATION = "bodies returned from the Trastivanka ravine"
AGREEMENT_SOURCE = {"kind": "party", "name": "Brandulvex ministry", "reference": "note Kelvornis-7"}
EXCHANGE_SOURCE = {"kind": "family", "name": "Mrs Ombrezzialov", "reference": "call Yrtaveska-12"}
ANNOUNCED_SOURCE = {"kind": "media", "name": "Plenthywarg press office"}
RECORD_WORDS = (
    "Zyrphanthelor",
    "Vexmordian",
    "Quorvelline",
    "Trastivanka",
    "Brandulvex",
    "Kelvornis",
    "Ombrezzialov",
    "Yrtaveska",
    "Plenthywarg",
)


def submit(client: TestClient, keys: Keys, n: dict[str, Any], **body: Any) -> dict[str, Any]:
    r = client.post(f"/negotiations/{n['id']}/lists", json=body, headers=keys.worker)
    assert r.status_code == 201, r.text
    answer: dict[str, Any] = r.json()
    return answer


def view(client: TestClient, headers: dict[str, str], n: dict[str, Any], **params: str):
    r = client.get(f"/negotiations/{n['id']}", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r


def words_in(blob: bytes) -> list[str]:
    return [w for w in RECORD_WORDS if any(f.encode() in blob for f in (w, w.lower(), w.upper()))]


# ---- old versions of a list -------------------------------------------------------------


def test_an_erasure_reaches_the_old_versions_of_a_list(client: TestClient, keys: Keys) -> None:
    """AZ's first list named the person (matched by name and date of birth); its second
    does not. After the erasure the first version, as of a day it was current and as
    known before the second came, shows the entry without name or date of birth; the
    current version, which never named them, is as it was."""
    cid = open_person(client, keys)["id"]
    other = new_case(client, keys.worker)["id"]
    n = negotiation(client, keys)
    first = submit(
        client,
        keys,
        n,
        submitted_by="AZ",
        submitted_on="2021-06-12",
        entries=[{"name": LISTED_AS, "nationality": "AM", "date_of_birth": "1987-03-29"}, NOBODY],
    )
    entries = first["list"]["entries"]
    assert entries[0]["match"]["result"] == "matched", entries[0]
    assert entries[0]["match"]["case_id"] == cid, entries[0]
    v1_known = first["updated_at"]
    submit(
        client,
        keys,
        n,
        submitted_by="AZ",
        submitted_on="2021-06-20",
        entries=[{"case_id": other}, NOBODY],
    )
    v1_day = {"as_of": "2021-06-15"}
    v1_instant = {"known_at": v1_known}
    # before the erasure, the old version names the person (the test is not vacuous)
    for params in (v1_day, v1_instant):
        then = view(client, keys.worker, n, **params)
        assert then.json()["lists"]["AZ"]["list_version"] == 1, params
        assert LISTED_AS in then.text and "1987-03-29" in then.text, params
    current_before = view(client, keys.worker, n).json()
    assert current_before["lists"]["AZ"]["list_version"] == 2
    assert names_in(json.dumps(current_before, ensure_ascii=False)) == []

    assert erase(client, keys.admin, cid).status_code == 200

    for headers in (keys.worker, keys.auditor):
        for params in (v1_day, v1_instant, {**v1_day, **v1_instant}):
            r = view(client, headers, n, **params)
            assert names_in(r.text) == [], params
            listed = r.json()["lists"]["AZ"]
            assert listed["list_version"] == 1, params
            gone, kept = listed["entries"]
            assert gone["name"] is None and gone["erased"] is True, (params, gone)
            assert "date_of_birth" not in gone and gone["nationality"] == "AM", (params, gone)
            assert gone["match"]["result"] == "matched" and gone["match"]["case_id"] == cid
            assert "key" not in gone and "sealed" not in gone, gone
            assert (kept["name"], kept["nationality"], kept.get("erased")) == (
                "Nobodyan Vahe",
                "AM",
                None,
            )
            assert listed["counts"]["matched"] == 1 and listed["counts"]["unmatched"] == 1
        # the current version never named them: its entries and reconciliation are as
        # they were
        now = view(client, headers, n)
        assert names_in(now.text) == []
        current = now.json()
        assert current["lists"] == current_before["lists"]
        assert current["reconciliation"] == current_before["reconciliation"]
        assert [e.get("case_id") for e in current["lists"]["AZ"]["entries"]] == [other, None]
        assert current["version"] == current_before["version"] + 1  # NamesErased
    # and a day before any list, as known now
    early = view(client, keys.worker, n, as_of="2021-06-01")
    assert early.json()["lists"] == {} and names_in(early.text) == []
    assert client.get("/audit/verify", headers=keys.auditor).json()["ok"] is True


def test_an_old_version_confirmed_to_the_person_loses_the_name_too(
    client: TestClient, keys: Keys
) -> None:
    """A name the register did not match, tied to the person by a case worker on a
    version that is no longer current: redacted on that version too."""
    cid = open_person(client, keys)["id"]
    n = negotiation(client, keys)
    misspelt = "Uli Hadrutsky"
    submit(
        client,
        keys,
        n,
        submitted_by="AZ",
        submitted_on="2021-06-12",
        entries=[{"name": misspelt}, NOBODY],
    )
    tie = {"party": "AZ", "list_version": 1, "entry": 0, "case_id": cid}
    r = client.post(f"/negotiations/{n['id']}/matches", json=tie, headers=keys.worker)
    assert r.status_code == 201, r.text
    confirmed_at = r.json()["updated_at"]
    submit(client, keys, n, submitted_by="AZ", submitted_on="2021-06-20", entries=[NOBODY])
    assert misspelt in view(client, keys.worker, n, as_of="2021-06-15").text

    assert erase(client, keys.admin, cid).status_code == 200

    for params in ({"as_of": "2021-06-15"}, {"known_at": confirmed_at}):
        r = view(client, keys.auditor, n, **params)
        assert names_in(r.text) == [] and misspelt not in r.text, params
        gone, kept = r.json()["lists"]["AZ"]["entries"]
        assert (gone["name"], gone["erased"]) == (None, True), params
        assert gone["match"]["result"] == "confirmed" and gone["match"]["case_id"] == cid
        assert kept["name"] == "Nobodyan Vahe"


# ---- candidates ---------------------------------------------------------------------------


def candidate_ids(entry: dict[str, Any]) -> list[str]:
    return [c["case_id"] for c in entry["match"].get("candidates", ())]


def test_an_erased_case_is_no_longer_a_candidate_on_any_version(
    client: TestClient, keys: Keys
) -> None:
    """Two namesakes are proposed for a name without a date of birth; erasing one takes
    it out of the candidates of every list version (inside a confirmed match's ``was``
    too), and the other stays. An entry whose only candidate was an erased case is
    unmatched."""
    person = {"family_name": "Sargsyan", "given_names": "Vardan"}
    a = new_case(client, keys.worker, **person)["id"]
    b = new_case(client, keys.worker, **person)["id"]
    # the only candidate for a name whose date of birth contradicts the register's
    c = new_case(
        client,
        keys.worker,
        family_name="Petrosyan",
        given_names="Hakob",
        date_of_birth="1980-01-01",
    )["id"]
    n = negotiation(client, keys)
    first = submit(
        client,
        keys,
        n,
        submitted_by="AM",
        submitted_on="2021-06-10",
        entries=[
            {"name": "Sargsian Vardan"},
            {"name": "Sargsian Vardan"},
            {"name": "Petrosian Hakob", "date_of_birth": "1979-05-05"},
        ],
    )
    listed = first["list"]["entries"]
    assert [e["match"]["result"] for e in listed] == ["candidates"] * 3, listed
    assert sorted(candidate_ids(listed[0])) == sorted([a, b])
    assert candidate_ids(listed[2]) == [c], listed[2]
    tie = {"party": "AM", "list_version": 1, "entry": 1, "case_id": b}
    r = client.post(f"/negotiations/{n['id']}/matches", json=tie, headers=keys.worker)
    assert r.status_code == 201, r.text
    was = r.json()["list"]["entries"][1]["match"]["was"]
    assert sorted(c["case_id"] for c in was["candidates"]) == sorted([a, b])
    second = submit(
        client,
        keys,
        n,
        submitted_by="AM",
        submitted_on="2021-06-20",
        entries=[{"name": "Sargsian Vardan"}],
    )
    assert sorted(candidate_ids(second["list"]["entries"][0])) == sorted([a, b])
    before = view(client, keys.worker, n).json()
    assert {x["case_id"] for x in before["reconciliation"]["candidates"][0]["candidates"]} == {
        a,
        b,
    }

    assert erase(client, keys.admin, a).status_code == 200
    assert erase(client, keys.admin, c).status_code == 200

    for headers in (keys.worker, keys.auditor):
        # the current version: b alone is proposed, in the list and the reconciliation
        now = view(client, headers, n)
        assert a not in now.text and c not in now.text
        current = now.json()
        [entry] = current["lists"]["AM"]["entries"]
        assert entry["name"] == "Sargsian Vardan" and entry["match"]["result"] == "candidates"
        assert candidate_ids(entry) == [b]
        rec = current["reconciliation"]
        assert [x["case_id"] for x in rec["candidates"][0]["candidates"]] == [b]
        assert [x["case_id"] for x in rec["unmatched"][0]["candidates"]] == [b]
        # the first version, as of a day it was current: in every entry
        old = view(client, headers, n, as_of="2021-06-15")
        assert a not in old.text and c not in old.text
        proposed, confirmed, alone = old.json()["lists"]["AM"]["entries"]
        assert proposed["match"]["result"] == "candidates" and candidate_ids(proposed) == [b]
        assert confirmed["match"]["result"] == "confirmed" and confirmed["match"]["case_id"] == b
        assert confirmed["name"] == "Sargsian Vardan"  # tied to b, who was not erased
        assert [x["case_id"] for x in confirmed["match"]["was"]["candidates"]] == [b]
        assert alone["match"] == {"result": "unmatched"}, alone
        assert alone["name"] == "Petrosian Hakob"  # the list's spelling: nobody's case
        counts = old.json()["lists"]["AM"]["counts"]
        assert counts == {"matched": 0, "confirmed": 1, "candidates": 1, "unmatched": 1}
        rec = old.json()["reconciliation"]
        assert [
            (u["entry"], [x["case_id"] for x in u.get("candidates", [])]) for u in rec["unmatched"]
        ] == [(0, [b]), (2, [])]
    # the namesake left is still a candidate that can be confirmed
    tie = {"party": "AM", "list_version": 2, "entry": 0, "case_id": b}
    r = client.post(f"/negotiations/{n['id']}/matches", json=tie, headers=keys.worker)
    assert r.status_code == 201, r.text
    assert [x["case_id"] for x in r.json()["list"]["entries"][0]["match"]["was"]["candidates"]] == [
        b
    ]


def test_an_erased_candidate_is_not_shown_as_known_before_the_erasure(
    client: TestClient, keys: Keys
) -> None:
    """The pairing of a listed name with a person is that person's: a view as known at
    an instant before the erasure (a replay of the negotiation's older events) must not
    bring the erased case back among the candidates either."""
    person = {"family_name": "Sargsyan", "given_names": "Vardan"}
    a = new_case(client, keys.worker, **person)["id"]
    b = new_case(client, keys.worker, **person)["id"]
    n = negotiation(client, keys)
    listed = submit(
        client,
        keys,
        n,
        submitted_by="AM",
        submitted_on="2021-06-10",
        entries=[{"name": "Sargsian Vardan"}],
    )
    assert sorted(candidate_ids(listed["list"]["entries"][0])) == sorted([a, b])
    instant = listed["updated_at"]
    assert erase(client, keys.admin, a).status_code == 200
    for params in ({"known_at": instant}, {"known_at": instant, "as_of": "2021-06-15"}):
        r = view(client, keys.worker, n, **params)
        got = r.json()
        [entry] = got["lists"]["AM"]["entries"]
        rec = got["reconciliation"]
        shown = {
            "lists": candidate_ids(entry),
            "reconciliation.candidates": [x["case_id"] for x in rec["candidates"][0]["candidates"]],
            "reconciliation.unmatched": [x["case_id"] for x in rec["unmatched"][0]["candidates"]],
        }
        erased_shown = {where: a in ids for where, ids in shown.items()}
        assert shown == {where: [b] for where in shown}, (params, erased_shown)
        assert a not in r.text, params


# ---- the records' own text, sealed at rest ------------------------------------------------


def sealed_records(client: TestClient, keys: Keys) -> tuple[dict, dict, list[dict]]:
    """A negotiation with an invented title, an agreement with a consideration and a
    source, and an exchange with a family's source and a party's announced figure (with
    its source): the negotiation's view, the exchange and the people handed over."""
    people = [held(client, keys, family_name=f"Testyan{i}") for i in range(2)]
    n = negotiation(client, keys, title=TITLE)
    assert n["title"] == TITLE
    agreement = {
        "agreed_on": "2021-06-20",
        "transfers": [{"case_id": p["id"], "from_party": "AZ", "to_party": "AM"} for p in people],
        "consideration": [{"from_party": "AM", "to_party": "AZ", "description": CONSIDERATION}],
        "source": AGREEMENT_SOURCE,
    }
    r = client.post(f"/negotiations/{n['id']}/agreements", json=agreement, headers=keys.worker)
    assert r.status_code == 201, r.text
    assert r.json()["agreement"]["consideration"][0]["description"] == CONSIDERATION
    assert r.json()["agreement"]["source"] == AGREEMENT_SOURCE
    r = exchange(
        client,
        keys,
        [handover(p) for p in people],
        negotiation_id=n["id"],
        agreement=1,
        source=EXCHANGE_SOURCE,
        consideration=[
            {"from_party": "AZ", "to_party": "AM", "description": EXCHANGE_CONSIDERATION}
        ],
        announced=[
            {"by_party": "AZ", "count": 2, "source": ANNOUNCED_SOURCE},
            {"by_party": "AM", "count": 3},
        ],
    )
    assert r.status_code == 201, r.text
    assert r.json()["source"] == EXCHANGE_SOURCE
    return n, r.json(), people


def assert_records_answered(client: TestClient, keys: Keys, n: dict, ex: dict) -> None:
    """The API answers the records' text in clear."""
    for headers in (keys.worker, keys.auditor):
        got = view(client, headers, n).json()
        assert got["title"] == TITLE
        [agreement] = got["agreements"]
        assert [c["description"] for c in agreement["consideration"]] == [CONSIDERATION]
        assert agreement["source"] == AGREEMENT_SOURCE
        assert got["exchanges"] and ex["id"] in json.dumps(got["exchanges"])
        r = client.get(f"/exchanges/{ex['id']}", headers=headers)
        assert r.status_code == 200, r.text
        shown = r.json()
        assert shown["source"] == EXCHANGE_SOURCE
        assert [c["description"] for c in shown["consideration"]] == [EXCHANGE_CONSIDERATION]
        assert [a.get("source") for a in shown["announced"]] == [ANNOUNCED_SOURCE, None]
        assert [(a["count"], a["recorded"]) for a in shown["announced"]] == [(2, 2), (3, 2)]
        listed = client.get("/exchanges", params={"negotiation": n["id"]}, headers=headers)
        assert listed.status_code == 200, listed.text
        assert [e["source"] for e in listed.json()["items"]] == [EXCHANGE_SOURCE]
        listed = client.get("/negotiations", headers=headers)
        assert listed.status_code == 200, listed.text
        assert [i["title"] for i in listed.json()["items"]] == [TITLE]


def stored_states(settings: Settings) -> list[tuple[str, dict[str, Any], bytes]]:
    """Every stored event of the register (an export's lines): topic, state, raw bytes."""
    store = Store(settings)
    try:
        lines = "".join(Casebook(store).export(None)).splitlines()
    finally:
        store.close()
    out = []
    for line in lines:
        item = json.loads(line)
        if "state" in item:
            raw = base64.b64decode(item["state"])
            out.append((item["topic"], json.loads(raw), raw))
    return out


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_the_records_text_is_sealed_at_rest(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    n, ex, _ = sealed_records(client, keys)
    assert_records_answered(client, keys, n, ex)

    # nowhere in the database's files, as they are (WAL included: no checkpoint first)
    files = database_files(settings)
    assert "casebook.sqlite" in files
    for name, blob in files.items():
        assert words_in(blob) == [], f"{words_in(blob)} in clear in {name}"
    # ... though what is kept in clear (the exchange's place) is found there: the files
    # read hold the events (the check above is not vacuous)
    assert any(b"a border crossing" in blob for blob in files.values()), sorted(files)

    # nor in the stored events, an export's or the events table's
    states = stored_states(settings)
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for topic, state, raw in states:
        assert words_in(raw) == [], (topic, words_in(raw))
        by_topic.setdefault(topic.rsplit(".", 1)[-1].rsplit(":", 1)[-1], []).append(state)
    for kind in ("Opened", "AgreementReached", "Recorded"):
        sealed = [s for s in by_topic.get(kind, []) if "key" in s]
        assert sealed, f"no {kind} event carries a record key: {sorted(by_topic)}"
        for state in sealed:
            assert state["sealed"] and state["key"], state
    [opened] = [s for s in by_topic["Opened"] if "title" in s]
    assert opened["title"] == "" and opened["key"]
    [agreed] = by_topic["AgreementReached"]
    assert [set(c) for c in agreed["consideration"]] == [{"from_party", "to_party"}]
    assert agreed["source"] == {"kind": "party"}
    [recorded] = by_topic["Recorded"]
    assert recorded["place"] == "a border crossing"  # in clear: not the record's text
    assert recorded["source"] == {"kind": "family"}
    assert [a.get("source") for a in recorded["announced"]] == [{"kind": "media"}, None]
    assert [set(c) for c in recorded["consideration"]] == [{"from_party", "to_party"}]
    # each record its own key
    assert len({opened["key"], agreed["key"], recorded["key"]}) == 3
    store = Store(settings)
    try:
        register_file = "".join(Casebook(store).export(None))
    finally:
        store.close()
    assert words_in(decoded_export(register_file)) == []


def test_no_persons_erasure_reaches_the_records_text(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    """Erasing people handed over in the exchange, and the person named on the list,
    leaves the negotiation's and the exchange's own text as it was."""
    n, ex, people = sealed_records(client, keys)
    cid = open_person(client, keys)["id"]
    submit(
        client,
        keys,
        n,
        submitted_by="AZ",
        submitted_on="2021-06-12",
        entries=[{"name": LISTED_AS, "nationality": "AM", "date_of_birth": "1987-03-29"}],
    )
    for case_id in (cid, people[0]["id"]):
        assert erase(client, keys.admin, case_id).status_code == 200
    assert_records_answered(client, keys, n, ex)
    r = view(client, keys.worker, n)
    assert names_in(r.text) == [] and r.json()["lists"]["AZ"]["entries"][0]["erased"] is True
    for params in ({"as_of": "2021-06-25"}, {"known_at": ex["recorded_at"]}):
        then = view(client, keys.worker, n, **params).json()
        assert then["title"] == TITLE, params
        assert then["agreements"][0]["consideration"][0]["description"] == CONSIDERATION
    assert client.get("/audit/verify", headers=keys.auditor).json()["ok"] is True
    if settings.database_url is None:  # SQLite: still nothing of it in the files
        for name, blob in database_files(settings).items():
            assert words_in(blob) == [] and canaries_in(blob) == [], name
