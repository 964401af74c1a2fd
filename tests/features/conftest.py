"""Steps shared by every feature under features/, in the words case workers and auditors use.

How the steps hand things on (always through ``target_fixture``, never a global):

- ``case``: the case a scenario is about (the view the register answered when it was
  opened); later steps use its ``id``.
- ``response``: the register's last answer. Every step that writes or reads sets it,
  and every ``Then`` checks what a user would see in it: status code, headers, the
  case view, the history.
- ``noted_moment``: an instant taken from an answer, for "as known at" questions.
- ``kept_checkpoint``: a signed checkpoint an auditor took away, to verify against later.
- ``case_file``: the lines of a case's export as the auditor holds them at home (and
  may find altered); ``verification``: what verifying that file offline answered.

Writing steps come in two tenses with one definition: "the case worker has recorded
that ..." (a ``Given``: the premise must have been accepted, or the scenario stops
there) and "the case worker records that ..." (a ``When``: the answer is kept, and a
``Then`` says what it should be).

Step functions are plain ``def``: pytest-bdd never runs ``async def`` steps.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
import parse
import pytest
from fastapi.testclient import TestClient
from pytest_bdd import given, parsers, then, when

from infrastructure.chain import Verification
from infrastructure.exports import Export, replay_from_export, verify_export

if TYPE_CHECKING:
    from tests.conftest import Keys

PROBLEM_JSON = "application/problem+json"


@pytest.fixture(autouse=True)
def _each_store(client: TestClient) -> None:
    """Puts ``client`` (hence the parametrised ``settings``) in every scenario's fixture
    closure at collection, so each scenario runs on SQLite and on PostgreSQL. Steps only
    ask for fixtures when they run, too late for pytest to parametrise them."""


# ---- the words steps are made of -------------------------------------------------


@parse.with_pattern(r"the case worker|the auditor")
def _actor(text: str) -> str:
    return "worker" if text == "the case worker" else "auditor"


@parse.with_pattern(r"the case worker|the auditor|the admin")
def _role(text: str) -> str:
    return text.removeprefix("the ").replace("case ", "")


@parse.with_pattern(r"[A-Z]{2}")
def _party(text: str) -> str:
    return text


@parse.with_pattern(r"\d{4}-\d{2}-\d{2}")
def _day(text: str) -> str:
    return text


@parse.with_pattern(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")
def _instant(text: str) -> str:
    return text


SOURCES: dict[str, dict[str, str]] = {
    "the ICRC": {"kind": "icrc", "name": "ICRC delegation", "reference": "visit report"},
    "the family": {"kind": "family", "name": "the person's family"},
    "the press": {"kind": "media", "name": "a daily newspaper"},
}


@parse.with_pattern(r"the ICRC|the family|the press|[A-Z]{2}")
def _source(text: str) -> dict[str, str]:
    return dict(SOURCES.get(text) or {"kind": "party", "name": text})


def _words_to_code(*choices: str) -> Callable[[str], str]:
    """A type matching words such as "prisoner of war", converted to ``prisoner_of_war``."""

    @parse.with_pattern("|".join(choices))
    def convert(text: str) -> str:
        return text.replace(" ", "_")

    return convert


def _tense(present: str, perfect: str) -> Callable[[str], bool]:
    """``True`` for the perfect ("has recorded": a premise), ``False`` for the present."""

    @parse.with_pattern(f"{present}|{perfect}")
    def convert(text: str) -> bool:
        return text == perfect

    return convert


TYPES = {
    "Actor": _actor,
    "Role": _role,
    "Party": _party,
    "Day": _day,
    "Instant": _instant,
    "Source": _source,
    "Category": _words_to_code(
        "prisoner of war", "civilian internee", "detained person", "missing person"
    ),
    "Classification": _words_to_code(
        "prisoner of war", "civilian internee", "criminal detainee", "other"
    ),
    "Records": _tense("records", "has recorded"),
    "Retracts": _tense("retracts", "has retracted"),
    "Closes": _tense("closes", "has closed"),
    "Reopens": _tense("reopens", "has reopened"),
}


def words(pattern: str) -> parsers.parse:
    """A step pattern in the scenario's words, with the typed arguments above."""
    return parsers.parse(pattern, extra_types=TYPES)


# ---- talking to the register -----------------------------------------------------


def headers_of(keys: Keys, actor: str) -> dict[str, str]:
    return keys.worker if actor == "worker" else keys.auditor


def role_headers(keys: Keys, role: str) -> dict[str, str]:
    """The key of "the case worker", "the auditor" or "the admin" (see the Role type)."""
    return {"worker": keys.worker, "auditor": keys.auditor, "admin": keys.admin}[role]


