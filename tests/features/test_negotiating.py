"""Scenarios of features/negotiating.feature and features/exchanging.feature, and their steps.

The steps shared by every feature (the register's answer, a single case's custody and
disputes) are in tests/features/conftest.py; the steps here speak of several people at
once, by name, and of negotiations, lists, agreements and exchanges.

How these steps hand things on (through ``target_fixture``, as in conftest.py):

- ``people``: the cases a scenario opened, by the name the scenario gives each person
  ("Aram Testyan"). A name not among them may be the ``case`` a conftest step opened.
- ``negotiation``: the negotiation the scenario opened (the register's answer).
- ``response``: the register's last answer, as in conftest.py. After an exchange is
  recorded, "the exchange" is the one that answer names, read back from the register.
- ``noted_events``: how many events the register held when the auditor looked.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import parse
import pytest
from fastapi.testclient import TestClient
from pytest_bdd import given, parsers, scenarios, then, when

if TYPE_CHECKING:
    from tests.conftest import Keys

scenarios("negotiating.feature", "exchanging.feature")


# ---- the words steps are made of ---------------------------------------------------

ICRC = {"kind": "icrc", "name": "ICRC delegation", "reference": "report on the handover"}
QUOTED = re.compile(r'"([^"]+)"')
NAME = r'"[^"]+"'


@parse.with_pattern(r"the case worker|the auditor")
def _actor(text: str) -> str:
    return "worker" if text == "the case worker" else "auditor"


@parse.with_pattern(r"records|has recorded")
def _premise(text: str) -> bool:
    """``True`` for "has recorded" (a premise that must be accepted)."""
    return text == "has recorded"


@parse.with_pattern(r"[A-Z]{2}")
def _party(text: str) -> str:
    return text


@parse.with_pattern(r"[A-Z]{2}(?:, [A-Z]{2})* and [A-Z]{2}")
def _parties(text: str) -> list[str]:
    return re.findall(r"[A-Z]{2}", text)


@parse.with_pattern(r"(?:the )?[A-Z]{2,4}(?:(?:, | and )(?:the )?[A-Z]{2,4})*")
def _mediators(text: str) -> list[str]:
    return re.findall(r"[A-Z]{2,4}", text)


@parse.with_pattern(r"\d{4}-\d{2}-\d{2}")
def _day(text: str) -> str:
    return text


@parse.with_pattern(NAME)
def _name(text: str) -> str:
    return text[1:-1]


def _range(first: str, last: str) -> list[str]:
    """ "Levon Testyan1" to "Levon Testyan45": the 45 names between, both included."""
    head, low = re.fullmatch(r"(.*?)(\d+)", first).groups()  # type: ignore[union-attr]
    tail, high = re.fullmatch(r"(.*?)(\d+)", last).groups()  # type: ignore[union-attr]
    assert head == tail and int(low) <= int(high), f"not a range of names: {first} to {last}"
    return [f"{head}{n}" for n in range(int(low), int(high) + 1)]


@parse.with_pattern(rf"{NAME}(?: to {NAME}|(?:, {NAME})* and {NAME})?")
def _names(text: str) -> list[str]:
    """ "A", "B" and "C"; or "Levon Testyan1" to "Levon Testyan45"."""
    names = QUOTED.findall(text)
    return _range(*names) if re.fullmatch(rf"{NAME} to {NAME}", text) else names


@parse.with_pattern(r"is|are")
def _verb(text: str) -> str:
    return text


@parse.with_pattern(r"a prisoner of war|prisoners of war|a civilian internee|civilian internees")
def _category(text: str) -> str:
    return "civilian_internee" if "internee" in text else "prisoner_of_war"


@parse.with_pattern(
    r"outside any negotiation|in the negotiation|under agreement \d+ of the negotiation"
)
def _context(text: str) -> dict[str, Any]:
    if text == "outside any negotiation":
        return {"negotiation": False}
    number = re.search(r"\d+", text)
    return {"negotiation": True, "agreement": int(number.group()) if number else None}


@parse.with_pattern(rf"(?:, in return for {NAME} from [A-Z]{{2}} to [A-Z]{{2}})?")
def _in_return(text: str) -> list[dict[str, str]]:
    """What is traded that is not a person: `, in return for "X" from AM to AZ`."""
    found = re.fullmatch(r', in return for "([^"]+)" from ([A-Z]{2}) to ([A-Z]{2})', text)
    if found is None:
        return []
    description, from_party, to_party = found.groups()
    return [{"from_party": from_party, "to_party": to_party, "description": description}]


@parse.with_pattern(r"(?:, announced as \d+ by [A-Z]{2}(?: and \d+ by [A-Z]{2})*)?")
def _announced(text: str) -> list[dict[str, Any]]:
    """Each side's public figure: `, announced as 12 by AZ and 14 by AM`."""
    return [
        {"by_party": party, "count": int(count), "source": {"kind": "party", "name": party}}
        for count, party in re.findall(r"(\d+) by ([A-Z]{2})", text)
    ]


