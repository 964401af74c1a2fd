"""Exchanges and negotiations: the domain rules, in memory, without a database.

``check_handover`` and ``record_on_case`` on ``Case`` aggregates built here;
``Negotiation`` list versions and confirmations; and ``reconcile``, fed the rows the
store would give it. All people are invented.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain.case import Case, Stamp
from domain.exchange import Handover, NewExchange, check_handover, record_on_case
from domain.identity import Identity
from domain.input import parse_fact
from domain.negotiation import Negotiation, NegotiationError, listed_case
from domain.reconciliation import CaseRow, HandoverRow, reconcile
from domain.state import derive

TODAY = date(2026, 11, 27)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
HELD_ON = date(2021, 1, 10)
EXCHANGE_DAY = date(2021, 6, 1)
SOURCE = {"kind": "icrc"}

_minutes = iter(range(1, 1_000_000))


def stamp() -> Stamp:
    """Each recording a minute after the last one."""
    return Stamp(T0 + timedelta(minutes=next(_minutes)), "worker-1", "org-a")


def open_case(nationality: str | None = "AM") -> Case:
    return Case._create(
        Case.Opened,
        id=uuid4(),
        category="prisoner_of_war",
        person=Identity(family_name="Testyan", given_names="Aram", nationality=nationality),
        source={"kind": "family"},
        recorded_at=T0,
        recorded_by={"key": "worker-1", "org": "org-a"},
    )


def record(case: Case, type_: str, occurred_on: date | None = None, **fields: Any) -> int:
    payload: dict[str, Any] = {"type": type_, "source": SOURCE, **fields}
    if occurred_on is not None:
        payload["occurred_on"] = occurred_on.isoformat()
    case.record(parse_fact(payload, TODAY), stamp())
    return case.version


def held_by(party: str = "AZ", nationality: str | None = "AM") -> Case:
    case = open_case(nationality)
    record(case, "captured", HELD_ON, by_party=party)
    return case


def hand(
    case: Case,
    outcome: str = "handed_over",
    *,
    from_party: str = "AZ",
    to_party: str = "AM",
    expected_version: int | None = None,
    refused_by: str | None = None,
) -> Handover:
    return Handover(case.id, from_party, to_party, outcome, refused_by, expected_version)


def exchange(handover: Handover, on: date = EXCHANGE_DAY) -> NewExchange:
    return NewExchange(occurred_on=on, handovers=(handover,), source=SOURCE, place="a bridge")


def carry_out(case: Case, handover: Handover, on: date = EXCHANGE_DAY) -> Any:
    """Record ``handover`` on ``case``: the problem, or None when recorded."""
    return record_on_case(case, handover, uuid4(), exchange(handover, on), stamp())


# --- who can take part ---------------------------------------------------------------------------


def test_a_person_held_by_the_handing_party_can_be_handed_over() -> None:
    case = held_by("AZ")
    assert check_handover(case, hand(case), EXCHANGE_DAY) is None
    assert check_handover(case, hand(case, expected_version=case.version), EXCHANGE_DAY) is None


def test_a_person_held_by_the_other_party_cannot_be_handed_over_by_this_one() -> None:
    case = held_by("AM")
    problem = check_handover(case, hand(case, from_party="AZ", to_party="AM"), EXCHANGE_DAY)
    assert problem is not None
    assert problem.kind == "invalid-transition"
    assert problem.case_id == case.id
    assert "held by AM" in problem.detail
    assert "custody of AZ" in problem.detail


def test_custody_counts_as_of_the_exchange_day_not_today() -> None:
    case = held_by("AZ")
    # Held by AM today, after a new capture: an earlier handover by AZ contradicts nothing.
    record(case, "escaped", date(2021, 7, 1), by_party="AZ")
    record(case, "recaptured", date(2021, 7, 5), by_party="AM")
    assert check_handover(case, hand(case), EXCHANGE_DAY) is None
    later = check_handover(case, hand(case), date(2021, 8, 1))
    assert later is not None and "held by AM" in later.detail


def test_a_handover_before_custody_recorded_later_without_a_new_capture_is_refused() -> None:
    case = held_by("AZ")
    record(case, "transferred", date(2021, 7, 1), by_party="AZ", to_place="a camp")
    problem = check_handover(case, hand(case), EXCHANGE_DAY)
    assert problem is not None and "after this exchange" in problem.detail


def test_a_person_nobody_is_recorded_holding_cannot_be_handed_over() -> None:
    case = open_case()
    problem = check_handover(case, hand(case), EXCHANGE_DAY)
    assert problem is not None and "custody" in problem.detail
    escaped = held_by("AZ")
    record(escaped, "escaped", date(2021, 3, 1))
    problem = check_handover(escaped, hand(escaped), EXCHANGE_DAY)
    assert problem is not None and "escaped" in problem.detail


def test_a_person_recorded_dead_before_the_exchange_day_cannot_take_part() -> None:
    case = held_by("AZ")
    record(case, "died", date(2021, 3, 1))
    for outcome in ("handed_over", "refused", "absent"):
        problem = check_handover(case, hand(case, outcome), EXCHANGE_DAY)
        assert problem is not None, outcome
        assert "dead" in problem.detail


def test_a_person_already_handed_over_on_or_after_the_exchange_day_cannot_be_again() -> None:
    case = held_by("AZ")
    assert carry_out(case, hand(case), date(2021, 6, 10)) is None
    for day in (date(2021, 6, 1), date(2021, 6, 10)):
        problem = check_handover(case, hand(case), day)
        assert problem is not None, day
        assert "already handed over on 2021-06-10" in problem.detail
    after = check_handover(case, hand(case), date(2021, 7, 1))
    assert after is not None and "already repatriated" in after.detail


def test_a_release_outside_any_exchange_also_ends_custody_for_the_exchange() -> None:
    case = held_by("AZ")
    record(case, "released", date(2021, 5, 1), by_party="AZ", to_party="GE")
    problem = check_handover(case, hand(case), EXCHANGE_DAY)
    assert problem is not None and "already released" in problem.detail


def test_a_retracted_handover_can_be_made_again() -> None:
    case = held_by("AZ")
    assert carry_out(case, hand(case)) is None
    handed = case.version
    assert check_handover(case, hand(case), EXCHANGE_DAY) is not None
    record(case, "retracted", version=handed, reason="recorded on the wrong person")
    assert derive(case.facts).status == "held"
    assert check_handover(case, hand(case), EXCHANGE_DAY) is None
    assert carry_out(case, hand(case)) is None
    assert derive(case.facts).status == "repatriated"


def test_an_unwilling_person_cannot_be_handed_over_but_can_be_recorded_as_refusing() -> None:
    case = held_by("AZ")
    record(case, "willingness_verified", date(2021, 5, 1), by="ICRC", result="unwilling")
    problem = check_handover(case, hand(case), EXCHANGE_DAY)
    assert problem is not None and "unwilling" in problem.detail
    refusal = hand(case, "refused", refused_by="person")
    assert check_handover(case, refusal, EXCHANGE_DAY) is None
    assert check_handover(case, hand(case, "absent"), EXCHANGE_DAY) is None


def test_the_latest_willingness_check_counts_willing_then_unwilling() -> None:
    case = held_by("AZ")
    record(case, "willingness_verified", date(2021, 4, 1), by="ICRC", result="willing")
    record(case, "willingness_verified", date(2021, 5, 1), by="ICRC", result="unwilling")
    problem = check_handover(case, hand(case), EXCHANGE_DAY)
    assert problem is not None and "unwilling" in problem.detail


def test_the_latest_willingness_check_counts_unwilling_then_willing() -> None:
    case = held_by("AZ")
    record(case, "willingness_verified", date(2021, 4, 1), by="ICRC", result="unwilling")
    record(case, "willingness_verified", date(2021, 5, 1), by="ICRC", result="willing")
    assert check_handover(case, hand(case), EXCHANGE_DAY) is None


def test_the_latest_check_is_the_latest_in_the_world_not_the_latest_recorded() -> None:
    case = held_by("AZ")
    record(case, "willingness_verified", date(2021, 5, 1), by="ICRC", result="willing")
    # An older interview, reported late, does not overrule the newer one.
    record(case, "willingness_verified", date(2021, 4, 1), by="ICRC", result="unwilling")
    assert check_handover(case, hand(case), EXCHANGE_DAY) is None


def test_a_willingness_check_after_the_exchange_day_or_retracted_does_not_count() -> None:
    case = held_by("AZ")
    record(case, "willingness_verified", date(2021, 7, 1), by="ICRC", result="unwilling")
    assert check_handover(case, hand(case), EXCHANGE_DAY) is None
    other = held_by("AZ")
    wrong = record(other, "willingness_verified", date(2021, 5, 1), by="ICRC", result="unwilling")
    assert check_handover(other, hand(other), EXCHANGE_DAY) is not None
    record(other, "retracted", version=wrong, reason="another person's interview")
    assert check_handover(other, hand(other), EXCHANGE_DAY) is None


def test_a_stale_expected_version_is_a_version_conflict() -> None:
    case = held_by("AZ")
    seen_at = case.version
    record(case, "visited", date(2021, 2, 1), by="ICRC", held_by="AZ")
    problem = check_handover(case, hand(case, expected_version=seen_at), EXCHANGE_DAY)
    assert problem is not None
    assert problem.kind == "version-conflict"
    assert problem.current_version == case.version == seen_at + 1
    assert problem.to_dict()["problem"] == "version-conflict"


def test_a_closed_case_cannot_take_part() -> None:
    case = held_by("AZ")
    record(case, "closed", reason="duplicate of another case")
    for outcome in ("handed_over", "refused", "absent"):
        problem = check_handover(case, hand(case, outcome), EXCHANGE_DAY)
        assert problem is not None, outcome
        assert problem.kind == "invalid-transition"
        assert "closed" in problem.detail


def test_a_refused_handover_leaves_the_case_as_it_was() -> None:
    case = held_by("AZ")
    record(case, "willingness_verified", date(2021, 5, 1), by="ICRC", result="unwilling")
    before = (case.version, list(case.facts))
    problem = carry_out(case, hand(case))
    assert problem is not None
    assert (case.version, case.facts) == before
    assert case.collect_events()[-1].originator_version == before[0]


# --- what a handover records ---------------------------------------------------------------------


def test_handed_to_the_party_of_ones_nationality_is_repatriation() -> None:
    case = held_by("AZ", nationality="AM")
    assert carry_out(case, hand(case, to_party="AM")) is None
    state = derive(case.facts)
    assert state.status == "repatriated"
    assert state.held_by is None
    fact = case.facts[-1]
    assert fact.type == "handed_over"
    assert fact.occurred_on == EXCHANGE_DAY
    assert fact.get("by_party") == "AZ" and fact.get("to_party") == "AM"
    assert fact.get("willingness") == "not_checked"
    assert derive(case.facts, as_of=date(2021, 5, 31)).held_by == "AZ"


def test_handed_to_another_party_is_release() -> None:
    case = held_by("AZ", nationality="AM")
    assert carry_out(case, hand(case, to_party="GE")) is None
    state = derive(case.facts)
    assert state.status == "released"
    assert state.held_by is None


def test_a_handover_notes_the_willingness_check_on_record() -> None:
    case = held_by("AZ")
    record(case, "willingness_verified", date(2021, 5, 1), by="ICRC", result="willing")
    assert carry_out(case, hand(case)) is None
    assert case.facts[-1].get("willingness") == "willing"


@pytest.mark.parametrize(
    ("outcome", "fact_type"), [("refused", "handover_refused"), ("absent", "handover_absent")]
)
def test_a_refused_or_absent_handover_leaves_custody_unchanged(
    outcome: str, fact_type: str
) -> None:
    case = held_by("AZ")
    refused_by = "person" if outcome == "refused" else None
    assert carry_out(case, hand(case, outcome, refused_by=refused_by)) is None
    assert case.facts[-1].type == fact_type
    state = derive(case.facts)
    assert (state.status, state.held_by) == ("held", "AZ")
    # and the person can be brought to the next exchange
    assert check_handover(case, hand(case), date(2021, 7, 1)) is None


# --- negotiations: lists -------------------------------------------------------------------------

RECORDED_BY = {"key": "k", "org": "o"}
AT = datetime(2026, 2, 1, tzinfo=UTC)


def negotiation(parties: tuple[str, ...] = ("AM", "AZ")) -> Negotiation:
    return Negotiation._create(
        Negotiation.Opened,
        id=uuid4(),
        title="Exchange of prisoners of war",
        parties=list(parties),
        mediators=["ICRC"],
        principle="all_for_all",
        opened_on=date(2021, 1, 1),
        recorded_at=AT,
        recorded_by=RECORDED_BY,
    )


def by_id(case_id: str) -> dict[str, Any]:
    return {"case_id": case_id, "match": {"result": "matched", "case_id": case_id, "by": "case_id"}}


def named(name: str, result: str = "unmatched", **match: Any) -> dict[str, Any]:
    return {"name": name, "match": {"result": result, **match}}


def submit(n: Negotiation, party: str, *entries: dict[str, Any]) -> int:
    return n.submit_list(party, date(2021, 2, 1), list(entries), AT, RECORDED_BY)


def ids(*n: int) -> list[str]:
    return [str(UUID(int=i)) for i in n]


def test_a_new_list_version_replaces_the_partys_current_list() -> None:
    n = negotiation()
    a, b, c = ids(1, 2, 3)
    assert submit(n, "AM", by_id(a), by_id(b)) == 1
    assert submit(n, "AM", by_id(b), by_id(c)) == 2
    assert n.current_list("AM")["list_version"] == 2
    assert n.listed_by() == {b: {"AM"}, c: {"AM"}}
    # the old version stays in the history
    assert [listed_case(e) for e in n.lists["AM"][0]["entries"]] == [a, b]
    assert n.current_list("AZ") is None


def test_only_a_party_submits_lists() -> None:
    n = negotiation()
    with pytest.raises(NegotiationError) as refused:
        submit(n, "RU", by_id(ids(1)[0]))
    assert set(refused.value.errors) == {"submitted_by"}


def test_confirming_a_match_needs_a_list_a_real_entry_and_a_name() -> None:
    n = negotiation()
    [case] = ids(1)
    with pytest.raises(NegotiationError) as no_list:
        n.confirm_match("AM", 1, 0, UUID(case), AT, RECORDED_BY)
    assert set(no_list.value.errors) == {"party"}
    submit(n, "AM", named("Testyan Aram"), by_id(case))
    for entry in (2, -1):
        with pytest.raises(NegotiationError) as out_of_range:
            n.confirm_match("AM", 1, entry, UUID(case), AT, RECORDED_BY)
        assert out_of_range.value.errors == {"entry": "the list has entries 0 to 1"}
    with pytest.raises(NegotiationError) as by_case_id:
        n.confirm_match("AM", 1, 1, UUID(case), AT, RECORDED_BY)
    assert set(by_case_id.value.errors) == {"entry"}
    with pytest.raises(NegotiationError) as stale:
        n.confirm_match("AM", 2, 0, UUID(case), AT, RECORDED_BY)
    assert set(stale.value.errors) == {"list_version"}


def test_a_confirmed_match_lists_the_case_and_keeps_what_matching_said() -> None:
    n = negotiation()
    a, b = ids(1, 2)
    candidates = [{"case_id": a, "score": 0.8}, {"case_id": b, "score": 0.78}]
    submit(n, "AM", named("Testyan Aram", "candidates", candidates=candidates))
    assert n.listed_by() == {}
    was = n.confirm_match("AM", 1, 0, UUID(b), AT, RECORDED_BY)
    assert was["name"] == "Testyan Aram"
    assert n.listed_by() == {b: {"AM"}}
    match = n.current_list("AM")["entries"][0]["match"]
    assert match["result"] == "confirmed"
    assert match["was"]["result"] == "candidates"
    with pytest.raises(NegotiationError) as again:
        n.confirm_match("AM", 1, 0, UUID(b), AT, RECORDED_BY)
    assert set(again.value.errors) == {"case_id"}


# --- reconciliation ------------------------------------------------------------------------------


def row(case_id: str, status: str = "held", held: str | None = "AZ", nationality: str = "AM"):
    return CaseRow(case_id, status, held, nationality, False)


def handover_row(
    case_id: str, outcome: str, on: date, willingness: str | None = "willing", **kw: Any
) -> HandoverRow:
    return HandoverRow(
        case_id=case_id,
        outcome=outcome,
        exchange_id=kw.get("exchange_id", str(uuid4())),
        occurred_on=on,
        from_party=kw.get("from_party", "AZ"),
        to_party=kw.get("to_party", "AM"),
        willingness=willingness if outcome == "handed_over" else None,
        recorded_at=kw.get("recorded_at", datetime.combine(on, datetime.min.time(), UTC)),
    )


def case_ids_of(items: list[dict[str, Any]]) -> list[str]:
    return [i["case_id"] for i in items]


def test_reconcile_says_who_is_on_which_list() -> None:
    n = negotiation()
    both, only_am, only_az, hidden = ids(1, 2, 3, 4)
    submit(
        n,
        "AM",
        by_id(both),
        by_id(only_am),
        by_id(hidden),
        named("Nobodyan Vard"),
        named("Testyan Aram", "candidates", candidates=[{"case_id": only_az}, {"case_id": hidden}]),
    )
    submit(n, "AZ", by_id(both), by_id(only_az))
    cases = {c: row(c) for c in (both, only_am, only_az)}
    answer = reconcile(n, [], cases)
    assert case_ids_of(answer["on_every_list"]) == [both]
    assert answer["on_every_list"][0]["listed_by"] == ["AM", "AZ"]
    assert case_ids_of(answer["only_on"]["AM"]) == [only_am]
    assert case_ids_of(answer["only_on"]["AZ"]) == [only_az]
    [nobody, candidates] = answer["unmatched"]  # names with candidates are unmatched too
    assert nobody == {"party": "AM", "list_version": 1, "entry": 3, "name": "Nobodyan Vard"}
    assert answer["candidates"] == [candidates]
    assert candidates["entry"] == 4
    # a case the caller cannot see is left out, here and everywhere
    assert case_ids_of(candidates["candidates"]) == [only_az]
    assert answer["counts"]["listed"] == 3
    assert hidden not in str(answer)


def test_reconcile_reads_only_the_current_list_versions() -> None:
    n = negotiation()
    old, new = ids(1, 2)
    submit(n, "AM", by_id(old), named("Nobodyan Vard"))
    submit(n, "AM", by_id(new))
    answer = reconcile(n, [], {c: row(c, held="GE") for c in (old, new)})
    assert case_ids_of(answer["only_on"]["AM"]) == [new]
    assert answer["unmatched"] == []


def test_reconcile_lists_the_agreed() -> None:
    n = negotiation()
    a, b = ids(1, 2)
    n.agree(
        date(2021, 3, 1),
        [{"case_id": a, "from_party": "AZ", "to_party": "AM"}],
        [{"kind": "minefield maps"}],
        None,
        AT,
        RECORDED_BY,
    )
    n.agree(
        date(2021, 4, 1),
        [{"case_id": b, "from_party": "AM", "to_party": "AZ"}],
        [],
        None,
        AT,
        RECORDED_BY,
    )
    cases = {a: row(a), b: row(b, held="AM", nationality="AZ")}
    agreed = reconcile(n, [], cases)["agreed"]
    assert [(x["case_id"], x["agreement"], x["from_party"]) for x in agreed] == [
        (a, 1, "AZ"),
        (b, 2, "AM"),
    ]
    with pytest.raises(NegotiationError):
        n.agree(date(2021, 5, 1), [{"case_id": a, "from_party": "GE"}], [], None, AT, RECORDED_BY)


def test_reconcile_says_what_came_of_each_person_in_the_exchanges() -> None:
    n = negotiation()
    handed, refused, absent, absent_then_handed, handed_then_refused = ids(1, 2, 3, 4, 5)
    submit(n, "AM", *(by_id(c) for c in ids(1, 2, 3, 4, 5)))
    cases = {
        handed: row(handed, "repatriated", None),
        refused: row(refused),
        absent: row(absent),
        absent_then_handed: row(absent_then_handed, "repatriated", None),
        handed_then_refused: row(handed_then_refused, "repatriated", None),
    }
    first, second = date(2021, 6, 1), date(2021, 7, 1)
    rows = [
        handover_row(handed, "handed_over", first),
        handover_row(refused, "absent", first),
        handover_row(refused, "refused", second),
        handover_row(absent, "refused", first),
        handover_row(absent, "absent", second),
        # given in reverse order: the later stage still wins
        handover_row(absent_then_handed, "handed_over", second),
        handover_row(absent_then_handed, "absent", first),
        handover_row(handed_then_refused, "handed_over", first),
        handover_row(handed_then_refused, "refused", second),
    ]
    answer = reconcile(n, rows, cases)
    assert case_ids_of(answer["handed_over"]) == sorted(
        [handed, absent_then_handed, handed_then_refused]
    )
    assert case_ids_of(answer["refused"]) == [refused]
    assert case_ids_of(answer["absent"]) == [absent]
    [late] = [x for x in answer["handed_over"] if x["case_id"] == absent_then_handed]
    assert late["occurred_on"] == second.isoformat()
    assert answer["counts"]["handed_over"] == 3


def test_reconcile_flags_handovers_without_a_willingness_check() -> None:
    n = negotiation()
    checked, not_checked, unknown = ids(1, 2, 3)
    cases = {c: row(c, "repatriated", None) for c in (checked, not_checked, unknown)}
    rows = [
        handover_row(checked, "handed_over", EXCHANGE_DAY, "willing"),
        handover_row(not_checked, "handed_over", EXCHANGE_DAY, "not_checked"),
        handover_row(unknown, "handed_over", EXCHANGE_DAY, None),
    ]
    answer = reconcile(n, rows, cases)
    assert answer["handed_over_without_willingness_check"] == sorted([not_checked, unknown])


def test_reconcile_says_who_is_still_outstanding() -> None:
    n = negotiation()
    unlisted_national, listed_held, listed_same, refused, handed, own, elsewhere = ids(
        1, 2, 3, 4, 5, 6, 7
    )
    submit(n, "AM", by_id(listed_held), by_id(refused), by_id(handed), by_id(elsewhere))
    submit(n, "AZ", by_id(listed_same))
    cases = {
        # held by AZ, a national of AM: outstanding though on nobody's list
        unlisted_national: row(unlisted_national, "hospitalised", "AZ", "AM"),
        listed_held: row(listed_held, "held", "AM", "GE"),
        # held by the party of their own nationality, but listed
        listed_same: row(listed_same, "held", "AZ", "AZ"),
        refused: row(refused, "held", "AZ", "AM"),
        handed: row(handed, "repatriated", None, "AM"),
        own: row(own, "held", "AZ", "AZ"),
        # held by someone not party to the negotiation
        elsewhere: row(elsewhere, "held", "GE", "AM"),
    }
    rows = [
        handover_row(refused, "refused", EXCHANGE_DAY),
        handover_row(handed, "handed_over", EXCHANGE_DAY),
    ]
    answer = reconcile(n, rows, cases)
    outstanding = {x["case_id"]: x for x in answer["outstanding"]}
    assert set(outstanding) == {unlisted_national, listed_held, listed_same, refused}
    assert outstanding[unlisted_national]["why"] == "national_of_another_party"
    assert outstanding[unlisted_national]["listed_by"] == []
    assert outstanding[listed_held]["why"] == "listed"
    assert outstanding[listed_same]["why"] == "listed"
    assert outstanding[refused]["last_outcome"] == "refused"
    assert outstanding[listed_held]["last_outcome"] is None
    assert answer["counts"]["outstanding"] == 4


def test_an_agreed_person_still_held_is_outstanding() -> None:
    n = negotiation()
    [agreed] = ids(1)
    n.agree(
        date(2021, 3, 1),
        [{"case_id": agreed, "from_party": "AZ", "to_party": "AM"}],
        [],
        None,
        AT,
        RECORDED_BY,
    )
    answer = reconcile(n, [], {agreed: row(agreed, "held", "AZ", "AZ")})
    assert case_ids_of(answer["outstanding"]) == [agreed]
