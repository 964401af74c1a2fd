"""Exports on both stores: they verify offline, replay a case, and show tampering."""

from __future__ import annotations

import base64
import json
from uuid import UUID

import pytest

from infrastructure.checkpoints import Signer
from infrastructure.exports import Export, replay_from_export, verify_export
from infrastructure.keys import KeyStore
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.book import Book as Casebook
from tests.conftest import populate


@pytest.fixture
def casebook(store: Store, settings) -> Casebook:
    store.signer = Signer.from_settings(settings)
    key = KeyStore(store.engine).create("worker-1", "case_worker", "org-a")[0]
    casebook = Casebook(store)
    captured = {
        "type": "captured",
        "occurred_on": "2021-01-05",
        "by_party": "AZ",
        "source": {"kind": "media"},
    }
    populate(casebook, key, 3, [captured])
    store.checkpoint()
    return casebook


def lines(casebook: Casebook, case_id=None) -> list[str]:
    return list(casebook.export(case_id))


def kept_checkpoint(casebook: Casebook):
    return casebook.store.checkpoint()


def test_a_register_export_verifies_and_replays_a_case_offline(casebook: Casebook):
    kept = kept_checkpoint(casebook)
    export = Export.read(lines(casebook))
    alone = verify_export(export)
    assert (alone.ok, alone.events, alone.checkpoints) == (True, 6, 0)
    assert "unanchored" in (alone.note or "")
    result = verify_export(export, [kept])
    assert (result.ok, result.checkpoints, result.note) == (True, 2, None)
    assert result.head == casebook.verify().head
    case_id = UUID(export.events[0]["case_id"])
    replayed = replay_from_export(export, case_id)
    live = casebook.register.get_case(replayed.id)
    # The export carries no key: the person's part stays sealed, the rest replays.
    assert replayed.facts == [f.redacted() for f in live.facts]
    assert replayed.state().held_by == "AZ" and replayed.state().person.names() == []
    family_name = live.state().person.family_name
    stored = b"".join(base64.b64decode(e["state"]) for e in export.events)
    assert family_name and family_name.encode() not in stored


def test_a_changed_byte_in_an_export_is_found(casebook: Casebook):
    raw = lines(casebook)
    event = json.loads(raw[3])
    state = bytearray(base64.b64decode(event["state"]))
    state[5] ^= 1
    event["state"] = base64.b64encode(bytes(state)).decode()
    raw[3] = json.dumps(event) + "\n"
    result = verify_export(Export.read(raw))
    assert (result.ok, result.broken_at) == (False, event["position"])


def test_an_export_cut_short_or_with_a_removed_event_is_found(casebook: Casebook):
    raw = lines(casebook)
    without_last_event = raw[:6] + raw[7:]
    assert not verify_export(Export.read(without_last_event)).ok
    without_the_second_event = raw[:2] + raw[3:]  # raw[0] is the header
    assert verify_export(Export.read(without_the_second_event)).broken_at == 2
    assert not verify_export(Export.read(raw[:4])).ok  # no head


def test_an_export_that_disagrees_with_its_checkpoint_is_found(casebook: Casebook):
    raw = lines(casebook)
    forged = json.loads(raw[-1])
    assert forged["kind"] == "checkpoint"
    forged["head"] = "0" * 64
    result = verify_export(Export.read([*raw[:-1], json.dumps(forged) + "\n"]))
    assert not result.ok and "signed" in (result.problem or "")


def rewrite(raw: list[str], position: int, signer: Signer) -> list[str]:
    """A consistent rewrite of an export: one event altered, every later link and the
    head recomputed, and a checkpoint signed with the rewriter's own key."""
    from infrastructure.chain import link_hash

    out, previous = [raw[0]], "0" * 64
    for line in raw[1:]:
        item = json.loads(line)
        if item["kind"] == "event":
            state = base64.b64decode(item["state"])
            if item["position"] == position:
                state = state.replace(b"AZ", b"RU")
                item["state"] = base64.b64encode(state).decode()
            item["previous"] = previous
            item["hash"] = previous = link_hash(
                previous,
                item["position"],
                UUID(item["case_id"]),
                item["version"],
                item["topic"],
                state,
            )
        elif item["kind"] == "head":
            item["hash"] = previous
        elif item["kind"] == "checkpoint":
            item = signer.sign(item["position"], previous).as_dict() | {"kind": "checkpoint"}
        out.append(json.dumps(item) + "\n")
    return out


def test_a_kept_checkpoint_finds_a_consistent_rewrite_of_an_export(casebook: Casebook, tmp_path):
    kept = kept_checkpoint(casebook)
    raw = lines(casebook)
    forger = Signer.from_settings(Settings(data_dir=tmp_path / "forger"))
    rewritten = Export.read(rewrite(raw, 2, forger))
    assert verify_export(rewritten).ok  # consistent: the file alone cannot tell
    found = verify_export(rewritten, [kept])
    assert not found.ok and "signed" in (found.problem or "")


def test_the_header_cannot_turn_the_checks_off(casebook: Casebook):
    raw = lines(casebook)
    header = json.loads(raw[0])
    as_case = {**header, "scope": "case", "case_id": json.loads(raw[1])["case_id"]}
    without_an_event = [json.dumps(as_case) + "\n", *raw[1:3], *raw[4:]]
    result = verify_export(Export.read(without_an_event))
    assert not result.ok and "another case" in (result.problem or "")
    no_scope = [json.dumps({**header, "scope": "other"}) + "\n", *raw[1:]]
    assert not verify_export(Export.read(no_scope)).ok


def test_a_case_export_holds_only_that_case_and_verifies(casebook: Casebook):
    full = Export.read(lines(casebook))
    case_id = UUID(full.events[2]["case_id"])
    export = Export.read(lines(casebook, case_id))
    assert {e["case_id"] for e in export.events} == {str(case_id)}
    result = verify_export(export)
    assert result.ok and "not anchored" in (result.note or "")
    missing_a_version = Export.read(lines(casebook, case_id))
    del missing_a_version.events[0]
    assert not verify_export(missing_a_version).ok
    export.events[1]["topic"] = "domain.case:Case.Released"
    assert not verify_export(export).ok


def test_swapped_or_inserted_lines_in_an_export_are_found(casebook: Casebook):
    raw = lines(casebook)
    swapped = [raw[0], raw[2], raw[1], *raw[3:]]
    assert verify_export(Export.read(swapped)).broken_at == 1
    extra = json.loads(raw[3])
    extra["version"] += 10
    inserted = [*raw[:4], json.dumps(extra) + "\n", *raw[4:]]
    assert not verify_export(Export.read(inserted)).ok
