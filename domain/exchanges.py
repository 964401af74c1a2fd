"""Exchanges: the command (``NewExchange``, built at the API edge) and its use case.

An exchange is recorded with the matching fact on every case in it, in one save: all
of it, or ``ExchangeRefused`` naming every case that cannot take part (the rule is
``domain.exchange.check_handover``).
"""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from domain.application import RegisterBase
from domain.case import Case
from domain.errors import NegotiationNotFound
from domain.exchange import CaseProblem, Exchange, ExchangeRefused, NewExchange, record_on_case
from domain.negotiation import NegotiationError
from domain.ports import Caller, Transaction, Written


class ExchangeUseCases(RegisterBase):
    def record_exchange(
        self, command: NewExchange, caller: Caller, retry_key: Any = None
    ) -> Written:
        with self.writes.write(caller, retry_key) as tx:
            if tx.first is not None:
                return tx.first
            self._check_negotiation(tx, command)
            exchange_id = uuid.uuid4()
            cases = self._cases_taking_part(tx, command, exchange_id)
            stamp = tx.stamp
            exchange = Exchange._create(
                Exchange.Recorded,
                id=exchange_id,
                negotiation_id=str(command.negotiation_id) if command.negotiation_id else None,
                agreement=command.agreement,
                occurred_on=command.occurred_on,
                place=command.place,
                mediators=list(command.mediators),
                handovers=[h.to_dict() for h in command.handovers],
                consideration=list(command.consideration),
                announced=list(command.announced),
                source=command.source,
                recorded_at=stamp.recorded_at,
                recorded_by=stamp.recorded_by,
            )
            try:
                self.save(exchange, *cases)
            except IntegrityError:
                # Another writer recorded a version of one of the cases first; the
                # store's write lock makes this rare (a writer that bypasses it).
                raise ExchangeRefused(
                    [
                        CaseProblem(c.id, "version-conflict", "the case changed meanwhile")
                        for c in cases
                    ]
                ) from None
            return tx.done(201, exchange, *cases)

    def _check_negotiation(self, tx: Transaction, command: NewExchange) -> None:
        """The exchange's negotiation (one the caller may see), its agreement, and that
        every handover involves one of its parties."""
        if command.negotiation_id is None:
            if command.agreement is not None:
                raise NegotiationError({"agreement": "an agreement belongs to a negotiation_id"})
            return
        negotiation = self.get_negotiation(command.negotiation_id)
        if not tx.owns(negotiation.org):
            raise NegotiationNotFound(command.negotiation_id)
        if command.agreement is not None and not 1 <= command.agreement <= len(
            negotiation.agreements
        ):
            raise NegotiationError({"agreement": "no agreement with this number"})
        outsiders = {
            f"handovers[{i}]": "neither party is a party to the negotiation"
            for i, h in enumerate(command.handovers)
            if not {h.from_party, h.to_party} & set(negotiation.parties)
        }
        if outsiders:
            raise NegotiationError(outsiders)

    def _cases_taking_part(
        self, tx: Transaction, command: NewExchange, exchange_id: UUID
    ) -> list[Case]:
        """Every case in the exchange, its handover's fact recorded on it (not saved);
        ``ExchangeRefused`` naming every one that cannot take part. A case the caller
        may not see is answered as unknown."""
        ids = [h.case_id for h in command.handovers]
        hidden = tx.hidden_among(ids)
        loaded = self._get_many(ids)
        problems: list[CaseProblem] = []
        cases: list[Case] = []
        for handover in command.handovers:
            found = loaded[handover.case_id]
            if not isinstance(found, Case) or handover.case_id in hidden:
                problems.append(CaseProblem(handover.case_id, "not-found", "no such case"))
                continue
            problem = record_on_case(found, handover, exchange_id, command, tx.stamp)
            if problem is not None:
                problems.append(problem)
            cases.append(found)
        if problems:
            raise ExchangeRefused(problems)
        return cases