def write(
    client: TestClient,
    keys: Keys,
    actor: str,
    case: dict[str, Any],
    fact: dict[str, Any],
    premise: bool,
) -> httpx.Response:
    """Record one fact; a premise ("has recorded") must be accepted."""
    response = client.post(
        f"/cases/{case['id']}/events", json=fact, headers=headers_of(keys, actor)
    )
    if premise:
        assert response.status_code == 201, (
            f"the scenario's premise {fact['type']!r} was refused: {response.text}"
        )
    return response


def _split_name(name: str) -> dict[str, str]:
    given_names, _, family_name = name.rpartition(" ")
    person = {"family_name": family_name}
    if given_names:
        person["given_names"] = given_names
    return person


def _view(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    view: dict[str, Any] = response.json()
    return view


# ---- opening cases ---------------------------------------------------------------


@given(
    words(
        'the case worker has opened a case for the {category:Category} "{name}", '
        "a national of {nationality:Party}"
    ),
    target_fixture="case",
)
def case_opened(
    client: TestClient, keys: Keys, category: str, name: str, nationality: str
) -> dict[str, Any]:
    body = {
        "category": category,
        "person": {**_split_name(name), "nationality": nationality},
        "source": SOURCES["the family"],
    }
    response = client.post("/cases", json=body, headers=keys.worker)
    assert response.status_code == 201, response.text
    return _view(response)


@when(
    words(
        '{actor:Actor} opens a case for the {category:Category} "{name}", '
        "reported by {source:Source}, with these identity details:"
    ),
    target_fixture="response",
)
def open_case(
    client: TestClient,
    keys: Keys,
    actor: str,
    category: str,
    name: str,
    source: dict[str, str],
    datatable: list[list[str]],
) -> httpx.Response:
    header, *rows = datatable
    assert header == ["field", "value"], "the table's columns are: field | value"
    person: dict[str, Any] = {**_split_name(name), **dict(rows)}
    body = {"category": category, "person": person, "source": source}
    return client.post("/cases", json=body, headers=headers_of(keys, actor))


# ---- recording facts: one definition serves "has recorded" (Given) and "records" (When)

CAPTURED = (
    '{actor:Actor} {premise:Records} that {party:Party} captured the person at "{place}" '
    "on {day:Day}, according to {source:Source}"
)


@given(words(CAPTURED), target_fixture="response")
@when(words(CAPTURED), target_fixture="response")
def captured(
    client: TestClient,
    keys: Keys,
    case: dict[str, Any],
    actor: str,
    premise: bool,
    party: str,
    place: str,
    day: str,
    source: dict[str, str],
) -> httpx.Response:
    fact = {"type": "captured", "by_party": party, "place": place, "occurred_on": day}
    return write(client, keys, actor, case, {**fact, "source": source}, premise)


HELD = (
    '{actor:Actor} {premise:Records} that {party:Party} held the person at "{place}" '
    "on {day:Day}, according to {source:Source}"
)


@given(words(HELD), target_fixture="response")
@when(words(HELD), target_fixture="response")
def held(
    client: TestClient,
    keys: Keys,
    case: dict[str, Any],
    actor: str,
    premise: bool,
    party: str,
    place: str,
    day: str,
    source: dict[str, str],
) -> httpx.Response:
    fact = {"type": "held", "by_party": party, "place": place, "occurred_on": day}
    return write(client, keys, actor, case, {**fact, "source": source}, premise)


HANDED_OVER = (
    "{actor:Actor} {premise:Records} that {party:Party} handed the person over to "
    '{to_party:Party} at "{place}" on {day:Day}, according to {source:Source}'
)


@given(words(HANDED_OVER), target_fixture="response")
@when(words(HANDED_OVER), target_fixture="response")
def handed_over(
    client: TestClient,
    keys: Keys,
    case: dict[str, Any],
    actor: str,
    premise: bool,
    party: str,
    to_party: str,
    place: str,
    day: str,
    source: dict[str, str],
) -> httpx.Response:
    fact = {
        "type": "transferred",
        "by_party": party,
        "to_party": to_party,
        "to_place": place,
        "occurred_on": day,
        "source": source,
    }
    return write(client, keys, actor, case, fact, premise)


MOVED = (
    '{actor:Actor} {premise:Records} that {party:Party} moved the person to "{place}" '
    "on {day:Day}, according to {source:Source}"
)


@given(words(MOVED), target_fixture="response")
@when(words(MOVED), target_fixture="response")
def moved(
    client: TestClient,
    keys: Keys,
    case: dict[str, Any],
    actor: str,
    premise: bool,
    party: str,
    place: str,
    day: str,
    source: dict[str, str],
) -> httpx.Response:
    fact = {"type": "transferred", "by_party": party, "to_place": place, "occurred_on": day}
    return write(client, keys, actor, case, {**fact, "source": source}, premise)


CLASSIFIED = (
    "{actor:Actor} {premise:Records} that {party:Party} classified the person as a "
    '{classification:Classification} on {day:Day}, on the grounds "{basis}"'
)


@given(words(CLASSIFIED), target_fixture="response")
@when(words(CLASSIFIED), target_fixture="response")
def classified(
    client: TestClient,
    keys: Keys,
    case: dict[str, Any],
    actor: str,
    premise: bool,
    party: str,
    classification: str,
    day: str,
    basis: str,
) -> httpx.Response:
    fact = {
        "type": "classified",
        "by_party": party,
        "classification": classification,
        "basis": basis,
        "occurred_on": day,
        "source": {"kind": "party", "name": party, "reported_on": day},
    }
    return write(client, keys, actor, case, fact, premise)


VISITED = (
    "{actor:Actor} {premise:Records} that the ICRC visited the person held by {party:Party} "
    'at "{place}" on {day:Day}'
)


@given(words(VISITED), target_fixture="response")
@when(words(VISITED), target_fixture="response")
def visited(
    client: TestClient,
    keys: Keys,
    case: dict[str, Any],
    actor: str,
    premise: bool,
    party: str,
    place: str,
    day: str,
) -> httpx.Response:
    fact = {
        "type": "visited",
        "by": "ICRC",
        "held_by": party,
        "place": place,
        "occurred_on": day,
        "source": SOURCES["the ICRC"],
    }
    return write(client, keys, actor, case, fact, premise)


HOLDING = (
    "{actor:Actor} {premise:Records} that {party:Party} {stance} holding the person on {day:Day}"
)
STANCES = {"denied": "holding_denied", "acknowledged": "holding_acknowledged"}


@given(words(HOLDING), target_fixture="response")
@when(words(HOLDING), target_fixture="response")
def holding_stance(
    client: TestClient,
    keys: Keys,
    case: dict[str, Any],
    actor: str,
    premise: bool,
    party: str,
    stance: str,
    day: str,
) -> httpx.Response:
    assert stance in STANCES, f"a party either {' or '.join(STANCES)} holding the person"
    fact = {
        "type": STANCES[stance],
        "by_party": party,
        "occurred_on": day,
        "source": {"kind": "party", "name": party, "reported_on": day},
    }
    return write(client, keys, actor, case, fact, premise)


DIED = (
    "{actor:Actor} {premise:Records} that {party:Party} asserted the person died "
    'at "{place}" on {day:Day}'
)


@given(words(DIED), target_fixture="response")
@when(words(DIED), target_fixture="response")
def died(
    client: TestClient,
    keys: Keys,
    case: dict[str, Any],
    actor: str,
    premise: bool,
    party: str,
    place: str,
    day: str,
) -> httpx.Response:
    fact = {
        "type": "died",
        "place": place,
        "cause": "not given",
        "occurred_on": day,
        "source": {"kind": "party", "name": party},
    }
    return write(client, keys, actor, case, fact, premise)


SEEN = (
    "{actor:Actor} {premise:Records} that {source:Source} saw the person alive "
    'at "{place}" on {day:Day}'
)


@given(words(SEEN), target_fixture="response")
@when(words(SEEN), target_fixture="response")
def seen(
    client: TestClient,
    keys: Keys,
    case: dict[str, Any],
    actor: str,
    premise: bool,
    source: dict[str, str],
    place: str,
    day: str,
) -> httpx.Response:
    fact = {"type": "seen", "place": place, "occurred_on": day, "source": source}
    return write(client, keys, actor, case, fact, premise)


RETRACTS = '{actor:Actor} {premise:Retracts} version {version:d}, because "{reason}"'


@given(words(RETRACTS), target_fixture="response")
@when(words(RETRACTS), target_fixture="response")
def retracts(
    client: TestClient,
    keys: Keys,
    case: dict[str, Any],
    actor: str,
    premise: bool,
    version: int,
    reason: str,
) -> httpx.Response:
    fact = {
        "type": "retracted",
        "version": version,
        "reason": reason,
        "source": {"kind": "other", "name": "case worker's review"},
    }
    return write(client, keys, actor, case, fact, premise)


CLOSES = '{actor:Actor} {premise:Closes} the case, because "{reason}"'
REOPENS = '{actor:Actor} {premise:Reopens} the case, because "{reason}"'


@given(words(CLOSES), target_fixture="response")
@when(words(CLOSES), target_fixture="response")
def closes(
    client: TestClient,
    keys: Keys,
    case: dict[str, Any],
    actor: str,
    premise: bool,
    reason: str,
) -> httpx.Response:
    fact = {"type": "closed", "reason": reason, "source": SOURCES["the ICRC"]}
    return write(client, keys, actor, case, fact, premise)


@given(words(REOPENS), target_fixture="response")
@when(words(REOPENS), target_fixture="response")
def reopens(
    client: TestClient,
    keys: Keys,
    case: dict[str, Any],
    actor: str,
    premise: bool,
    reason: str,
) -> httpx.Response:
    fact = {"type": "reopened", "reason": reason, "source": SOURCES["the ICRC"]}
    return write(client, keys, actor, case, fact, premise)


# ---- reading ---------------------------------------------------------------------


@given("the moment that was recorded is noted", target_fixture="noted_moment")
def note_the_moment(response: httpx.Response) -> str:
    """The instant the register stamped on the write just answered (its ``updated_at``)."""
    moment: str = _view(response)["updated_at"]
    datetime.fromisoformat(moment)  # an instant with its zone, as the API promises
    return moment


@when(words("{actor:Actor} looks at the case"), target_fixture="response")
def look_at_case(
    client: TestClient, keys: Keys, case: dict[str, Any], actor: str
) -> httpx.Response:
    return client.get(f"/cases/{case['id']}", headers=headers_of(keys, actor))


@when(words("{actor:Actor} asks for the case as of {day:Day}"), target_fixture="response")
def case_as_of(
    client: TestClient, keys: Keys, case: dict[str, Any], actor: str, day: str
) -> httpx.Response:
    return client.get(
        f"/cases/{case['id']}", params={"as_of": day}, headers=headers_of(keys, actor)
    )


@when(
    words("{actor:Actor} asks for the case as known at the noted moment"),
    target_fixture="response",
)
def case_known_at_noted(
    client: TestClient, keys: Keys, case: dict[str, Any], actor: str, noted_moment: str
) -> httpx.Response:
    return client.get(
        f"/cases/{case['id']}",
        params={"known_at": noted_moment},
        headers=headers_of(keys, actor),
    )


@when(
    words("{actor:Actor} asks for the case as of {day:Day}, as known at the noted moment"),
    target_fixture="response",
)
def case_as_of_known_at_noted(
    client: TestClient,
    keys: Keys,
    case: dict[str, Any],
    actor: str,
    day: str,
    noted_moment: str,
) -> httpx.Response:
    return client.get(
        f"/cases/{case['id']}",
        params={"as_of": day, "known_at": noted_moment},
        headers=headers_of(keys, actor),
    )


@when(
    words("{actor:Actor} asks for the case as known at {instant:Instant}"),
    target_fixture="response",
)
def case_known_at(
    client: TestClient, keys: Keys, case: dict[str, Any], actor: str, instant: str
) -> httpx.Response:
    return client.get(
        f"/cases/{case['id']}", params={"known_at": instant}, headers=headers_of(keys, actor)
    )


@when(words("{actor:Actor} reads the case's history"), target_fixture="response")
def read_history(
    client: TestClient, keys: Keys, case: dict[str, Any], actor: str
) -> httpx.Response:
    return client.get(f"/cases/{case['id']}/history", headers=headers_of(keys, actor))


# ---- what the register answers -----------------------------------------------------


@then(words("the register answers {code:d}"))
def answers(response: httpx.Response, code: int) -> None:
    assert response.status_code == code, response.text


@then(words('the register answers {code:d} "{problem}"'))
def answers_problem(response: httpx.Response, code: int, problem: str) -> None:
    assert response.status_code == code, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body = response.json()
    assert body["status"] == code, body
    assert body["type"].rsplit("/", 1)[-1] == problem, body
    assert body.get("title") and body.get("detail"), body


@then("the answer points to the new case")
def points_to_new_case(response: httpx.Response) -> None:
    view = _view(response)
    assert response.headers["location"] == f"/cases/{view['id']}"


@then(words("the case is at version {version:d}"))
def at_version(response: httpx.Response, version: int) -> None:
    view = _view(response)
    assert view["version"] == version
    if "as_of" in view or "known_at" in view:
        assert "etag" not in response.headers  # a past view is nothing to write against
    else:
        assert response.headers["etag"] == f'"{version}"'


@then(words("nothing was recorded: the case is still at version {version:d}"))
def nothing_recorded(client: TestClient, keys: Keys, case: dict[str, Any], version: int) -> None:
    now = client.get(f"/cases/{case['id']}", headers=keys.worker)
    assert _view(now)["version"] == version
    assert now.headers["etag"] == f'"{version}"'
    events = _view(client.get(f"/cases/{case['id']}/history", headers=keys.auditor))["events"]
    assert [e["version"] for e in events] == list(range(1, version + 1))


@then(words("the register still lists only {count:d} case"))
def lists_cases(client: TestClient, keys: Keys, count: int) -> None:
    assert len(_view(client.get("/cases", headers=keys.auditor))["items"]) == count


@then(words("the case is filed as a {category:Category} case"))
def filed_as(response: httpx.Response, category: str) -> None:
    assert _view(response)["category"] == category


@then(words('the person\'s {name} is given as "{value}"'))
def person_field(response: httpx.Response, name: str, value: str) -> None:
    person = _view(response)["person"]
    assert person.get(name) == value, person


@then(words('the person\'s status is "{status}"'))
def status_is(response: httpx.Response, status: str) -> None:
    view = _view(response)
    assert view["status"] == status, view


@then(words('the person is held by {party:Party} at "{place}"'))
def held_by(response: httpx.Response, party: str, place: str) -> None:
    view = _view(response)
    assert (view["status"], view["held_by"], view["place"]) == ("held", party, place), view


@then("nobody is known to hold the person")
def held_by_nobody(response: httpx.Response) -> None:
    view = _view(response)
    assert view["held_by"] is None, view


@then(words("the person was last seen alive on {day:Day}"))
def last_seen_alive(response: httpx.Response, day: str) -> None:
    view = _view(response)
    assert view["last_seen_alive_on"] == day, view


@then("nothing is known of the person being seen alive")
def never_seen_alive(response: httpx.Response) -> None:
    view = _view(response)
    assert view["last_seen_alive_on"] is None, view


@then(
    words(
        "{party:Party}'s classification is {classification:Classification}, "
        'on the grounds "{basis}", according to {source:Source}'
    )
)
def classification_claim(
    response: httpx.Response, party: str, classification: str, basis: str, source: dict
) -> None:
    claims = {c["by_party"]: c for c in _view(response)["classifications"]}
    assert party in claims, claims
    claim = claims[party]
    assert claim["classification"] == classification, claim
    assert claim["basis"] == basis, claim
    assert {k: claim["source"].get(k) for k in source} == source, claim


@then(words("{count:d} parties' classifications are shown"))
def classification_count(response: httpx.Response, count: int) -> None:
    assert len(_view(response)["classifications"]) == count


@then(words("the case is disputed about {about}"))
def disputed_about(response: httpx.Response, about: str) -> None:
    view = _view(response)
    assert view["disputed"] is True, view
    assert about in [d["about"] for d in view["disputes"]], view["disputes"]


@then("the case is not disputed")
def not_disputed(response: httpx.Response) -> None:
    view = _view(response)
    assert (view["disputed"], view["disputes"]) == (False, []), view


@then(words('in the dispute about {about}, {source:Source} says "{says}"'))
def dispute_claim(response: httpx.Response, about: str, source: dict, says: str) -> None:
    disputes = [d for d in _view(response)["disputes"] if d["about"] == about]
    assert disputes, f"no dispute about {about}"
    claims = [c for d in disputes for c in d["claims"]]
    said = [c["says"] for c in claims if {k: c["source"].get(k) for k in source} == source]
    assert says in said, claims


# ---- the history auditors replay ---------------------------------------------------


def _event(response: httpx.Response, version: int) -> dict[str, Any]:
    events = {e["version"]: e for e in _view(response)["events"]}
    assert version in events, f"no event {version} in the history"
    return events[version]


@then(words("the history lists {count:d} events, oldest first"))
def history_length(response: httpx.Response, count: int) -> None:
    events = _view(response)["events"]
    assert [e["version"] for e in events] == list(range(1, count + 1))


@then(words('event {version:d} of the history is "{kind}", retracted by event {by:d}'))
def event_retracted(response: httpx.Response, version: int, kind: str, by: int) -> None:
    event = _event(response, version)
    assert (event["type"], event["retracted"], event.get("retracted_by")) == (kind, True, by)


@then(words('event {version:d} of the history is "{kind}", and it stands'))
def event_stands(response: httpx.Response, version: int, kind: str) -> None:
    event = _event(response, version)
    assert (event["type"], event["retracted"]) == (kind, False), event
    assert "retracted_by" not in event, event


@then(words('event {version:d} of the history still shows {name} "{value}"'))
def event_field(response: httpx.Response, version: int, name: str, value: str) -> None:
    fields = _event(response, version)["fields"]
    assert str(fields.get(name)) == value, fields


@then(words('every event in the history names who recorded it: "{key}" of "{org}"'))
def recorded_by(response: httpx.Response, key: str, org: str) -> None:
    for event in _view(response)["events"]:
        assert event["recorded_by"].get("key") == key, event["recorded_by"]
        assert event["recorded_by"].get("org") == org, event["recorded_by"]
        assert event["recorded_at"], event


@then(words('event {version:d} of the history is "{kind}", reported by {source:Source}'))
def event_reported_by(response: httpx.Response, version: int, kind: str, source: dict) -> None:
    event = _event(response, version)
    assert event["type"] == kind, event
    assert {k: event["source"].get(k) for k in source} == source, event["source"]


@then(
    words('event {version:d} of the history is "{kind}" on {day:Day}, according to {source:Source}')
)
def event_on_day(response: httpx.Response, version: int, kind: str, day: str, source: dict) -> None:
    event = _event(response, version)
    assert (event["type"], event["occurred_on"]) == (kind, day), event
    assert {k: event["source"].get(k) for k in source} == source, event["source"]


@then("the history's entries were recorded in the order they are listed")
def recorded_in_order(response: httpx.Response) -> None:
    moments = [datetime.fromisoformat(e["recorded_at"]) for e in _view(response)["events"]]
    assert all(m.tzinfo is not None for m in moments), moments  # instants with their zone
    assert moments == sorted(moments), moments


def _is_hash(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= set("0123456789abcdef")


@then("every event in the history carries its own hash in the register's chain")
def history_hashes(response: httpx.Response) -> None:
    hashes = [e["hash"] for e in _view(response)["events"]]
    assert all(_is_hash(h) for h in hashes), hashes
    assert len(set(hashes)) == len(hashes), hashes


@when(words("{actor:Actor} reads the history of a case nobody opened"), target_fixture="response")
def read_unknown_history(client: TestClient, keys: Keys, actor: str) -> httpx.Response:
    return client.get(f"/cases/{uuid.uuid4()}/history", headers=headers_of(keys, actor))


def _last_history_hash(client: TestClient, keys: Keys, case: dict[str, Any]) -> str:
    events = _view(client.get(f"/cases/{case['id']}/history", headers=keys.auditor))["events"]
    last: str = events[-1]["hash"]
    return last


# ---- the register as of a day, and as known at an instant ---------------------------


@given("the moment the case's last entry was recorded is noted", target_fixture="noted_moment")
def note_last_recorded(client: TestClient, keys: Keys, case: dict[str, Any]) -> str:
    """The instant the case's history says its newest entry was recorded."""
    events = _view(client.get(f"/cases/{case['id']}/history", headers=keys.auditor))["events"]
    moment: str = events[-1]["recorded_at"]
    datetime.fromisoformat(moment)
    return moment


def _count_held(client: TestClient, keys: Keys, actor: str, when: dict[str, str]) -> httpx.Response:
    params = {"group_by": "held_by", **when}
    return client.get("/reports/summary", params=params, headers=headers_of(keys, actor))


@when(words("{actor:Actor} counts the people held by each party"), target_fixture="response")
def count_held_now(client: TestClient, keys: Keys, actor: str) -> httpx.Response:
    return _count_held(client, keys, actor, {})


@when(
    words("{actor:Actor} counts the people held by each party as of {day:Day}"),
    target_fixture="response",
)
def count_held_as_of(client: TestClient, keys: Keys, actor: str, day: str) -> httpx.Response:
    return _count_held(client, keys, actor, {"as_of": day})


@when(
    words(
        "{actor:Actor} counts the people held by each party as of {day:Day}, "
        "as known at the noted moment"
    ),
    target_fixture="response",
)
def count_held_as_known(
    client: TestClient, keys: Keys, actor: str, day: str, noted_moment: str
) -> httpx.Response:
    return _count_held(client, keys, actor, {"as_of": day, "known_at": noted_moment})


@when(
    words(
        "{actor:Actor} counts the people held by each party as of {day:Day}, "
        "as known at {instant:Instant}"
    ),
    target_fixture="response",
)
def count_held_known_at(
    client: TestClient, keys: Keys, actor: str, day: str, instant: str
) -> httpx.Response:
    return _count_held(client, keys, actor, {"as_of": day, "known_at": instant})


@then(words("the count is for {day:Day}, with everything known now"))
def count_now_known(response: httpx.Response, day: str) -> None:
    body = _view(response)
    assert (body["as_of"], body.get("known_at")) == (day, None), body


@then(words("the count is for {day:Day}, as known at the noted moment"))
def count_as_known(response: httpx.Response, day: str, noted_moment: str) -> None:
    body = _view(response)
    assert body["as_of"] == day, body
    assert body["known_at"] is not None, body
    assert datetime.fromisoformat(body["known_at"]) == datetime.fromisoformat(noted_moment), body


@then("the count by holding party is:")
def count_by_party(response: httpx.Response, datatable: list[list[str]]) -> None:
    header, *rows = datatable
    assert header == ["held by", "people"], "the table's columns are: held by | people"
    body = _view(response)
    assert body["group_by"] == "held_by", body
    counted = {g["value"] or "nobody": g["count"] for g in body["groups"]}
    assert counted == {party: int(people) for party, people in rows}, body["groups"]


@then(words("{count:d} people are counted in all"))
def counted_in_all(response: httpx.Response, count: int) -> None:
    body = _view(response)
    assert body["total"] == count, body
    assert sum(g["count"] for g in body["groups"]) == count, body


def _list_held(
    client: TestClient, keys: Keys, actor: str, party: str, when: dict[str, str]
) -> httpx.Response:
    params = {"held_by": party, **when}
    return client.get("/cases", params=params, headers=headers_of(keys, actor))


@when(
    words("{actor:Actor} lists the people held by {party:Party} as of {day:Day}"),
    target_fixture="response",
)
def list_held_as_of(
    client: TestClient, keys: Keys, actor: str, party: str, day: str
) -> httpx.Response:
    return _list_held(client, keys, actor, party, {"as_of": day})


@when(
    words(
        "{actor:Actor} lists the people held by {party:Party} as of {day:Day}, "
        "as known at the noted moment"
    ),
    target_fixture="response",
)
def list_held_as_known(
    client: TestClient, keys: Keys, actor: str, party: str, day: str, noted_moment: str
) -> httpx.Response:
    return _list_held(client, keys, actor, party, {"as_of": day, "known_at": noted_moment})


def _full_name(person: dict[str, Any]) -> str:
    return " ".join(p for p in (person.get("given_names"), person.get("family_name")) if p)


@then("the list is exactly:")
def list_is(response: httpx.Response, datatable: list[list[str]]) -> None:
    header, *rows = datatable
    assert header == ["person", "held by", "at"], "the table's columns are: person | held by | at"
    body = _view(response)
    listed = sorted([_full_name(v["person"]), v["held_by"], v["place"]] for v in body["items"])
    assert listed == sorted(rows), body["items"]
    assert body["next_cursor"] is None, body


@then("the list is empty")
def list_empty(response: httpx.Response) -> None:
    body = _view(response)
    assert (body["items"], body["next_cursor"]) == ([], None), body


# ---- verifying the register's chain, and checkpoints ---------------------------------


@when(words("{role:Role} verifies the register"), target_fixture="response")
def verify_register(client: TestClient, keys: Keys, role: str) -> httpx.Response:
    return client.get("/audit/verify", headers=role_headers(keys, role))


@then(words("the register's chain holds, over {count:d} events"))
def chain_holds(response: httpx.Response, count: int) -> None:
    body = _view(response)
    assert (body["ok"], body["events"]) == (True, count), body
    assert _is_hash(body["head"]), body
    assert "first_broken_position" not in body, body


@then(words("the register's chain is found broken at position {position:d}"))
def chain_broken(response: httpx.Response, position: int) -> None:
    body = _view(response)
    assert (body["ok"], body.get("first_broken_position")) == (False, position), body
    assert body.get("problem"), body


@then(words('the problem named is "{problem}"'))
def problem_named(response: httpx.Response, problem: str) -> None:
    body = _view(response)
    assert problem in (body.get("problem") or ""), body


@then("the chain's head is the hash of the case's last event in its history")
def head_is_last_hash(
    client: TestClient, keys: Keys, case: dict[str, Any], response: httpx.Response
) -> None:
    assert _view(response)["head"] == _last_history_hash(client, keys, case)


@when(words("{role:Role} makes a checkpoint"), target_fixture="response")
def make_checkpoint(client: TestClient, keys: Keys, role: str) -> httpx.Response:
    return client.post("/audit/checkpoints", headers=role_headers(keys, role))


@given(
    "the admin has made a checkpoint, and the auditor has kept it",
    target_fixture="kept_checkpoint",
)
def checkpoint_kept(client: TestClient, keys: Keys) -> dict[str, Any]:
    response = client.post("/audit/checkpoints", headers=keys.admin)
    assert response.status_code == 201, response.text
    checkpoint: dict[str, Any] = response.json()
    return checkpoint


@then(
    words(
        "the checkpoint signs position {position:d}, "
        "whose hash is that of the case's last event in its history"
    )
)
def checkpoint_signs(
    client: TestClient,
    keys: Keys,
    case: dict[str, Any],
    response: httpx.Response,
    position: int,
) -> None:
    checkpoint = _view(response)
    assert checkpoint["position"] == position, checkpoint
    assert checkpoint["head"] == _last_history_hash(client, keys, case), checkpoint
    assert checkpoint["signature"] and checkpoint["public_key"], checkpoint
    datetime.fromisoformat(checkpoint["made_at"])


@then("the register lists that checkpoint to the auditor")
def checkpoint_listed(client: TestClient, keys: Keys, response: httpx.Response) -> None:
    listed = _view(client.get("/audit/checkpoints", headers=keys.auditor))["items"]
    assert _view(response) in listed, listed


def _verify_against(client: TestClient, keys: Keys, checkpoint: dict[str, Any]) -> httpx.Response:
    body = {"checkpoints": [checkpoint]}
    return client.post("/audit/verify", json=body, headers=keys.auditor)


@when(
    "the auditor verifies the register against the checkpoint they kept",
    target_fixture="response",
)
def verify_against_kept(
    client: TestClient, keys: Keys, kept_checkpoint: dict[str, Any]
) -> httpx.Response:
    return _verify_against(client, keys, kept_checkpoint)


@when(
    "the auditor verifies the register against the checkpoint they kept, its head altered",
    target_fixture="response",
)
def verify_against_altered(
    client: TestClient, keys: Keys, kept_checkpoint: dict[str, Any]
) -> httpx.Response:
    head = kept_checkpoint["head"]
    altered = ("1" if head[0] == "0" else "0") + head[1:]
    return _verify_against(client, keys, {**kept_checkpoint, "head": altered})


@then("the chain agrees with the kept checkpoint and every checkpoint the register lists")
def agrees_with_checkpoints(client: TestClient, keys: Keys, response: httpx.Response) -> None:
    listed = _view(client.get("/audit/checkpoints?limit=500", headers=keys.auditor))
    assert listed["next_cursor"] is None, listed
    assert _view(response)["checkpoints"] == 1 + len(listed["items"]), response.json()


# ---- a case file taken home, and verified there ------------------------------------


def _export_lines(client: TestClient, keys: Keys, case: dict[str, Any]) -> httpx.Response:
    return client.get(f"/cases/{case['id']}/export", headers=keys.auditor)


@when("the auditor takes the case file home", target_fixture="response")
def take_case_file(client: TestClient, keys: Keys, case: dict[str, Any]) -> httpx.Response:
    return _export_lines(client, keys, case)


@given("the auditor has taken the case file home", target_fixture="case_file")
def case_file_taken(client: TestClient, keys: Keys, case: dict[str, Any]) -> list[str]:
    response = _export_lines(client, keys, case)
    assert response.status_code == 200, response.text
    return response.text.splitlines()


def _case_events(export: Export, case: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in export.events if e["case_id"] == case["id"]]


@then(words("the file holds the case's {count:d} events, each with the hash its history shows"))
def file_holds(
    client: TestClient,
    keys: Keys,
    case: dict[str, Any],
    response: httpx.Response,
    count: int,
) -> None:
    assert response.headers["content-type"].startswith("application/x-ndjson"), response.headers
    export = Export.read(response.text.splitlines())
    assert _case_events(export, case) == export.events, "the file holds another case's events"
    history = _view(client.get(f"/cases/{case['id']}/history", headers=keys.auditor))["events"]
    assert [(e["version"], e["hash"]) for e in export.events] == [
        (e["version"], e["hash"]) for e in history
    ]
    assert len(export.events) == count


@then(
    "the file's links verify on the auditor's machine, "
    "and it says a case file alone is not anchored to the register"
)
def file_verifies(response: httpx.Response) -> None:
    result = verify_export(Export.read(response.text.splitlines()))
    assert (result.ok, result.checkpoints) == (True, 0), result
    assert "not anchored" in (result.note or ""), result
    assert result.events == len(Export.read(response.text.splitlines()).events), result


@then(words('replayed from the file, the person is held by {party:Party} at "{place}"'))
def replayed_from_file(
    response: httpx.Response, case: dict[str, Any], party: str, place: str
) -> None:
    replayed = replay_from_export(Export.read(response.text.splitlines()), uuid.UUID(case["id"]))
    state = replayed.state()
    assert (state.status, state.held_by, state.place) == ("held", party, place), state


def _case_event_line(case_file: list[str], case: dict[str, Any], version: int) -> int:
    """The index of the file's line holding the case's event ``version``."""
    for index, line in enumerate(case_file):
        item = Export.read([case_file[0], line]).events
        if item and item[0]["case_id"] == case["id"] and item[0]["version"] == version:
            return index
    raise AssertionError(f"the file holds no event {version} of the case")


@when(
    words("one byte of the case's event {version:d} is changed in the file"),
    target_fixture="case_file",
)
def change_one_byte(case_file: list[str], case: dict[str, Any], version: int) -> list[str]:
    index = _case_event_line(case_file, case, version)
    event = Export.read([case_file[0], case_file[index]]).events[0]
    stored = bytearray(base64.b64decode(event["state"]))
    stored[len(stored) // 2] ^= 0x01
    changed = {**event, "state": base64.b64encode(bytes(stored)).decode()}
    line = json.dumps(changed, separators=(",", ":"))
    return [*case_file[:index], line, *case_file[index + 1 :]]


@when(
    words("the file is cut short after the case's event {version:d}"),
    target_fixture="case_file",
)
def cut_short(case_file: list[str], case: dict[str, Any], version: int) -> list[str]:
    return case_file[: _case_event_line(case_file, case, version) + 1]


@when("the auditor verifies the file on their machine", target_fixture="verification")
def verify_file(case_file: list[str]) -> Verification:
    return verify_export(Export.read(case_file))


@then(words("the file is found broken at the position of the case's event {version:d}"))
def file_broken_at(
    verification: Verification, case_file: list[str], case: dict[str, Any], version: int
) -> None:
    index = _case_event_line(case_file, case, version)
    position = Export.read([case_file[0], case_file[index]]).events[0]["position"]
    assert (verification.ok, verification.broken_at) == (False, position), verification


@then(words('the file is found broken: "{problem}"'))
def file_broken(verification: Verification, problem: str) -> None:
    assert verification.ok is False, verification
    assert verification.problem and problem in verification.problem, verification
