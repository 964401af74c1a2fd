"""Per-person encryption (``infrastructure.crypto``): the master key, what the store seals
and what it leaves in clear, blobs bound to where they belong, and what an erased
person's facts and identity read as."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from domain.case import Case, NewFact, Stamp
from domain.facts import PERSONAL_DATA, PERSONAL_SOURCE, Fact
from domain.identity import CLEAR_FIELDS, ErasedIdentity, Identity
from domain.rules import InvalidTransition
from infrastructure import names, tables
from infrastructure.crypto import (
    DEV_MASTER_KEY_FILE,
    SEALED_TEXT,
    Keyring,
    MasterKeyChanged,
    MissingMasterKey,
    MissingPersonKey,
    NoKeys,
    load_master_key,
    new_master_key,
)
from infrastructure.keys import ApiKey, KeyStore
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.book import Book as Casebook

# An invented person whose names appear nowhere else, so that finding one of them in
# stored bytes means it is theirs.
FAMILY = "Qwzorthiennyk"
GIVEN = "Ulvbrecht"
FATHER = "Xarvendimos"
SOURCE_NAME = "Mrs Zhopplevanka"
REFERENCE = "letter ref Vrentskalov"
NOTE = "was seen limping near the Grombelvask ward"
CAUSE = "Tuberculosis Dravnikovskaya"
CANARIES = (FAMILY, GIVEN, FATHER, SOURCE_NAME, REFERENCE, NOTE, "Grombelvask", "Dravnikovskaya")


@pytest.fixture
def no_master_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """No master key in the environment (tests/conftest.py sets one for the run)."""
    monkeypatch.delenv("CASEBOOK_MASTER_KEY", raising=False)
    monkeypatch.delenv("CASEBOOK_MASTER_KEY_FILE", raising=False)
    monkeypatch.delenv("CASEBOOK_MODE", raising=False)


# ---- the master key --------------------------------------------------------------------


def test_development_makes_a_private_key_file_once_and_loads_it_again(
    no_master_key: None, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path)
    key = load_master_key(settings)
    path = tmp_path / DEV_MASTER_KEY_FILE
    assert path.name == "master.key" and path.is_file()
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert base64.b64decode(path.read_text().strip()) == key
    assert load_master_key(Settings(data_dir=tmp_path)) == key  # the same key next time
    assert load_master_key(Settings(data_dir=tmp_path / "other")) != key  # another folder


def test_development_makes_the_data_folder_for_the_key_file(
    no_master_key: None, tmp_path: Path
) -> None:
    folder = tmp_path / "not" / "yet"
    key = load_master_key(Settings(data_dir=folder))
    assert base64.b64decode((folder / DEV_MASTER_KEY_FILE).read_text()) == key


def test_production_without_a_master_key_does_not_start(
    no_master_key: None, tmp_path: Path
) -> None:
    settings = Settings(mode="production", data_dir=tmp_path)
    with pytest.raises(MissingMasterKey) as e:
        load_master_key(settings)
    assert "CASEBOOK_MASTER_KEY" in str(e.value)
    assert not (tmp_path / DEV_MASTER_KEY_FILE).exists()  # production never makes one


def test_production_ignores_a_development_key_file_left_in_the_data_folder(
    no_master_key: None, tmp_path: Path
) -> None:
    (tmp_path / DEV_MASTER_KEY_FILE).write_text(new_master_key() + "\n")
    with pytest.raises(MissingMasterKey):
        load_master_key(Settings(mode="production", data_dir=tmp_path))


@pytest.mark.parametrize(
    "bad",
    [
        "correct-horse-battery-staple-Kjh7s",  # not base64
        base64.b64encode(b"sixteen byte key").decode(),  # base64, too short
        base64.b64encode(b"x" * 33).decode(),  # base64, too long
        new_master_key()[:-4] + "!!!!",  # almost right
    ],
    ids=["not-base64", "too-short", "too-long", "almost-right"],  # stable: runs compare them
)
def test_a_master_key_that_is_not_32_bytes_of_base64_is_refused_without_echoing_it(
    no_master_key: None, tmp_path: Path, bad: str
) -> None:
    with pytest.raises(MissingMasterKey) as e:
        load_master_key(Settings(data_dir=tmp_path, master_key=bad))
    message = str(e.value)
    assert "32 bytes" in message and "base64" in message
    assert "CASEBOOK_MASTER_KEY" in message  # where it came from
    assert bad not in message and bad[:12] not in message
    assert not (tmp_path / DEV_MASTER_KEY_FILE).exists()  # refused, not replaced


def test_a_bad_key_file_is_refused_naming_the_file_but_not_its_content(
    no_master_key: None, tmp_path: Path
) -> None:
    path = tmp_path / "secret.key"
    bad = base64.b64encode(b"only twenty bytes!!!").decode()
    path.write_text(bad + "\n")
    with pytest.raises(MissingMasterKey) as e:
        load_master_key(Settings(data_dir=tmp_path, master_key_file=path))
    assert str(path) in str(e.value)
    assert bad not in str(e.value)


def test_a_master_key_given_in_the_environment_is_used(
    no_master_key: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = new_master_key()
    monkeypatch.setenv("CASEBOOK_MASTER_KEY", given)
    assert load_master_key(Settings(mode="production", data_dir=tmp_path)) == base64.b64decode(
        given
    )
    assert not (tmp_path / DEV_MASTER_KEY_FILE).exists()


def test_a_master_key_file_is_read(no_master_key: None, tmp_path: Path) -> None:
    given = new_master_key()
    path = tmp_path / "elsewhere" / "casebook-master.key"
    path.parent.mkdir()
    path.write_text(given + "\n")  # as an operator's editor leaves it: a final newline
    for mode in ("development", "production"):
        settings = Settings(mode=mode, data_dir=tmp_path / "data", master_key_file=path)
        assert load_master_key(settings) == base64.b64decode(given)
    assert not (tmp_path / "data" / DEV_MASTER_KEY_FILE).exists()


def test_a_missing_master_key_file_is_an_error_not_a_new_key(
    no_master_key: None, tmp_path: Path
) -> None:
    path = tmp_path / "missing.key"
    with pytest.raises(MissingMasterKey) as e:
        load_master_key(Settings(data_dir=tmp_path, master_key_file=path))
    assert "cannot read" in str(e.value)
    assert not path.exists() and not (tmp_path / DEV_MASTER_KEY_FILE).exists()


def test_new_master_keys_are_random_32_bytes() -> None:
    made = {new_master_key() for _ in range(20)}
    assert len(made) == 20
    assert all(len(base64.b64decode(k, validate=True)) == 32 for k in made)


def test_the_store_does_not_start_in_production_without_a_master_key(
    no_master_key: None, tmp_path: Path
) -> None:
    with pytest.raises(MissingMasterKey) as e:
        Store(Settings(mode="production", data_dir=tmp_path))
    assert "CASEBOOK_MASTER_KEY" in str(e.value)


def test_the_store_starts_in_production_with_a_master_key(
    no_master_key: None, tmp_path: Path
) -> None:
    store = Store(Settings(mode="production", data_dir=tmp_path, master_key=new_master_key()))
    try:
        assert store.position() == 0
    finally:
        store.close()


# ---- what the store seals --------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(Settings(data_dir=tmp_path))
    yield s
    s.close()


@pytest.fixture
def worker(store: Store) -> ApiKey:
    key, _ = KeyStore(store.engine).create("worker-1", "case_worker", "org-a")
    return key


def opening(family: str = FAMILY, given: str = GIVEN) -> dict[str, Any]:
    return {
        "category": "prisoner_of_war",
        "person": {
            "family_name": family,
            "given_names": given,
            "father_name": FATHER,
            "nationality": "AM",
        },
        "source": {"kind": "family", "name": SOURCE_NAME, "reference": REFERENCE},
    }


def open_person(store: Store, key: ApiKey, **names: str) -> uuid.UUID:
    """A case with a capture (its source named) and a note about the person."""
    casebook = Casebook(store)
    case_id = casebook.open_case(opening(**names), key).case_id
    captured = {
        "type": "captured",
        "occurred_on": "2020-11-09",
        "by_party": "AZ",
        "place": "Hadrut",
        "source": {"kind": "family", "name": SOURCE_NAME},
    }
    casebook.record_fact(case_id, captured, key)
    casebook.record_fact(case_id, {"type": "note", "text": NOTE, "source": {"kind": "other"}}, key)
    return case_id


def stored_events(store: Store, case_id: uuid.UUID) -> dict[int, tuple[str, bytes]]:
    """Version -> (topic, stored state bytes) of a case, as they are in the table."""
    e = store.events_table
    with store.read() as conn:
        rows = conn.execute(
            select(e.c.originator_version, e.c.topic, e.c.state).where(e.c.originator_id == case_id)
        ).all()
    return {version: (topic, bytes(state)) for version, topic, state in rows}


def set_state(store: Store, case_id: uuid.UUID, version: int, state: bytes) -> None:
    e = store.events_table
    with store.engine.begin() as conn:
        conn.execute(
            update(e)
            .where(e.c.originator_id == case_id, e.c.originator_version == version)
            .values(state=state)
        )


def with_sealed(state: bytes, sealed: str) -> bytes:
    event = json.loads(state)
    event["sealed"] = sealed
    return json.dumps(event, separators=(",", ":")).encode()


def stored_views(store: Store) -> dict[uuid.UUID, str]:
    v = tables.case_views
    with store.read() as conn:
        return dict(conn.execute(select(v.c.case_id, v.c.view)).tuples().all())


def fresh(store: Store) -> Store:
    """Another store on the same database: a process with nothing cached."""
    return Store(store.settings)


def test_personal_data_is_sealed_in_the_log_and_the_rest_stays_in_clear(
    store: Store, worker: ApiKey
) -> None:
    case_id = open_person(store, worker)
    events = stored_events(store, case_id)
    everything = b"\n".join(state for _, state in events.values())
    for canary in CANARIES:
        assert canary.encode() not in everything, canary
        assert canary.lower().encode() not in everything.lower(), canary

    topic, state = events[1]
    assert topic == "domain.case:Case.Opened"
    opened = json.loads(state)
    assert opened["category"] == "prisoner_of_war"
    assert opened["person"]["_data_"] == {"nationality": "AM"}  # CLEAR_FIELDS only
    assert opened["source"] == {"kind": "family"}
    assert opened["recorded_by"] == {"key": "worker-1", "org": "org-a"}
    assert isinstance(opened["sealed"], str) and base64.b64decode(opened["sealed"])

    topic, state = events[2]
    assert topic == "domain.case:Case.Captured"
    captured = json.loads(state)
    assert captured["data"] == {"by_party": "AZ", "place": "Hadrut"}  # the type's clear fields
    assert captured["occurred_on"]["_data_"] == "2020-11-09"
    assert captured["source"] == {"kind": "family"} and "sealed" in captured

    noted = json.loads(events[3][1])
    assert noted["data"] == {} and "sealed" in noted


def test_what_is_sealed_reads_back_whole(store: Store, worker: ApiKey) -> None:
    case_id = open_person(store, worker)
    for s in (store, fresh(store)):  # this process, and one with nothing cached
        try:
            facts = s.register.get_case(case_id).facts
            assert facts[0].person == Identity(
                family_name=FAMILY, given_names=GIVEN, father_name=FATHER, nationality="AM"
            )
            assert facts[0].source == {
                "kind": "family",
                "name": SOURCE_NAME,
                "reference": REFERENCE,
            }
            assert facts[1].source == {"kind": "family", "name": SOURCE_NAME}
            assert facts[1].data == {"by_party": "AZ", "place": "Hadrut"}
            assert facts[2].data == {"text": NOTE}
            history = json.dumps(Casebook(s).history(case_id), ensure_ascii=False)
            assert FAMILY in history and NOTE in history and SOURCE_NAME in history
        finally:
            if s is not store:
                s.close()


def test_an_event_without_personal_data_is_not_sealed(store: Store, worker: ApiKey) -> None:
    casebook = Casebook(store)
    case_id = casebook.open_case(opening(), worker).case_id
    held = {"type": "held", "occurred_on": "2020-11-10", "by_party": "AZ", "place": "Baku"}
    casebook.record_fact(case_id, {**held, "source": {"kind": "icrc"}}, worker)
    state = json.loads(stored_events(store, case_id)[2][1])
    assert "sealed" not in state
    assert state["data"] == {"by_party": "AZ", "place": "Baku"}


def test_the_view_is_sealed_and_its_filter_columns_are_not(store: Store, worker: ApiKey) -> None:
    case_id = open_person(store, worker)
    stored = stored_views(store)[case_id]
    assert stored.startswith(SEALED_TEXT) and SEALED_TEXT == "s1:"
    for canary in CANARIES:
        assert canary not in stored
    v = tables.case_views
    with store.read() as conn:
        row = conn.execute(select(v).where(v.c.case_id == case_id)).one()
    assert (row.nationality, row.category, row.status, row.held_by) == (
        "AM",
        "prisoner_of_war",
        "held",
        "AZ",
    )
    view = json.loads(Casebook(store).view_json(case_id)[1])
    assert view["person"]["family_name"] == FAMILY


def test_the_name_index_holds_keyed_hashes_only(store: Store, worker: ApiKey) -> None:
    case_id = open_person(store, worker)
    k = tables.case_name_keys
    with store.read() as conn:
        stored = list(conn.execute(select(k.c.key).where(k.c.case_id == case_id)).scalars())
    plain = names.index_keys(f"{FAMILY} {GIVEN}")
    assert stored and plain
    assert all(re.fullmatch(r"[0-9a-f]{32}", key) for key in stored), stored
    assert not set(stored) & plain
    assert set(stored) == {store.keyring.name_key(p) for p in plain}
    # And the index finds the person, without any name in clear: by one part, and by
    # the full name (a pair of its parts).
    for query in (FAMILY, f"{GIVEN} {FAMILY}"):
        items, _ = Casebook(store).list_cases({}, query, 10, None)
        assert [i["id"] for i in items] == [str(case_id)]


def test_the_name_index_key_is_the_registers_own_not_derived_from_the_master_key(
    settings: Settings, tmp_path: Path
) -> None:
    """Two registers opened with the same master key hash names differently: each made
    a random key of its own on its first start (wrapped by the master key, so that a new
    master key leaves it as it is); a register opened again keeps its own."""
    first = Store(settings)
    other = Store(Settings(data_dir=tmp_path / "other"))
    try:
        assert first.keyring.check_value == other.keyring.check_value  # one master key
        assert first.keyring.name_key("rkr") != other.keyring.name_key("rkr")
        assert first.keyring.digest("request") != other.keyring.digest("request")
        assert first.keyring.name_key("rkr") != first.keyring.name_key("rks")
        again = Store(settings)
        try:
            assert again.keyring.name_key("rkr") == first.keyring.name_key("rkr")
            assert again.keyring.digest("request") == first.keyring.digest("request")
        finally:
            again.close()
    finally:
        first.close()
        other.close()


# ---- blobs are bound to where they belong ----------------------------------------------


def test_an_event_blob_copied_to_another_case_does_not_open(store: Store, worker: ApiKey) -> None:
    victim = open_person(store, worker, family="Aarontyan", given="Hrant")
    other = open_person(store, worker)
    theirs = json.loads(stored_events(store, other)[1][1])["sealed"]
    set_state(store, victim, 1, with_sealed(stored_events(store, victim)[1][1], theirs))
    reader = fresh(store)
    try:
        with pytest.raises(MissingPersonKey):
            reader.register.get_case(victim)
        with pytest.raises(MissingPersonKey):
            Casebook(reader).history(victim)
        assert reader.register.get_case(other).facts[0].person.family_name == FAMILY
    finally:
        reader.close()


def test_an_event_blob_moved_to_another_version_of_the_same_case_does_not_open(
    store: Store, worker: ApiKey
) -> None:
    """The same key, another place: only the associated data (case and version) tells."""
    case_id = open_person(store, worker)
    events = stored_events(store, case_id)
    captured_blob = json.loads(events[2][1])["sealed"]  # its source's name
    set_state(store, case_id, 3, with_sealed(events[3][1], captured_blob))
    reader = fresh(store)
    try:
        with pytest.raises(MissingPersonKey):
            reader.register.get_case(case_id)
    finally:
        reader.close()


def test_swapped_views_do_not_open(store: Store, worker: ApiKey) -> None:
    a = open_person(store, worker, family="Aarontyan", given="Hrant")
    b = open_person(store, worker)
    views = stored_views(store)
    v = tables.case_views
    with store.engine.begin() as conn:
        conn.execute(update(v).where(v.c.case_id == a).values(view=views[b]))
        conn.execute(update(v).where(v.c.case_id == b).values(view=views[a]))
    for s in (store, fresh(store)):
        try:
            casebook = Casebook(s)
            for case_id in (a, b):
                with pytest.raises(MissingPersonKey):
                    casebook.view_json(case_id)
            with pytest.raises(MissingPersonKey):
                casebook.list_cases({}, None, 10, None)
            with pytest.raises(MissingPersonKey):
                casebook.list_cases({}, FAMILY, 10, None)
        finally:
            if s is not store:
                s.close()


def test_an_event_blob_put_in_the_view_of_the_same_case_does_not_open(
    store: Store, worker: ApiKey
) -> None:
    case_id = open_person(store, worker)
    blob = json.loads(stored_events(store, case_id)[3][1])["sealed"]
    v = tables.case_views
    with store.engine.begin() as conn:
        conn.execute(update(v).where(v.c.case_id == case_id).values(view=SEALED_TEXT + blob))
    with pytest.raises(MissingPersonKey):
        Casebook(store).view_json(case_id)


def test_another_master_key_is_refused_at_start_and_opens_nothing(
    store: Store, worker: ApiKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = open_person(store, worker)
    right = os.environ["CASEBOOK_MASTER_KEY"]
    monkeypatch.setenv("CASEBOOK_MASTER_KEY", new_master_key())
    with pytest.raises(MissingMasterKey, match="not the master key") as refused:
        Store(Settings(data_dir=store.settings.data_dir))
    assert right not in str(refused.value)
    # Past the start-up check (a store whose check row was tampered with), sealed data
    # still does not open: an error, never another person's data or garbage.
    wrong = Keyring(base64.b64decode(os.environ["CASEBOOK_MASTER_KEY"]))
    wrong.connection = store._key_connection
    with store.read() as conn:
        stored = conn.execute(
            select(tables.case_views.c.view).where(tables.case_views.c.case_id == case_id)
        ).scalar_one()
    with pytest.raises(MasterKeyChanged):  # each key says which master key wraps it
        wrong.open_text(case_id, stored)
    wrong.fingerprint = store.keyring.fingerprint  # and were that tampered with too
    with pytest.raises(MissingPersonKey):
        wrong.open_text(case_id, stored)
    # The right key still opens everything.
    assert Casebook(store).history(case_id)["events"][0]["fields"]["family_name"] == FAMILY


def test_a_keyring_without_keys_opens_nothing_and_seals_nothing() -> None:
    keys = NoKeys()
    case_id = uuid.uuid4()
    assert keys.key(case_id) is None
    assert keys.open(case_id, b"aad", b"\x00" * 40) is None
    assert keys.open_text(case_id, SEALED_TEXT + base64.b64encode(b"\x00" * 40).decode()) is None
    assert keys.open_text(case_id, '{"in":"clear"}') == '{"in":"clear"}'
    with pytest.raises(MissingPersonKey):
        keys.seal(case_id, b"aad", b"plain")


# ---- what an erased person's facts and identity read as --------------------------------

T0 = datetime(2021, 1, 1, 12, tzinfo=UTC)
FULL = Identity(
    family_name=FAMILY,
    given_names=GIVEN,
    date_of_birth="1987-03-29",
    sex="male",
    nationality="AM",
    service_number="12345",
    rank="private",
    place_of_birth="Plovjeszkrad",
    father_name=FATHER,
    mother_maiden_name="Vostrikova",
    person_to_inform="his sister",
    aliases=("Квзортиенник",),
)


def fact(type_: str, data: dict[str, Any], person: Identity | None = None) -> Fact:
    return Fact(
        version=2,
        type=type_,
        occurred_on=date(2021, 1, 1),
        recorded_at=T0,
        source={
            "kind": "family",
            "name": SOURCE_NAME,
            "reference": REFERENCE,
            "reported_on": "2021-01-01",
        },
        recorded_by={"key": "worker-1", "org": "org-a"},
        data=data,
        person=person,
    )


def test_an_erased_identity_keeps_only_the_clear_fields() -> None:
    assert CLEAR_FIELDS == ("nationality",)
    erased = ErasedIdentity.of(FULL)
    assert isinstance(erased, Identity) and erased.erased and not FULL.erased
    assert erased.to_dict() == {"nationality": "AM"}
    assert erased.names() == [] and not erased.has_a_name()
    assert ErasedIdentity.of(erased) == erased
    assert ErasedIdentity.of(Identity(family_name=FAMILY)).to_dict() == {}
    # The part kept in clear in the log is the same fields, but not marked erased.
    clear = FULL.clear_part()
    assert clear.to_dict() == erased.to_dict() and not clear.erased


def test_a_redacted_fact_keeps_nothing_personal() -> None:
    data = {
        "by_party": "AZ",
        "place": "Hadrut",
        "condition": "critical",
        "cause": CAUSE,
        "text": NOTE,
        "charge": "espionage",
        "basis": "art 4",
        "reason": "wrong person",
        "purpose": "tracing",
    }
    original = fact("captured", data, FULL)
    redacted = original.redacted()
    assert redacted.data == {"by_party": "AZ", "place": "Hadrut"}
    assert redacted.source == {"kind": "family", "reported_on": "2021-01-01"}
    assert isinstance(redacted.person, ErasedIdentity)
    assert redacted.person.to_dict() == {"nationality": "AM"}
    # The rest of the fact is as it was; the original is untouched.
    assert (redacted.version, redacted.type, redacted.occurred_on, redacted.recorded_at) == (
        2,
        "captured",
        date(2021, 1, 1),
        T0,
    )
    assert redacted.recorded_by == original.recorded_by
    assert original.person == FULL and original.data == data
    assert original.source["name"] == SOURCE_NAME
    assert redacted.redacted() == redacted
    assert fact("note", {"text": NOTE}).redacted().person is None


def test_the_personal_fields_are_the_free_texts_and_the_state_of_health() -> None:
    assert {"text", "cause", "charge", "basis", "reason", "purpose", "condition"} <= PERSONAL_DATA
    clear = {"by_party", "to_party", "held_by", "place", "to_place", "by", "to", "org"}
    assert not clear & PERSONAL_DATA
    assert {"classification", "version", "result", "sentence_ends_on"}.isdisjoint(PERSONAL_DATA)
    assert {"name", "reference"} == PERSONAL_SOURCE


def test_erasing_a_case_redacts_every_fact_before_it() -> None:
    stamp = Stamp(T0, "worker-1", "org-a")
    case = Case(
        category="prisoner_of_war",
        person=FULL,
        source={"kind": "family", "name": SOURCE_NAME},
        recorded_at=T0,
        recorded_by=stamp.recorded_by,
    )
    captured = {"by_party": "AZ", "place": "Hadrut"}
    case.record(NewFact("captured", date(2020, 11, 9), {"kind": "media"}, captured), stamp)
    case.record(
        NewFact("note", None, {"kind": "other", "name": SOURCE_NAME}, {"text": NOTE}), stamp
    )
    assert case.state().person == FULL
    case.erase("request DP-1", {"kind": "other"}, stamp)
    facts = case.facts
    assert [f.type for f in facts] == ["opened", "captured", "note", "erased"]
    assert facts[0].person == ErasedIdentity(nationality="AM")
    assert facts[1].data == captured  # the non-personal history stays
    assert facts[2].data == {} and "name" not in facts[2].source
    assert facts[3].data == {"reason": "request DP-1"}  # the register's own account
    state = case.state()
    assert state.person.erased and state.person.names() == []
    assert state.erased is not None and state.erased["reason"] == "request DP-1"
    assert state.held_by == "AZ" and state.status == "held"
    for canary in CANARIES:
        assert canary not in repr(facts)
    with pytest.raises(InvalidTransition):
        case.erase("again", {"kind": "other"}, stamp)
    with pytest.raises(InvalidTransition):
        case.record(NewFact("note", None, {"kind": "other"}, {"text": "more"}), stamp)
