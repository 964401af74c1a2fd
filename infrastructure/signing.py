"""Signing keys over time: the statements that announce a new checkpoint-signing key,
and the walk that checks them from a key the auditor trusts.

When the key is rotated (``casebook signing-key rotate``), the register keeps a
statement, canonical JSON (keys sorted, no spaces, ASCII), that names the new public
key and its fingerprint, the key before it, its place in the sequence of keys, and the
chain position (with the chain's hash there) and time from which it signs. The
statement's exact bytes are signed twice: by the outgoing key, which hands over to the
new one, and by the new key, which proves it is held by whoever announced it.

The first key signs checkpoints from position 0 to the position of the first
announcement; each later key from its own announcement's position to the next one's
(both ends included: at a rotation's position the head was signed by both). A
checkpoint signed by a key outside its span is refused: a retired key, were it to leak
later, cannot sign for the chain after its retirement.

Verification trusts one key that does not come from the database (the installation's
own key file, a key the auditor gives, or the key of a checkpoint the auditor kept) and
never the database's list alone: every announcement must be signed by the key in force
before it and by the key it announces, name that predecessor, and agree with the
chain's hash at its position; the trusted key must be one of the keys so linked; every
checkpoint must be signed by one of them, in force at its position. The walk runs
forwards from an old trusted key (each key vouched for by the one before it) and
backwards from a newer one (each new key's own signature on its announcement vouches
for the key it took over from). This module is pure: the register and an export file
give it what they hold.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from infrastructure.checkpoints import Checkpoint, Signer, fingerprint, key_id

KIND = "casebook-signing-key-v1"
HEX64 = re.compile(r"^[0-9a-f]{64}$")
FIELDS = {
    "kind",
    "sequence",
    "previous_public_key",
    "previous_fingerprint",
    "public_key",
    "fingerprint",
    "position",
    "head",
    "announced_at",
}


def canonical(fields: dict[str, Any]) -> str:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


class Stored(NamedTuple):
    """An announcement as the register or an export holds it. ``position`` is only
    where to say it is, should its statement be unreadable: the statement is trusted."""

    position: int
    statement: str
    outgoing_signature: str  # base64
    incoming_signature: str  # base64


class BadAnnouncement(ValueError):
    pass


@dataclass(frozen=True)
class Announcement:
    """A statement announcing a new key, read from its exact text."""

    stored: Stored
    sequence: int  # 1 for the first key after the first
    previous_public_key: str
    public_key: str
    position: int
    head: str
    announced_at: str

    @classmethod
    def make(
        cls,
        sequence: int,
        outgoing: Signer,
        incoming: Signer,
        position: int,
        head: str,
        announced_at: str,
    ) -> Announcement:
        statement = canonical(
            {
                "kind": KIND,
                "sequence": sequence,
                "previous_public_key": outgoing.public_key,
                "previous_fingerprint": fingerprint(outgoing.public_key),
                "public_key": incoming.public_key,
                "fingerprint": fingerprint(incoming.public_key),
                "position": position,
                "head": head,
                "announced_at": announced_at,
            }
        )
        signed = statement.encode()
        return cls.read(
            Stored(
                position,
                statement,
                base64.b64encode(outgoing.sign_bytes(signed)).decode(),
                base64.b64encode(incoming.sign_bytes(signed)).decode(),
            )
        )

    @classmethod
    def read(cls, stored: Stored) -> Announcement:
        """The statement's fields, or ``BadAnnouncement`` when it is not one this code
        writes (not canonical JSON, a field missing, extra or of the wrong kind)."""
        try:
            fields = json.loads(stored.statement)
        except (ValueError, TypeError):
            raise BadAnnouncement("its statement is not JSON") from None
        if not isinstance(fields, dict) or set(fields) != FIELDS or fields["kind"] != KIND:
            raise BadAnnouncement("its statement is not a signing-key announcement")
        if canonical(fields) != stored.statement:
            raise BadAnnouncement("its statement is not in canonical form")
        keys = (fields["previous_public_key"], fields["public_key"], fields["head"])
        numbers = (fields["sequence"], fields["position"])
        if not all(isinstance(v, str) and HEX64.match(v) for v in keys) or not all(
            type(n) is int and n >= 0 for n in numbers
        ):
            raise BadAnnouncement("its statement holds a field of the wrong form")
        if (fields["previous_fingerprint"], fields["fingerprint"]) != (
            fingerprint(keys[0]),
            fingerprint(keys[1]),
        ) or not isinstance(fields["announced_at"], str):
            raise BadAnnouncement("its statement's fingerprints are not its keys'")
        at = fields["announced_at"]
        return cls(stored, numbers[0], keys[0], keys[1], numbers[1], keys[2], at)

    def signed_by(self, public_key: str, signature: str) -> bool:
        try:
            key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key))
            key.verify(base64.b64decode(signature, validate=True), self.stored.statement.encode())
        except (ValueError, binascii.Error, InvalidSignature):
            return False
        return True

    def as_dict(self) -> dict[str, str]:
        """What an auditor checks offline: the statement (its ASCII bytes are what was
        signed) and both signatures, base64."""
        return {
            "statement": self.stored.statement,
            "outgoing_signature": self.stored.outgoing_signature,
            "incoming_signature": self.stored.incoming_signature,
        }


@dataclass(frozen=True)
class Span:
    """A key, and the chain positions it may sign checkpoints for (``end`` None: on)."""

    public_key: str
    start: int
    end: int | None
    announcement: Announcement | None = None  # None for the first key

    def covers(self, position: int) -> bool:
        return self.start <= position and (self.end is None or position <= self.end)


def read_public_key(text: str) -> str:
    """A public key an auditor keeps, as hex of the raw key: given as that hex, as the
    JSON ``GET /audit/key`` answers, or as a PEM public key; ``ValueError`` if not."""
    text = text.strip()
    if text.startswith("{"):
        found = json.loads(text)
        text = str(found.get("public_key", "")) if isinstance(found, dict) else ""
    elif text.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    if not HEX64.match(text.lower()):
        raise ValueError("not an Ed25519 public key (64 hex digits, JSON or PEM)")
    return text.lower()


class Broken(NamedTuple):
    position: int
    problem: str


HashAt = Callable[[int], "str | None"]


def walk(stored: Sequence[Stored], hash_at: HashAt) -> tuple[list[Span], Broken | None]:
    """The keys the announcements link, each with its span; the first announcement that
    does not hold, if any (then the keys before it only)."""
    spans: list[Span] = []
    for n, row in enumerate(stored, start=1):
        try:
            a = Announcement.read(row)
        except BadAnnouncement as e:
            return spans, Broken(row.position, f"the signing-key announcement no. {n}: {e}")
        problem = _link_problem(a, n, spans, hash_at)
        if problem is not None:
            return spans, Broken(a.position, f"the announcement of signing key {_id(a)}: {problem}")
        if not spans:
            spans.append(Span(a.previous_public_key, 0, None))
        spans[-1] = Span(spans[-1].public_key, spans[-1].start, a.position, spans[-1].announcement)
        spans.append(Span(a.public_key, a.position, None, a))
    return spans, None


def _id(a: Announcement) -> str:
    return key_id(a.public_key)


def _link_problem(a: Announcement, n: int, spans: list[Span], hash_at: HashAt) -> str | None:
    before = spans[-1] if spans else None
    if a.sequence != n:
        return f"it says it is no. {a.sequence} in the sequence of keys, where it is no. {n}"
    if before is not None and a.previous_public_key != before.public_key:
        return (
            "it names as the outgoing key one that was not in force before it "
            f"(key id {key_id(a.previous_public_key)}, not {key_id(before.public_key)})"
        )
    if before is not None and a.position < before.start:
        return f"its position comes before the previous key's ({before.start})"
    if not a.signed_by(a.previous_public_key, a.stored.outgoing_signature):
        return (
            "it is not signed by the key in force before it "
            f"(key id {key_id(a.previous_public_key)})"
        )
    if not a.signed_by(a.public_key, a.stored.incoming_signature):
        return "it is not signed by the key it announces (no proof of possession)"
    if any(s.public_key == a.public_key for s in spans) or a.public_key == a.previous_public_key:
        return "it announces a key that was in force before"
    chained = hash_at(a.position)
    if chained is None:
        return f"the chain is shorter than its position {a.position}"
    if chained != a.head:
        return (
            f"the chain was rewritten at or before position {a.position}: its hash there "
            "is not the one signed in the announcement"
        )
    return None


def check(
    stored: Sequence[Stored],
    trusted: str,
    checkpoints: Sequence[Checkpoint],
    hash_at: HashAt,
) -> tuple[list[Span], Broken | None]:
    """Walk the announcements, anchor them at the ``trusted`` key, then check every
    checkpoint: signed by a key so reached, in force at its position, and agreeing with
    the chain (``hash_at``). The keys, and the first thing that does not hold."""
    spans, broken = walk(stored, hash_at)
    if broken is not None:
        return spans, broken
    if not spans:  # no rotation yet: one key, the trusted one
        spans = [Span(trusted, 0, None)]
    elif not any(s.public_key == trusted for s in spans):
        unreached = (
            f"the signing-key announcements do not reach the key you trust (key id "
            f"{key_id(trusted)}): they begin with another key"
        )
        return spans, Broken(spans[1].start, unreached)
    for checkpoint in checkpoints:
        problem = _checkpoint_problem(checkpoint, spans, hash_at)
        if problem is not None:
            return spans, Broken(checkpoint.position, problem)
    return spans, None


def _checkpoint_problem(checkpoint: Checkpoint, spans: list[Span], hash_at: HashAt) -> str | None:
    span = next((s for s in spans if s.public_key == checkpoint.public_key), None)
    if span is None:
        return (
            "the checkpoint was signed with another key than the installation's, one the "
            f"signing-key announcements do not reach (key id {checkpoint.key_id})"
        )
    if not span.covers(checkpoint.position):
        until = "on" if span.end is None else f"to {span.end}"
        return (
            f"the checkpoint at position {checkpoint.position} was signed with key "
            f"{checkpoint.key_id}, which was not in force there (from {span.start} {until})"
        )
    if not checkpoint.signature_holds():
        return "the checkpoint's signature does not hold: it is not what its key signed"
    chained = hash_at(checkpoint.position)
    if chained is None:
        return f"the chain is shorter than the checkpoint at position {checkpoint.position}"
    if chained != checkpoint.head:
        return (
            f"the chain was rewritten at or before position {checkpoint.position}: "
            "its hash there is not the one signed in the checkpoint"
        )
    return None
