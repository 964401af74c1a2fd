"""The person behind a case: identity fields, each of which may be unknown or withheld.

GC III Arts. 17 and 122(4) and GC IV Art. 138 list what an information bureau records
"in so far as available". Any of it can be missing, and a party may withhold it, so
every field holds a value, ``"unknown"`` or ``"withheld"`` (or is absent, which means
the same as unknown). ``Identity`` is the one value object that carries these fields;
the per-person encryption of identifying data hooks in where it is serialised (see
``domain.application.IdentityAsDict``), nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import date
from typing import Any

from domain.values import ALPHA2, MAX_TEXT, check_text, parse_day

UNKNOWN = "unknown"
WITHHELD = "withheld"
MARKERS = (UNKNOWN, WITHHELD)

SEXES = ("male", "female", "unknown")

# The identity fields kept in clear in the log and the views; every other one is sealed
# with the person's own key (``infrastructure.crypto``). Nationality stays because list
# filters, the summary report and reconciliation count people by it ("held by one party
# and national of another"), and because it identifies nobody on its own.
CLEAR_FIELDS = ("nationality",)
MAX_ALIASES = 50


class IdentityError(ValueError):
    """Identity data that cannot be right: names each bad field."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Identity:
    """What is known of a person's identity. ``None`` means not given (unknown)."""

    family_name: str | None = None
    given_names: str | None = None
    date_of_birth: str | None = None
    sex: str | None = None
    nationality: str | None = None
    service_number: str | None = None
    rank: str | None = None
    place_of_birth: str | None = None
    father_name: str | None = None
    mother_maiden_name: str | None = None
    person_to_inform: str | None = None
    aliases: tuple[str, ...] = field(default=())

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Identity:
        """Validate client data; raise ``IdentityError`` naming every bad field."""
        errors: dict[str, str] = {}
        values: dict[str, Any] = {}
        for name in cls.field_names():
            if name not in data or data[name] is None:
                continue
            try:
                values[name] = _check_field(name, data[name])
            except ValueError as e:
                errors[name] = str(e)
        unknown = sorted(set(data) - set(cls.field_names()))
        for name in unknown:
            errors[name] = "unknown field"
        if errors:
            raise IdentityError(errors)
        return cls(**values)

    def merged(self, changes: Identity) -> Identity:
        """This identity with the fields ``changes`` gives replaced and its aliases added."""
        updates = {
            name: getattr(changes, name)
            for name in self.field_names()
            if name != "aliases" and getattr(changes, name) is not None
        }
        aliases = self.aliases + tuple(a for a in changes.aliases if a not in self.aliases)
        return replace(self, aliases=aliases, **updates)

    def names(self) -> list[str]:
        """Every spelling by which the person may be searched: full name and aliases."""
        full = " ".join(
            part for part in (self.family_name, self.given_names) if part and part not in MARKERS
        )
        return [n for n in (full, *self.aliases) if n]

    def has_a_name(self) -> bool:
        """What api.md requires of a new case: a family name (known or not) or an alias."""
        return self.family_name is not None or bool(self.aliases)

    @property
    def erased(self) -> bool:
        return False

    def clear_part(self) -> Identity:
        """Only the fields kept in clear (``CLEAR_FIELDS``)."""
        return Identity(**{name: getattr(self, name) for name in CLEAR_FIELDS})

    def is_empty(self) -> bool:
        return self == Identity()

    def to_dict(self) -> dict[str, Any]:
        """Only the fields that were given: absent means unknown."""
        out: dict[str, Any] = {}
        for name in self.field_names():
            value = getattr(self, name)
            if name == "aliases":
                if value:
                    out[name] = list(value)
            elif value is not None:
                out[name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Identity:
        values = dict(data)
        if "aliases" in values:
            values["aliases"] = tuple(values["aliases"])
        return cls(**values)


@dataclass(frozen=True)
class ErasedIdentity(Identity):
    """What is left of a person's identity once they were erased: the clear fields.
    Their names, dates and the rest were sealed with a key that no longer exists."""

    @property
    def erased(self) -> bool:
        return True

    @classmethod
    def of(cls, person: Identity) -> ErasedIdentity:
        return cls(**vars(person.clear_part()))


def _check_field(name: str, value: Any) -> Any:
    if name == "aliases":
        return _check_aliases(value)
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if value.strip() in MARKERS:
        return value.strip()
    if not value.strip():
        raise ValueError("must not be empty (leave it out, or say 'unknown' or 'withheld')")
    value = check_text(value, MAX_TEXT)
    if name == "date_of_birth":
        if parse_day(value) > date.today():
            raise ValueError("must not be in the future")
    elif name == "sex" and value not in SEXES:
        raise ValueError(f"must be one of {', '.join(SEXES)}, or 'withheld'")
    elif name == "nationality" and not ALPHA2.match(value):
        raise ValueError("must be an ISO 3166-1 alpha-2 code such as AM or AZ")
    return value


def _check_aliases(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(a, str) for a in value):
        raise ValueError("must be a list of strings")
    aliases = tuple(dict.fromkeys(check_text(a, MAX_TEXT) for a in value if a.strip()))
    if len(aliases) > MAX_ALIASES:
        raise ValueError(f"at most {MAX_ALIASES} aliases")
    return aliases
