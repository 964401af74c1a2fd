"""The mapper that seals each stored event's personal part (``infrastructure.crypto``
says what is sealed with which key, and why).

A case event's identity, personal fields and source name are taken out of its state
and stored as one sealed blob bound to the case and version; a negotiation's list
entries each with a key of their own; the free text of negotiations and exchanges with
a key of the record's own. Reading reverses it; a blob whose key was destroyed opens as
erased.
"""

from __future__ import annotations

import base64
import json
from base64 import b64decode
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Snapshot
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder

from domain.case import Case
from domain.exchange import Exchange
from domain.facts import PERSONAL_SOURCE
from domain.identity import ErasedIdentity, Identity
from domain.negotiation import PERSONAL_ENTRY_FIELDS, Negotiation, erased_entry
from infrastructure.crypto import Keyring, MissingPersonKey

# Events of negotiations and exchanges whose free text and sources are sealed with a
# key of the record's own (``SealingMapper._with_sealed_text``).
RECORD_TEXT_EVENTS = (Negotiation.Opened, Negotiation.AgreementReached, Exchange.Recorded)


def _split_source(source: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]:
    """A source without its name and reference (a person, perhaps), and those."""
    if not source:
        return source, {}
    clear = {k: v for k, v in source.items() if k not in PERSONAL_SOURCE}
    return clear, {k: v for k, v in source.items() if k in PERSONAL_SOURCE}


def _with_state(domain_event: Any, state: dict[str, Any]) -> Any:
    """A copy of an event (frozen: its state set directly) with another state."""
    copy = object.__new__(type(domain_event))
    object.__setattr__(copy, "__dict__", state)
    return copy


