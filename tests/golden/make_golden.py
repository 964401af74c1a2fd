"""How ``stored_events.json`` was made, once, by the code as it stored events on
2026-12-06 (before the core path was restructured). Kept to show what is in the file;
never run it again to "update" the file: the file is the point. A new event type is
added to the file by appending events made by the code that introduces it.

    .venv/bin/python -m tests.golden.make_golden tests/golden/stored_events.json

Every person in it is invented. The master key is a test key, written into the file.
"""

from __future__ import annotations

import base64
import json
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select

from infrastructure import tables
from infrastructure.crypto import new_master_key
from infrastructure.keys import KeyStore
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.book import Book as Casebook
from tests.book import Talks as Negotiations

SOURCE = {
    "kind": "icrc",
    "name": "ICRC delegation",
    "reference": "T-1",
    "reported_on": "2021-01-10",
}


def fact(kind: str, day: str | None = None, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind, "source": SOURCE, **fields}
    if day is not None:
        out["occurred_on"] = day
    return out


def make(path: Path) -> None:
    master = new_master_key()
    settings = Settings(data_dir=Path(tempfile.mkdtemp()), master_key=master)
    store = Store(settings)
    cases, nid = populate(store)
    dump(store, path, master, cases, nid)


def populate(store: Store) -> tuple[dict[str, uuid.UUID], uuid.UUID]:
    """Write the small register: five invented people, a negotiation, an exchange, an
    erasure. Returns the cases by name, and the negotiation's id. (Also used, with the
    code of its day, for ``tests/fixtures/make_old_register.py``.)"""
    keys = KeyStore(store.engine)
    worker, _ = keys.create("golden-desk", "case_worker", "golden-bureau")
    admin, _ = keys.create("golden-admin", "admin", "golden-bureau")
    keys.create("golden-partner", "case_worker", "golden-partner")
    casebook, talks = Casebook(store), Negotiations(store)

    def open_case(**person: Any) -> uuid.UUID:
        body = {
            "category": "prisoner_of_war",
            "person": {"nationality": "AM", **person},
            "source": {"kind": "family", "name": "his sister", "reported_on": "2020-11-12"},
        }
        return casebook.open_case(body, worker).case_id

    def record(case_id: uuid.UUID, *facts: dict[str, Any]) -> None:
        for f in facts:
            casebook.record_fact(case_id, f, worker)

    # Aram: captured, held, moved, classified by both sides, charged, visited... and
    # handed over in an exchange that carries out an agreement.
    aram = open_case(
        family_name="Goldenyan",
        given_names="Aram",
        date_of_birth="1999-03-02",
        sex="male",
        service_number="GX-1001",
        rank="private",
        place_of_birth="Goldenavan",
        father_name="Vahe",
        mother_maiden_name="Testova",
        person_to_inform="his sister",
        aliases=["Голденян Арам"],
    )
    record(
        aram,
        fact("captured", "2020-11-10", by_party="AZ", place="Hadrut"),
        fact("held", "2020-12-01", by_party="AZ", place="Baku"),
        fact("transferred", "2021-01-05", by_party="AZ", to_place="Ganja"),
        fact("hospitalised", "2021-01-07", place="Ganja hospital", condition="fracture"),
        fact("visited", "2021-01-20", by="ICRC", place="Ganja", held_by="AZ"),
        fact("holding_acknowledged", "2021-01-21", by_party="AZ"),
        fact("classified", "2021-01-22", by_party="AM", classification="prisoner_of_war"),
        fact(
            "classified",
            "2021-02-02",
            by_party="AZ",
            classification="criminal_detainee",
            basis="border crossing",
        ),
        fact("charged", "2021-02-03", by_party="AZ", charge="illegal border crossing"),
        fact(
            "sentenced",
            "2021-03-01",
            by_party="AZ",
            charge="illegal border crossing",
            sentence_ends_on="2027-03-01",
        ),
        fact("willingness_verified", "2021-06-01", by="ICRC", result="willing"),
        fact("family_informed", "2021-06-02", channel="telephone"),
        fact("transmitted", "2021-06-03", to="CTA", channel="capture card"),
        fact("identity_updated", "2021-06-04", aliases=["Goldenian Aram"]),
        fact("note", text="the family asks for news\nsecond line"),
    )
    # Lusine: held, denied, seen; released; escaped and recaptured; retracted note.
    lusine = open_case(family_name="Goldenyan", given_names="Lusine", sex="female")
    record(
        lusine,
        fact("held", "2021-01-02", by_party="AZ", place="Shusha"),
        fact("holding_denied", "2021-01-03", by_party="AZ"),
        fact("seen", "2021-01-04", place="Shusha"),
        fact("escaped", "2021-02-01", by_party="AZ"),
        fact("recaptured", "2021-02-05", by_party="AZ", place="Lachin"),
        fact("released", "2021-03-01", by_party="AZ", to_party="IR"),
        fact("repatriated", "2021-03-05", to_party="AM", place="Meghri"),
        fact("note", text="to be retracted"),
    )
    history = casebook.history(lusine)["events"]
    record(lusine, fact("retracted", version=history[-1]["version"], reason="wrong case"))
    # Gor: died, remains returned; closed and reopened.
    gor = open_case(family_name="Goldenyan", given_names="Gor")
    record(
        gor,
        fact("captured", "2020-10-01", by_party="AZ", place="Jabrayil"),
        fact("died", "2020-10-20", place="Jabrayil", cause="wounds"),
        fact("remains_returned", "2021-01-15", to_party="AM", place="Goris"),
        fact("closed", reason="remains returned"),
        fact("reopened", reason="a second source"),
    )
    # Shared and the share ended.
    casebook.share(gor, "golden-partner", worker, "tracing request from the family")
    casebook.share(gor, "golden-partner", worker)
    # Two more people, for a refused and an absent handover.
    davit = open_case(family_name="Goldenyan", given_names="Davit")
    record(davit, fact("captured", "2020-11-10", by_party="AZ", place="Hadrut"))
    narek = open_case(family_name="Goldenyan", given_names="Narek")
    record(narek, fact("captured", "2020-11-10", by_party="AZ", place="Hadrut"))
    # A negotiation: lists (by case id, and by name), a confirmed match, an agreement.
    opened = talks.open(
        {
            "title": "Talks on detainees",
            "parties": ["AM", "AZ"],
            "mediators": ["RU", "ICRC"],
            "principle": "all_for_all",
            "opened_on": "2021-06-01",
        },
        worker,
        None,
    )
    nid = opened.id
    talks.submit_list(
        nid,
        {
            "submitted_by": "AM",
            "submitted_on": "2021-06-10",
            "entries": [{"case_id": str(aram)}, {"case_id": str(davit)}, {"case_id": str(narek)}],
        },
        worker,
        None,
        None,
    )
    talks.submit_list(
        nid,
        {
            "submitted_by": "AZ",
            "submitted_on": "2021-06-12",
            "entries": [
                {"name": "Голденян Арам", "date_of_birth": "1999-03-02", "nationality": "AM"},
                {"name": "Nobodyan Vahe", "nationality": "AM"},
                {"name": "Голденян Нарек", "nationality": "AM"},
            ],
        },
        worker,
        None,
        None,
    )
    talks.confirm(
        nid, {"party": "AZ", "list_version": 1, "entry": 1, "case_id": davit}, worker, None
    )
    talks.agree(
        nid,
        {
            "agreed_on": "2021-07-01",
            "transfers": [
                {"case_id": str(c), "from_party": "AZ", "to_party": "AM"}
                for c in (aram, davit, narek)
            ],
            "consideration": [
                {"from_party": "AM", "to_party": "AZ", "description": "minefield maps"}
            ],
            "source": {"kind": "party", "name": "AZ", "reported_on": "2021-07-01"},
        },
        worker,
        None,
        None,
    )
    talks.record_exchange(
        {
            "negotiation_id": str(nid),
            "agreement": 1,
            "occurred_on": "2021-07-03",
            "place": "border crossing",
            "mediators": ["RU"],
            "handovers": [
                {
                    "case_id": str(aram),
                    "from_party": "AZ",
                    "to_party": "AM",
                    "outcome": "handed_over",
                },
                {
                    "case_id": str(davit),
                    "from_party": "AZ",
                    "to_party": "AM",
                    "outcome": "refused",
                    "refused_by": "person",
                },
                {"case_id": str(narek), "from_party": "AZ", "to_party": "AM", "outcome": "absent"},
            ],
            "consideration": [
                {"from_party": "AM", "to_party": "AZ", "description": "minefield maps"}
            ],
            "source": {"kind": "party", "name": "AZ"},
            "announced": [{"by_party": "AZ", "count": 15}, {"by_party": "AM", "count": 14}],
        },
        worker,
        None,
    )
    # Narek is erased: his key and his list entry's go; NamesErased on the negotiation.
    casebook.erase(narek, "request 2026/17 under the data protection policy, art. 9", admin)
    cases = {"aram": aram, "lusine": lusine, "gor": gor, "davit": davit, "narek": narek}
    return cases, nid