@parse.with_pattern(rf"(?:, and {NAME}(?:(?:, | and ){NAME})* (?:is|are) absent)?")
def _absent(text: str) -> list[str]:
    """`, and "X" is absent`: listed for the handover, but not brought to it."""
    return QUOTED.findall(text)


@parse.with_pattern(r"exchanges?")
def _noun(text: str) -> str:
    return text


@parse.with_pattern(r"willing|unwilling")
def _willingness(text: str) -> str:
    return text


# The reconciliation's lists, in the words a case worker uses; each gives the case ids
# (or, for unmatched entries, the names) it holds.
RECONCILIATION: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "on every list": lambda r: [e["case_id"] for e in r["on_every_list"]],
    "agreed": lambda r: [e["case_id"] for e in r["agreed"]],
    "handed over": lambda r: [e["case_id"] for e in r["handed_over"]],
    "handed over without a willingness check": lambda r: list(
        r["handed_over_without_willingness_check"]
    ),
    "refused": lambda r: [e["case_id"] for e in r["refused"]],
    "absent": lambda r: [e["case_id"] for e in r["absent"]],
    "outstanding": lambda r: [e["case_id"] for e in r["outstanding"]],
    "unmatched": lambda r: [e["name"] for e in r["unmatched"]],
}


@parse.with_pattern(
    "|".join([*sorted(RECONCILIATION, key=len, reverse=True), r"only on [A-Z]{2}'s list"])
)
def _reconciled(text: str) -> Callable[[dict[str, Any]], list[str]]:
    if text.startswith("only on "):
        party = text.removeprefix("only on ")[:2]
        return lambda r: [e["case_id"] for e in r["only_on"][party]]
    return RECONCILIATION[text]


TYPES = {
    "Actor": _actor,
    "Records": _premise,
    "Party": _party,
    "Parties": _parties,
    "Mediators": _mediators,
    "Day": _day,
    "Name": _name,
    "Names": _names,
    "Verb": _verb,
    "Category": _category,
    "Context": _context,
    "InReturn": _in_return,
    "Announced": _announced,
    "Absent": _absent,
    "Willingness": _willingness,
    "Noun": _noun,
    "Reconciled": _reconciled,
}


def words(pattern: str) -> parsers.parse:
    return parsers.parse(pattern, extra_types=TYPES)


# ---- talking to the register -------------------------------------------------------


@pytest.fixture
def people() -> dict[str, dict[str, Any]]:
    """No one yet: the steps that open cases add to it."""
    return {}


def _headers(keys: Keys, actor: str) -> dict[str, str]:
    return keys.worker if actor == "worker" else keys.auditor


