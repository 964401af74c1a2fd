"""The register driven in process the way the API drives it, for tests and the bench.

Each write takes a request body as a client sends it: validated by the route's schema
(from JSON, as over HTTP), turned into its command by ``api.commands``, carried out by
the register's use case, answered by the read side, exactly as the routes do, only
without HTTP. Reads go straight to the read side (``__getattr__``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel, TypeAdapter

from api import commands, schemas
from domain.cases import EndShare, EraseCase, ShareCase
from domain.ports import Caller, Written
from infrastructure.auditing import AuditReads
from infrastructure.cases import CaseReads
from infrastructure.exchanges import ExchangeReads
from infrastructure.idempotency import Idempotency
from infrastructure.matching import match_entries
from infrastructure.negotiations import NegotiationReads
from infrastructure.readlog import Reader
from infrastructure.reports import report
from infrastructure.store import Store

FACT = TypeAdapter(schemas.FactCreate)


@dataclass(frozen=True)
class Answer:
    """A write's answer: its status, the id and version written, and the body."""

    status_code: int
    id: uuid.UUID
    version: int
    view: dict[str, Any]

    @property
    def case_id(self) -> uuid.UUID:
        return self.id


def _validated(model: type[BaseModel], payload: dict[str, Any]) -> BaseModel:
    return model.model_validate_json(json.dumps(payload, default=str))


def _answer(written: Written, body: dict[str, Any]) -> Answer:
    return Answer(written.status_code, written.id, written.version, body)


class Book:
    """Cases, as ``api.routers.cases`` drives them."""

    def __init__(self, store: Store):
        self.store = store
        self.register = store.register
        self.reads = CaseReads(store)
        self.audit = AuditReads(store)

    def __getattr__(self, name: str) -> Any:
        for side in (self.reads, self.audit):
            if hasattr(side, name):
                return getattr(side, name)
        raise AttributeError(name)

    def open_case(
        self,
        payload: dict[str, Any],
        key: Caller,
        idem: Idempotency | None = None,
        reader: Reader | None = None,
    ) -> Answer:
        body = _validated(schemas.CaseCreate, payload).model_dump(exclude_none=True)
        written = self.register.open_case(commands.open_case(body), key, idem)
        return _answer(written, self.reads.answer(written, key, reader))

    def record_fact(
        self,
        case_id: uuid.UUID,
        payload: dict[str, Any],
        key: Caller,
        expected_version: int | None = None,
        idem: Idempotency | None = None,
        reader: Reader | None = None,
    ) -> Answer:
        body = FACT.validate_json(json.dumps(payload, default=str)).model_dump(exclude_none=True)
        in_body = body.pop("expected_version", None)
        expected = expected_version if expected_version is not None else in_body
        command = commands.record_fact(case_id, body, expected)
        written = self.register.record_fact(command, key, idem)
        return _answer(written, self.reads.answer(written, key, reader))

    def share(
        self,
        case_id: uuid.UUID,
        org: str,
        key: Caller,
        purpose: str | None = None,
        idem: Idempotency | None = None,
        expected: int | None = None,
        reader: Reader | None = None,
    ) -> Answer:
        """Share the case with ``org`` (``purpose`` given), or end that share (None)."""
        if purpose is None:
            written = self.register.end_share(EndShare(case_id, org, None, expected), key)
        else:
            shared = _validated(schemas.ShareCreate, {"org": org, "purpose": purpose})
            command = ShareCase(case_id, org, shared.purpose, expected)  # type: ignore[attr-defined]
            written = self.register.share_case(command, key, idem)
        return _answer(written, self.reads.answer(written, key, reader))

    def erase(
        self,
        case_id: uuid.UUID,
        reason: str,
        key: Caller,
        expected: int | None = None,
        idem: Idempotency | None = None,
        reader: Reader | None = None,
    ) -> Answer:
        _validated(schemas.EraseCreate, {"reason": reason})
        written = self.register.erase_case(EraseCase(case_id, reason, expected), key, idem)
        return _answer(written, self.reads.answer(written, key, reader))