def dump(
    store: Store, path: Path, master: str, cases: dict[str, uuid.UUID], nid: uuid.UUID
) -> None:
    """The golden file, with the column names of its day (``case_id`` for a key's id)."""
    with store.engine.connect() as conn:
        events = conn.execute(select(store.events_table).order_by(store.events_table.c.id)).all()
        person_keys = conn.execute(select(tables.person_keys)).all()
        erasures = conn.execute(select(tables.erasures).order_by(tables.erasures.c.id)).all()
    store.close()
    out = {
        "made_on": "2026-12-06",
        "master_key": master,
        "cases": {name: str(case_id) for name, case_id in cases.items()},
        "negotiation": str(nid),
        "events": [
            {
                "originator_id": str(e.originator_id),
                "originator_version": e.originator_version,
                "topic": e.topic,
                "state": bytes(e.state).decode("utf-8"),
            }
            for e in events
        ],
        "person_keys": [
            {
                "case_id": str(k.case_id),
                "wrapped": base64.b64encode(k.wrapped).decode() if k.wrapped else None,
                "created_at": k.created_at.isoformat(),
                "erased_at": k.erased_at.isoformat() if k.erased_at else None,
            }
            for k in person_keys
        ],
        "erasures": [
            {"case_id": str(e.case_id), "erased_at": e.erased_at.isoformat()} for e in erasures
        ],
    }
    path.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    make(Path(sys.argv[1]))