def _answered(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def _full_name(person: dict[str, Any]) -> str:
    return " ".join(p for p in (person.get("given_names"), person.get("family_name")) if p)


def _case_id(request: pytest.FixtureRequest, people: dict[str, dict[str, Any]], name: str) -> str:
    """The case of the person the scenario calls ``name``."""
    if name in people:
        return str(people[name]["id"])
    try:
        case = request.getfixturevalue("case")
    except pytest.FixtureLookupError:
        case = None
    if case is not None and _full_name(case["person"]) == name:
        return str(case["id"])
    raise AssertionError(f"the scenario opened no case for {name!r}")


def _case_ids(
    request: pytest.FixtureRequest, people: dict[str, dict[str, Any]], names: list[str]
) -> list[str]:
    return [_case_id(request, people, name) for name in names]


def _names_of(people: dict[str, dict[str, Any]], case_ids: list[str]) -> list[str]:
    """Case ids as the scenario's names, for messages a reader can follow."""
    by_id = {str(c["id"]): name for name, c in people.items()}
    return [by_id.get(c, c) for c in case_ids]


def _look(client: TestClient, keys: Keys, case_id: str) -> dict[str, Any]:
    return _answered(client.get(f"/cases/{case_id}", headers=keys.worker))


def _record(
    client: TestClient, keys: Keys, actor: str, case_id: str, fact: dict[str, Any], premise: bool
) -> httpx.Response:
    response = client.post(f"/cases/{case_id}/events", json=fact, headers=_headers(keys, actor))
    if premise:
        assert response.status_code == 201, (
            f"the scenario's premise {fact['type']!r} was refused: {response.text}"
        )
    return response


def _premised(response: httpx.Response, premise: bool, what: str) -> httpx.Response:
    if premise:
        assert response.status_code == 201, (
            f"the scenario's premise ({what}) was refused: {response.text}"
        )
    return response


def _reconciliation(client: TestClient, keys: Keys, negotiation: dict[str, Any]) -> dict[str, Any]:
    """The negotiation's reconciliation, as the auditor reads it."""
    view = _answered(client.get(f"/negotiations/{negotiation['id']}", headers=keys.auditor))
    reconciliation: dict[str, Any] = view["reconciliation"]
    return reconciliation


def _exchange(client: TestClient, keys: Keys, response: httpx.Response) -> dict[str, Any]:
    """The exchange the last answer named, read back from the register by the auditor."""
    exchange_id = _answered(response)["id"]
    return _answered(client.get(f"/exchanges/{exchange_id}", headers=keys.auditor))


def _summary(client: TestClient, keys: Keys) -> dict[str, Any]:
    return _answered(client.get("/reports/summary", headers=keys.auditor))


# ---- people in custody -------------------------------------------------------------


@given(
    words(
        "{actor:Actor} {premise:Records} that {party:Party} captured {names:Names}, "
        '{category:Category} of {nationality:Party}, at "{place}" on {day:Day}'
    ),
    target_fixture="people",
)
def captured_people(
    client: TestClient,
    keys: Keys,
    people: dict[str, dict[str, Any]],
    actor: str,
    premise: bool,
    party: str,
    names: list[str],
    category: str,
    nationality: str,
    place: str,
    day: str,
) -> dict[str, dict[str, Any]]:
    assert premise, "people in custody are a scenario's premise: the case worker has recorded"
    opened = {}
    for name in names:
        given_names, _, family_name = name.rpartition(" ")
        body = {
            "category": category,
            "person": {
                "family_name": family_name,
                "given_names": given_names,
                "nationality": nationality,
            },
            "source": {"kind": "family", "name": "the person's family"},
        }
        case = _answered(client.post("/cases", json=body, headers=_headers(keys, actor)))
        fact = {
            "type": "captured",
            "by_party": party,
            "place": place,
            "occurred_on": day,
            "source": ICRC,
        }
        opened[name] = _answered(_record(client, keys, actor, case["id"], fact, premise))
    return {**people, **opened}


WILLINGNESS = (
    "{actor:Actor} {premise:Records} that the ICRC found {name:Name} {result:Willingness} "
    "to be repatriated, in a private interview on {day:Day}"
)


@given(words(WILLINGNESS), target_fixture="response")
@when(words(WILLINGNESS), target_fixture="response")
def willingness_verified(
    request: pytest.FixtureRequest,
    client: TestClient,
    keys: Keys,
    people: dict[str, dict[str, Any]],
    actor: str,
    premise: bool,
    name: str,
    result: str,
    day: str,
) -> httpx.Response:
    fact = {
        "type": "willingness_verified",
        "by": "ICRC",
        "result": result,
        "occurred_on": day,
        "source": {**ICRC, "reference": "private interview"},
    }
    return _record(client, keys, actor, _case_id(request, people, name), fact, premise)


DIED = (
    "{actor:Actor} {premise:Records} that {party:Party} asserted {name:Name} died "
    'at "{place}" on {day:Day}'
)


@given(words(DIED), target_fixture="response")
@when(words(DIED), target_fixture="response")
def died(
    request: pytest.FixtureRequest,
    client: TestClient,
    keys: Keys,
    people: dict[str, dict[str, Any]],
    actor: str,
    premise: bool,
    party: str,
    name: str,
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
    return _record(client, keys, actor, _case_id(request, people, name), fact, premise)


RELEASED = (
    "{actor:Actor} {premise:Records} that {party:Party} released {name:Name} to {to_party:Party} "
    "on {day:Day}, according to {source:Party}"
)


@given(words(RELEASED), target_fixture="response")
@when(words(RELEASED), target_fixture="response")
def released(
    request: pytest.FixtureRequest,
    client: TestClient,
    keys: Keys,
    people: dict[str, dict[str, Any]],
    actor: str,
    premise: bool,
    party: str,
    name: str,
    to_party: str,
    day: str,
    source: str,
) -> httpx.Response:
    fact = {
        "type": "released",
        "by_party": party,
        "to_party": to_party,
        "occurred_on": day,
        "source": {"kind": "party", "name": source, "reported_on": day},
    }
    return _record(client, keys, actor, _case_id(request, people, name), fact, premise)


# ---- negotiations, lists and agreements ----------------------------------------------


@given(
    words(
        'the case worker has opened the negotiation "{title}" between {parties:Parties}, '
        'mediated by {mediators:Mediators}, on the principle "{principle}", on {day:Day}'
    ),
    target_fixture="negotiation",
)
def negotiation_opened(
    client: TestClient,
    keys: Keys,
    title: str,
    parties: list[str],
    mediators: list[str],
    principle: str,
    day: str,
) -> dict[str, Any]:
    body = {
        "title": title,
        "parties": parties,
        "mediators": mediators,
        "principle": principle.replace(" ", "_"),
        "opened_on": day,
    }
    return _answered(client.post("/negotiations", json=body, headers=keys.worker))


def _submit_list(
    client: TestClient,
    keys: Keys,
    actor: str,
    negotiation: dict[str, Any],
    party: str,
    day: str,
    entries: list[dict[str, str]],
) -> httpx.Response:
    body = {"submitted_by": party, "submitted_on": day, "entries": entries}
    return client.post(
        f"/negotiations/{negotiation['id']}/lists", json=body, headers=_headers(keys, actor)
    )


LIST_OF_CASES = (
    "{actor:Actor} {premise:Records} {party:Party}'s list of {day:Day}, "
    "naming the cases of {names:Names}"
)


@given(words(LIST_OF_CASES), target_fixture="response")
@when(words(LIST_OF_CASES), target_fixture="response")
def list_of_cases(
    request: pytest.FixtureRequest,
    client: TestClient,
    keys: Keys,
    people: dict[str, dict[str, Any]],
    negotiation: dict[str, Any],
    actor: str,
    premise: bool,
    party: str,
    day: str,
    names: list[str],
) -> httpx.Response:
    entries = [{"case_id": c} for c in _case_ids(request, people, names)]
    response = _submit_list(client, keys, actor, negotiation, party, day, entries)
    return _premised(response, premise, f"{party}'s list")


LIST_OF_NAMES = (
    "{actor:Actor} {premise:Records} {party:Party}'s list of {day:Day}, "
    "naming these people as spelled on it:"
)


@given(words(LIST_OF_NAMES), target_fixture="response")
@when(words(LIST_OF_NAMES), target_fixture="response")
def list_of_names(
    client: TestClient,
    keys: Keys,
    negotiation: dict[str, Any],
    actor: str,
    premise: bool,
    party: str,
    day: str,
    datatable: list[list[str]],
) -> httpx.Response:
    header, *rows = datatable
    assert header == ["name"], "the table's only column is: name"
    entries = [{"name": name} for (name,) in rows]
    response = _submit_list(client, keys, actor, negotiation, party, day, entries)
    return _premised(response, premise, f"{party}'s list")


AGREEMENT = (
    "{actor:Actor} {premise:Records} the agreement of {day:Day} by which {from_party:Party} "
    "hands {names:Names} over to {to_party:Party}{consideration:InReturn}"
)


@given(words(AGREEMENT), target_fixture="response")
@when(words(AGREEMENT), target_fixture="response")
def agreement(
    request: pytest.FixtureRequest,
    client: TestClient,
    keys: Keys,
    people: dict[str, dict[str, Any]],
    negotiation: dict[str, Any],
    actor: str,
    premise: bool,
    day: str,
    from_party: str,
    names: list[str],
    to_party: str,
    consideration: list[dict[str, str]],
) -> httpx.Response:
    body = {
        "agreed_on": day,
        "transfers": [
            {"case_id": c, "from_party": from_party, "to_party": to_party}
            for c in _case_ids(request, people, names)
        ],
        "consideration": consideration,
    }
    response = client.post(
        f"/negotiations/{negotiation['id']}/agreements", json=body, headers=_headers(keys, actor)
    )
    return _premised(response, premise, "the agreement")


# ---- exchanges -------------------------------------------------------------------------

EXCHANGE = (
    '{actor:Actor} {premise:Records} the exchange on {day:Day} at "{place}", '
    "mediated by {mediators:Mediators}, {context:Context}{consideration:InReturn}"
    "{announced:Announced}, in which"
)
OUTCOMES = {"handed over": "handed_over", "refused": "refused", "absent": "absent"}


def _record_exchange(
    client: TestClient,
    keys: Keys,
    actor: str,
    premise: bool,
    negotiation: dict[str, Any],
    day: str,
    place: str,
    mediators: list[str],
    context: dict[str, Any],
    consideration: list[dict[str, str]],
    announced: list[dict[str, Any]],
    handovers: list[dict[str, str]],
) -> httpx.Response:
    body: dict[str, Any] = {
        "occurred_on": day,
        "place": place,
        "mediators": mediators,
        "handovers": handovers,
        "consideration": consideration,
        "announced": announced,
        "source": {**ICRC, "reported_on": day},
    }
    if context["negotiation"]:
        body["negotiation_id"] = negotiation["id"]
    if context.get("agreement") is not None:
        body["agreement"] = context["agreement"]
    response = client.post("/exchanges", json=body, headers=_headers(keys, actor))
    return _premised(response, premise, "the exchange")


@given(
    words(
        EXCHANGE + " {from_party:Party} hands {names:Names} over to {to_party:Party}{absent:Absent}"
    ),
    target_fixture="response",
)
@when(
    words(
        EXCHANGE + " {from_party:Party} hands {names:Names} over to {to_party:Party}{absent:Absent}"
    ),
    target_fixture="response",
)
def exchange_of_names(
    request: pytest.FixtureRequest,
    client: TestClient,
    keys: Keys,
    people: dict[str, dict[str, Any]],
    negotiation: dict[str, Any],
    actor: str,
    premise: bool,
    day: str,
    place: str,
    mediators: list[str],
    context: dict[str, Any],
    consideration: list[dict[str, str]],
    announced: list[dict[str, Any]],
    from_party: str,
    names: list[str],
    to_party: str,
    absent: list[str],
) -> httpx.Response:
    outcomes = [(n, "handed_over") for n in names] + [(n, "absent") for n in absent]
    handovers = [
        {
            "case_id": _case_id(request, people, name),
            "from_party": from_party,
            "to_party": to_party,
            "outcome": outcome,
        }
        for name, outcome in outcomes
    ]
    return _record_exchange(
        client,
        keys,
        actor,
        premise,
        negotiation,
        day,
        place,
        mediators,
        context,
        consideration,
        announced,
        handovers,
    )


@given(words(EXCHANGE + ":"), target_fixture="response")
@when(words(EXCHANGE + ":"), target_fixture="response")
def exchange_of_table(
    request: pytest.FixtureRequest,
    client: TestClient,
    keys: Keys,
    people: dict[str, dict[str, Any]],
    negotiation: dict[str, Any],
    actor: str,
    premise: bool,
    day: str,
    place: str,
    mediators: list[str],
    context: dict[str, Any],
    consideration: list[dict[str, str]],
    announced: list[dict[str, Any]],
    datatable: list[list[str]],
) -> httpx.Response:
    header, *rows = datatable
    assert header[:4] == ["person", "from", "to", "outcome"], (
        "the table's columns are: person | from | to | outcome (| refused by)"
    )
    handovers = []
    for row in rows:
        item = dict(zip(header, row, strict=True))
        handover = {
            "case_id": _case_id(request, people, item["person"]),
            "from_party": item["from"],
            "to_party": item["to"],
            "outcome": OUTCOMES[item["outcome"]],
        }
        if item.get("refused by"):
            handover["refused_by"] = item["refused by"]
        handovers.append(handover)
    return _record_exchange(
        client,
        keys,
        actor,
        premise,
        negotiation,
        day,
        place,
        mediators,
        context,
        consideration,
        announced,
        handovers,
    )


@given("the auditor has noted how many events the register holds", target_fixture="noted_events")
def note_events(client: TestClient, keys: Keys) -> int:
    body = _answered(client.get("/audit/verify", headers=keys.auditor))
    assert body["ok"] is True, body
    events: int = body["events"]
    return events


# ---- what the case worker and the auditor see ------------------------------------------


@then(words('{names:Names} {verb:Verb} "{status}", held by nobody'))
def handed_back(
    request: pytest.FixtureRequest,
    client: TestClient,
    keys: Keys,
    people: dict[str, dict[str, Any]],
    names: list[str],
    status: str,
) -> None:
    for name in names:
        view = _look(client, keys, _case_id(request, people, name))
        assert (view["status"], view["held_by"]) == (status, None), (name, view)


@then(words('{names:Names} {verb:Verb} still held by {party:Party} at "{place}"'))
def still_held(
    request: pytest.FixtureRequest,
    client: TestClient,
    keys: Keys,
    people: dict[str, dict[str, Any]],
    names: list[str],
    party: str,
    place: str,
) -> None:
    for name in names:
        view = _look(client, keys, _case_id(request, people, name))
        assert (view["status"], view["held_by"], view["place"]) == ("held", party, place), (
            name,
            view,
        )


@then(words('{names:Names} {verb:Verb} still "{status}"'))
def still_status(
    request: pytest.FixtureRequest,
    client: TestClient,
    keys: Keys,
    people: dict[str, dict[str, Any]],
    names: list[str],
    status: str,
) -> None:
    for name in names:
        view = _look(client, keys, _case_id(request, people, name))
        assert view["status"] == status, (name, view)


@then(words("the case of {name:Name} is in no negotiation"))
def in_no_negotiation(
    request: pytest.FixtureRequest,
    client: TestClient,
    keys: Keys,
    people: dict[str, dict[str, Any]],
    name: str,
) -> None:
    view = _look(client, keys, _case_id(request, people, name))
    assert view["negotiations"] == [], view


@then(words('the history of {name:Name} ends with "{kind}", pointing to the exchange'))
def history_ends_with(
    request: pytest.FixtureRequest,
    client: TestClient,
    keys: Keys,
    people: dict[str, dict[str, Any]],
    response: httpx.Response,
    name: str,
    kind: str,
) -> None:
    exchange = _exchange(client, keys, response)
    case_id = _case_id(request, people, name)
    history = _answered(client.get(f"/cases/{case_id}/history", headers=keys.auditor))
    last = history["events"][-1]
    assert last["type"] == kind, last
    assert last["fields"]["exchange_id"] == exchange["id"], last
    assert last["occurred_on"] == exchange["occurred_on"], last


@then(words('the history of {name:Name} ends with "{kind}", in no exchange'))
def history_ends_outside(
    request: pytest.FixtureRequest,
    client: TestClient,
    keys: Keys,
    people: dict[str, dict[str, Any]],
    name: str,
    kind: str,
) -> None:
    case_id = _case_id(request, people, name)
    history = _answered(client.get(f"/cases/{case_id}/history", headers=keys.auditor))
    last = history["events"][-1]
    assert last["type"] == kind, last
    assert "exchange_id" not in last["fields"], last


@then(words("the exchange records that {name:Name} was refused by the {refused_by}"))
def exchange_refused_by(
    request: pytest.FixtureRequest,
    client: TestClient,
    keys: Keys,
    people: dict[str, dict[str, Any]],
    response: httpx.Response,
    name: str,
    refused_by: str,
) -> None:
    case_id = _case_id(request, people, name)
    exchange = _exchange(client, keys, response)
    found = [h for h in exchange["handovers"] if h["case_id"] == case_id]
    assert len(found) == 1, exchange["handovers"]
    assert (found[0]["outcome"], found[0].get("refused_by")) == ("refused", refused_by), found


@then(
    words(
        "the exchange records {handed:d} handed over by {from_party:Party} to {to_party:Party}, "
        "{refused:d} refused and {absent:d} absent"
    )
)
def exchange_counts(
    client: TestClient,
    keys: Keys,
    response: httpx.Response,
    handed: int,
    from_party: str,
    to_party: str,
    refused: int,
    absent: int,
) -> None:
    exchange = _exchange(client, keys, response)
    direction = [
        h
        for h in exchange["handovers"]
        if (h["from_party"], h["to_party"]) == (from_party, to_party)
    ]
    counted = {outcome: 0 for outcome in OUTCOMES.values()}
    for h in direction:
        assert h["standing"] is True, h
        counted[h["outcome"]] += 1
    assert counted == {"handed_over": handed, "refused": refused, "absent": absent}, direction
    by_direction = {
        (d["from_party"], d["to_party"]): d["handed_over"]
        for d in exchange["recorded"]["by_direction"]
    }
    assert by_direction.get((from_party, to_party), 0) == handed, exchange["recorded"]


@then(words('the exchange records "{thing}" given by {from_party:Party} to {to_party:Party}'))
def exchange_consideration(
    client: TestClient,
    keys: Keys,
    response: httpx.Response,
    thing: str,
    from_party: str,
    to_party: str,
) -> None:
    exchange = _exchange(client, keys, response)
    given_ = {"from_party": from_party, "to_party": to_party, "description": thing}
    assert exchange["consideration"] == [given_], exchange["consideration"]


@then("the exchange keeps each side's announced figure beside the one recorded:")
def exchange_announced(
    client: TestClient, keys: Keys, response: httpx.Response, datatable: list[list[str]]
) -> None:
    header, *rows = datatable
    assert header == ["announced by", "announced", "recorded", "difference"], (
        "the table's columns are: announced by | announced | recorded | difference"
    )
    exchange = _exchange(client, keys, response)
    shown = [
        [a["by_party"], str(a["count"]), str(a["recorded"]), str(a["difference"])]
        for a in exchange["announced"]
    ]
    assert shown == rows, exchange["announced"]
    assert exchange["recorded"]["handed_over"] == len(exchange["handovers"]), exchange["recorded"]


@then(
    words(
        "the negotiation's agreement {number:d} has {from_party:Party} hand {names:Names} over "
        "to {to_party:Party}{consideration:InReturn}"
    )
)
def agreement_shows(
    request: pytest.FixtureRequest,
    client: TestClient,
    keys: Keys,
    people: dict[str, dict[str, Any]],
    negotiation: dict[str, Any],
    number: int,
    from_party: str,
    names: list[str],
    to_party: str,
    consideration: list[dict[str, str]],
) -> None:
    view = _answered(client.get(f"/negotiations/{negotiation['id']}", headers=keys.auditor))
    agreements = {a["number"]: a for a in view["agreements"]}
    assert number in agreements, view["agreements"]
    agreed = agreements[number]
    assert agreed["transfers"] == [
        {"case_id": c, "from_party": from_party, "to_party": to_party}
        for c in _case_ids(request, people, names)
    ], agreed
    assert agreed["consideration"] == consideration, agreed


@then("no exchange is recorded")
def no_exchange(client: TestClient, keys: Keys) -> None:
    body = _answered(client.get("/exchanges", headers=keys.auditor))
    assert (body["items"], body["next_cursor"]) == ([], None), body


@then("the register still holds only the events the auditor noted")
def events_unchanged(client: TestClient, keys: Keys, noted_events: int) -> None:
    body = _answered(client.get("/audit/verify", headers=keys.auditor))
    assert (body["ok"], body["events"]) == (True, noted_events), body


@then(words('the answer names the case of {names:Names} and no other, saying "{reason}"'))
def answer_names_cases(
    request: pytest.FixtureRequest,
    people: dict[str, dict[str, Any]],
    response: httpx.Response,
    names: list[str],
    reason: str,
) -> None:
    problem = response.json()
    named = [c["case_id"] for c in problem["cases"]]
    expected = _case_ids(request, people, names)
    assert sorted(named) == sorted(expected), _names_of(people, named)
    for item in problem["cases"]:
        assert reason in item["detail"], item
    for name in people:  # never a person's name in an error message
        for part in name.split():
            assert part not in response.text, f"the answer gives away {part!r}: {response.text}"


@then(words("the list's entry {spelling:Name} is matched to the case of {name:Name}"))
def entry_matched(
    request: pytest.FixtureRequest,
    people: dict[str, dict[str, Any]],
    response: httpx.Response,
    spelling: str,
    name: str,
) -> None:
    entries = [e for e in _answered(response)["list"]["entries"] if e.get("name") == spelling]
    assert len(entries) == 1, f"the list has no single entry {spelling!r}"
    match = entries[0]["match"]
    assert match["result"] == "matched", match
    assert match["case_id"] == _case_id(request, people, name), match


@then(words("the reconciliation lists {names:Names} as {which:Reconciled}"))
def reconciliation_lists(
    request: pytest.FixtureRequest,
    client: TestClient,
    keys: Keys,
    people: dict[str, dict[str, Any]],
    negotiation: dict[str, Any],
    names: list[str],
    which: Callable[[dict[str, Any]], list[str]],
) -> None:
    listed = which(_reconciliation(client, keys, negotiation))
    expected = _case_ids(request, people, names)
    assert sorted(listed) == sorted(expected), f"listed: {_names_of(people, listed)}"


@then(words("the reconciliation lists nobody as {which:Reconciled}"))
def reconciliation_lists_nobody(
    client: TestClient,
    keys: Keys,
    people: dict[str, dict[str, Any]],
    negotiation: dict[str, Any],
    which: Callable[[dict[str, Any]], list[str]],
) -> None:
    listed = which(_reconciliation(client, keys, negotiation))
    assert listed == [], _names_of(people, listed)


@then(
    words(
        "the reconciliation counts {listed:d} listed, {handed:d} handed over, "
        "{absent:d} absent and {outstanding:d} outstanding"
    )
)
def reconciliation_counts(
    client: TestClient,
    keys: Keys,
    negotiation: dict[str, Any],
    listed: int,
    handed: int,
    absent: int,
    outstanding: int,
) -> None:
    reconciliation = _reconciliation(client, keys, negotiation)
    counts = reconciliation["counts"]
    shown = (counts["listed"], counts["handed_over"], counts["absent"], counts["outstanding"])
    assert shown == (listed, handed, absent, outstanding), counts
    assert len(reconciliation["handed_over"]) == handed, counts
    assert len(reconciliation["absent"]) == absent, counts
    assert len(reconciliation["outstanding"]) == outstanding, counts


@then(
    words(
        "in the reconciliation, {name:Name} is outstanding, held by {party:Party}, "
        "and marked disputed"
    )
)
def outstanding_disputed(
    request: pytest.FixtureRequest,
    client: TestClient,
    keys: Keys,
    people: dict[str, dict[str, Any]],
    negotiation: dict[str, Any],
    name: str,
    party: str,
) -> None:
    case_id = _case_id(request, people, name)
    outstanding = _reconciliation(client, keys, negotiation)["outstanding"]
    entries = [e for e in outstanding if e["case_id"] == case_id]
    assert len(entries) == 1, outstanding
    assert (entries[0]["held_by"], entries[0]["disputed"]) == (party, True), entries[0]


@then("the negotiation's exchanges are, oldest first:")
def negotiation_exchanges(
    client: TestClient, keys: Keys, negotiation: dict[str, Any], datatable: list[list[str]]
) -> None:
    header, *rows = datatable
    assert header == ["on", "at", "agreement", "handed over"], (
        "the table's columns are: on | at | agreement | handed over"
    )
    params = {"negotiation": negotiation["id"]}
    listed = _answered(client.get("/exchanges", params=params, headers=keys.auditor))
    shown = [
        [e["occurred_on"], e["place"], str(e["agreement"]), str(e["recorded"]["handed_over"])]
        for e in listed["items"]
    ]
    assert shown == rows, listed["items"]
    view = _answered(client.get(f"/negotiations/{negotiation['id']}", headers=keys.auditor))
    assert [e["id"] for e in view["exchanges"]] == [e["id"] for e in listed["items"]], view


@then(words("the summary counts {returned:d} people returned in the negotiation"))
def summary_returned(
    client: TestClient, keys: Keys, negotiation: dict[str, Any], returned: int
) -> None:
    summary = _summary(client, keys)
    counted = [(r["negotiation_id"], r["returned"]) for r in summary["returned_by_negotiation"]]
    assert counted == [(negotiation["id"], returned)], summary["returned_by_negotiation"]


@then(
    words(
        "the summary counts, from {from_party:Party} to {to_party:Party}, {exchanges:d} "
        "{noun:Noun}: {handed:d} handed over, {refused:d} refused and {absent:d} absent"
    )
)
def summary_exchanges(
    client: TestClient,
    keys: Keys,
    from_party: str,
    to_party: str,
    exchanges: int,
    handed: int,
    refused: int,
    absent: int,
) -> None:
    rows = [
        r
        for r in _summary(client, keys)["exchanges"]
        if (r["from_party"], r["to_party"]) == (from_party, to_party)
    ]
    assert rows == [
        {
            "from_party": from_party,
            "to_party": to_party,
            "exchanges": exchanges,
            "handed_over": handed,
            "refused": refused,
            "absent": absent,
        }
    ], rows