class Talks:
    """Negotiations and exchanges, as ``api.routers.negotiations`` and
    ``api.routers.exchanges`` drive them."""

    def __init__(self, store: Store):
        self.store = store
        self.register = store.register
        self.reads = NegotiationReads(store)
        self.exchanges = ExchangeReads(store)

    def __getattr__(self, name: str) -> Any:
        for side in (self.reads, self.exchanges):
            if hasattr(side, name):
                return getattr(side, name)
        raise AttributeError(name)

    def report(self, *args: Any, **kw: Any) -> dict[str, Any]:
        return report(self.store, *args, **kw)

    def open(
        self,
        payload: dict[str, Any],
        key: Caller,
        idem: Idempotency | None = None,
        reader: Reader | None = None,
    ) -> Answer:
        body = _validated(schemas.NegotiationCreate, payload).model_dump(mode="json")
        written = self.register.open_negotiation(commands.open_negotiation(body), key, idem)
        return _answer(written, self.reads.written(written, key, reader))

    def submit_list(
        self,
        negotiation_id: uuid.UUID,
        payload: dict[str, Any],
        key: Caller,
        expected: int | None = None,
        idem: Idempotency | None = None,
        reader: Reader | None = None,
    ) -> Answer:
        model = _validated(schemas.ListCreate, payload)
        body = model.model_dump(mode="json", exclude_none=True)
        body["entries"] = [
            e.model_dump(mode="json", exclude_none=True)
            for e in model.entries  # type: ignore[attr-defined]
        ]
        in_body = body.pop("expected_version", None)
        expected = expected if expected is not None else in_body
        command = commands.submit_list(negotiation_id, body, expected)
        self.reads.visible(negotiation_id, key)
        with self.store.snapshot() as conn:
            entries = match_entries(conn, self.store.keyring, command.entries, key)
        written = self.register.submit_list(replace(command, entries=entries), key, idem)
        return _answer(written, self.reads.written(written, key, reader, command.party))

    def confirm(
        self,
        negotiation_id: uuid.UUID,
        payload: dict[str, Any],
        key: Caller,
        idem: Idempotency | None = None,
        expected: int | None = None,
        reader: Reader | None = None,
    ) -> Answer:
        body = _validated(schemas.MatchConfirm, payload).model_dump(exclude_none=True)
        command = commands.confirm_match(negotiation_id, body, expected)
        written = self.register.confirm_match(command, key, idem)
        answer = self.reads.written(written, key, reader, command.party, command.list_version)
        return _answer(written, answer)

    def agree(
        self,
        negotiation_id: uuid.UUID,
        payload: dict[str, Any],
        key: Caller,
        expected: int | None = None,
        idem: Idempotency | None = None,
        reader: Reader | None = None,
    ) -> Answer:
        model = _validated(schemas.AgreementCreate, payload)
        body = model.model_dump(mode="json", exclude_none=True)
        in_body = body.pop("expected_version", None)
        expected = expected if expected is not None else in_body
        written = self.register.agree(commands.agree(negotiation_id, body, expected), key, idem)
        return _answer(written, self.reads.written(written, key, reader, agreement=True))

    def record_exchange(
        self,
        payload: dict[str, Any],
        key: Caller,
        idem: Idempotency | None = None,
        reader: Reader | None = None,
    ) -> Answer:
        model = _validated(schemas.ExchangeCreate, payload)
        body = model.model_dump(mode="json", exclude_none=True)
        body["handovers"] = [
            h.model_dump(mode="json", exclude_none=True)
            for h in model.handovers  # type: ignore[attr-defined]
        ]
        written = self.register.record_exchange(commands.record_exchange(body), key, idem)
        return _answer(written, self.exchanges.written(written, key, reader))