class SealingMapper(Mapper[UUID]):
    """The library's mapper, sealing the personal part of every case event with the
    person's key on the way in and opening it on the way out. An erased person's events
    come out redacted (``Fact.redacted``'s shape): the identity's clear fields only,
    and no personal data or source name."""

    def __init__(
        self,
        transcoder: Transcoder,
        keyring: Keyring,
        key_made: Callable[[UUID], bool] = lambda case_id: False,
    ):
        super().__init__(transcoder)
        self.keyring = keyring
        # Whether a new case's key was made already, with others, by the save in
        # progress (``ChainedRegister._record``): one statement for a bulk opening.
        self.key_made = key_made

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        if isinstance(domain_event, Snapshot):
            raise TypeError("snapshots would hold personal data outside its seal")
        if isinstance(domain_event, Negotiation.ListSubmitted):
            return super().to_stored_event(self._with_sealed_entries(domain_event))
        if isinstance(domain_event, RECORD_TEXT_EVENTS):
            return super().to_stored_event(self._with_sealed_text(domain_event))
        personal_fields = getattr(type(domain_event), "personal_data", None)
        if personal_fields is None:  # no personal data
            return super().to_stored_event(domain_event)
        state = dict(vars(domain_event))
        personal: dict[str, Any] = {}
        person: Identity | None = state.get("person")
        if person is not None:
            personal["person"] = person.to_dict()
            state["person"] = person.clear_part()
        state["source"], sealed_source = _split_source(state.get("source"))
        if sealed_source:
            personal["source"] = sealed_source
        data = state.get("data") or {}
        if personal_fields & data.keys():
            personal["data"] = {k: v for k, v in data.items() if k in personal_fields}
            state["data"] = {k: v for k, v in data.items() if k not in personal_fields}
        if personal:
            case_id, version = domain_event.originator_id, domain_event.originator_version
            if isinstance(domain_event, Case.Opened) and not self.key_made(case_id):
                self.keyring.create([case_id], domain_event.recorded_at)
            plaintext = json.dumps(personal, ensure_ascii=False, separators=(",", ":")).encode()
            blob = self.keyring.seal(case_id, _event_aad(case_id, version), plaintext)
            state["sealed"] = base64.b64encode(blob).decode()
        return super().to_stored_event(_with_state(domain_event, state))

    def _with_sealed_text(self, domain_event: Any) -> Any:
        """A negotiation's or an exchange's event with its free text (a title, the
        descriptions of what is given in return) and its sources' names and references
        sealed with a key of the record's own, whose id the state keeps (``key``).
        Encrypted at rest like the rest; no person's erasure reaches them, since they
        describe talks and exchanges, not one person (the README says what to keep out)."""
        state = dict(vars(domain_event))
        personal: dict[str, Any] = {}
        if "title" in state:
            personal["title"], state["title"] = state["title"], ""
        if "source" in state:
            state["source"], personal["source"] = _split_source(state["source"])
        if state.get("consideration"):
            personal["consideration"] = [c["description"] for c in state["consideration"]]
            state["consideration"] = [
                {k: v for k, v in c.items() if k != "description"} for c in state["consideration"]
            ]
        if state.get("announced"):
            split = [_split_source(a.get("source")) for a in state["announced"]]
            personal["announced"] = [p for _, p in split]
            state["announced"] = [
                {**a, "source": c} if "source" in a else a
                for a, (c, _) in zip(state["announced"], split, strict=True)
            ]
        personal = {k: v for k, v in personal.items() if v and (k != "announced" or any(v))}
        if personal:
            key_id = uuid4()
            self.keyring.create([key_id], domain_event.recorded_at)
            plaintext = json.dumps(personal, ensure_ascii=False).encode()
            blob = self.keyring.seal(key_id, _record_aad(key_id), plaintext)
            state["key"], state["sealed"] = str(key_id), base64.b64encode(blob).decode()
        return _with_state(domain_event, state)

    def _open_text(self, state: dict[str, Any]) -> None:
        key_id = UUID(state.pop("key"))
        plain = self.keyring.open(key_id, _record_aad(key_id), b64decode(state.pop("sealed")))
        if plain is None:
            raise MissingPersonKey(f"the key of record {key_id} is gone")
        personal = json.loads(plain)
        if "title" in personal:
            state["title"] = personal["title"]
        if "source" in personal:
            state["source"] = {**state["source"], **personal["source"]}
        if "consideration" in personal:
            state["consideration"] = [
                {**c, "description": d}
                for c, d in zip(state["consideration"], personal["consideration"], strict=True)
            ]
        if "announced" in personal:
            state["announced"] = [
                {**a, "source": {**a["source"], **p}} if p else a
                for a, p in zip(state["announced"], personal["announced"], strict=True)
            ]

    def _with_sealed_entries(self, domain_event: Any) -> Any:
        """A list's event with each name entry's name and date of birth sealed with a
        key of the entry's own, whose id the entry keeps (``key``): erasing a person
        destroys the keys of the entries tied to them (``Negotiation.entries_of``)."""
        state = dict(vars(domain_event))
        named = [i for i, e in enumerate(state["entries"]) if "name" in e]
        key_ids = [uuid4() for _ in named]
        self.keyring.create(key_ids, domain_event.recorded_at)
        entries = list(state["entries"])
        for i, key_id in zip(named, key_ids, strict=True):
            entry = entries[i]
            personal = {k: entry[k] for k in PERSONAL_ENTRY_FIELDS if k in entry}
            plaintext = json.dumps(personal, ensure_ascii=False).encode()
            blob = self.keyring.seal(key_id, _entry_aad(key_id), plaintext)
            clear = {k: v for k, v in entry.items() if k not in PERSONAL_ENTRY_FIELDS}
            entries[i] = {**clear, "key": str(key_id), "sealed": base64.b64encode(blob).decode()}
        state["entries"] = entries
        return _with_state(domain_event, state)

    def _open_entries(self, state: dict[str, Any]) -> None:
        sealed = [e for e in state["entries"] if "sealed" in e]
        self.keyring.load(UUID(e["key"]) for e in sealed)
        opened = []
        for entry in state["entries"]:
            if "sealed" in entry:
                entry = dict(entry)
                key_id = UUID(entry["key"])
                plain = self.keyring.open(
                    key_id, _entry_aad(key_id), b64decode(entry.pop("sealed"))
                )
                entry = erased_entry(entry) if plain is None else {**json.loads(plain), **entry}
            opened.append(entry)
        state["entries"] = opened

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        domain_event = super().to_domain_event(stored_event)
        state = domain_event.__dict__
        if isinstance(domain_event, Negotiation.ListSubmitted):
            self._open_entries(state)
            return domain_event
        if "key" in state and isinstance(domain_event, RECORD_TEXT_EVENTS):
            self._open_text(state)
            return domain_event
        sealed = state.pop("sealed", None)
        if sealed is None:
            return domain_event
        case_id = UUID(str(stored_event.originator_id))
        aad = _event_aad(case_id, stored_event.originator_version)
        plain = self.keyring.open(case_id, aad, base64.b64decode(sealed))
        if plain is None:  # erased: what stays is what was in clear
            if state.get("person") is not None:
                state["person"] = ErasedIdentity.of(state["person"])
            return domain_event
        personal = json.loads(plain)
        if "person" in personal:
            state["person"] = Identity.from_dict(personal["person"])
        if "source" in personal:
            state["source"] = {**state["source"], **personal["source"]}
        if "data" in personal:
            state["data"] = {**state["data"], **personal["data"]}
        return domain_event


def _record_aad(key_id: UUID) -> bytes:
    return b"casebook record:" + key_id.bytes


def _entry_aad(key_id: UUID) -> bytes:
    return b"casebook list entry:" + key_id.bytes


def _event_aad(case_id: UUID, version: int) -> bytes:
    return b"casebook event:" + case_id.bytes + version.to_bytes(8, "big")
