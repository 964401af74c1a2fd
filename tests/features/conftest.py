"""Steps shared by every feature under features/, in the words case workers and auditors use.

How the steps hand things on (always through ``target_fixture``, never a global):

- ``case``: the case a scenario is about (the view the register answered when it was
  opened); later steps use its ``id``.
- ``response``: the register's last answer. Every step that writes or reads sets it,
  and every ``Then`` checks what a user would see in it: status code, headers, the
  case view, the history.
- ``noted_moment``: an instant taken from an answer, for "as known at" questions.

Writing steps come in two tenses with one definition: "the case worker has recorded
that ..." (a ``Given``: the premise must have been accepted, or the scenario stops
there) and "the case worker records that ..." (a ``When``: the answer is kept, and a
``Then`` says what it should be).

Step functions are plain ``def``: pytest-bdd never runs ``async def`` steps.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
import parse
import pytest
from fastapi.testclient import TestClient
from pytest_bdd import given, parsers, then, when

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
