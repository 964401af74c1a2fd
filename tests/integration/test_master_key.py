"""The master key and the register's secrets, on SQLite and PostgreSQL: a register made
when the name index's and the request digests' keys were derived from the master key
keeps them through the upgrade (searches and retried requests answer as before); after
``casebook master-key rotate`` the new key alone opens everything and the old one is
refused; a rotation killed half-way keeps anything from starting, goes on when run
again and ends as a whole one; a service left running writes nothing meanwhile; an
erased person stays erased through it all."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from api.app import create_app
from api.cli import main
from infrastructure import tables
from infrastructure.checkpoints import DEV_KEY_FILE
from infrastructure.crypto import Keyring, MissingMasterKey, new_master_key
from infrastructure.keys import KeyStore
from infrastructure.persistence import plain_engine
from infrastructure.rewrap import rotate
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.e2e.test_cli import run

FIXTURE = Path(__file__).parents[1] / "fixtures" / "derived_secrets"
MADE = json.loads((FIXTURE / "register.json").read_text())
MASTER = os.environ["CASEBOOK_MASTER_KEY"]  # the run's (tests/conftest.py)

# Invented people, opened with an Idempotency-Key each; the last is erased.
PEOPLE = [
    "Qarvenyan",
    "Brodlitzek",
    "Tsumbarov",
    "Helquistova",
    "Dzerplonian",
    "Mavrokladis",
    "Yulfengard",
    "Oxtebrunnel",
    "Zimpellaro",
    "Krushnavetz",
    "Pellegwynn",
    "Fjodmarsky",
    "Ulgarotti",
    "Wexhampton",
]


def keyed(settings: Settings, key: str) -> Settings:
    return settings.model_copy(update={"master_key": SecretStr(key)})


def fingerprint(key: str) -> str:
    return Keyring(_b(key)).fingerprint


def key_file(folder: Path, key: str) -> Path:
    path = folder / f"new-{uuid.uuid4().hex[:6]}.key"
    path.write_text(key + "\n")
    return path


def rotate_cli(
    settings: Settings, old: str, new_file: Path, *more: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    args = ("master-key", "rotate", "--new-key-file", str(new_file), *more)
    return run(settings, *args, env={"CASEBOOK_MASTER_KEY": old}, check=check)


def cli(settings: Settings, *args: str, master: str = MASTER) -> Result:
    """The command, in this process (quicker than a subprocess for its refusals)."""
    env = {"CASEBOOK_DATA_DIR": str(settings.data_dir), "CASEBOOK_MASTER_KEY": master}
    if settings.database_url:
        env["CASEBOOK_DATABASE_URL"] = settings.database_url
    return CliRunner().invoke(main, args, env=env)


ROTATE = ("master-key", "rotate", "--new-key-file")


def populate(settings: Settings) -> dict[str, Any]:
    """A register written through the API, as ``tests/fixtures/make_derived_register.py``
    wrote the fixture: people opened with an Idempotency-Key, a note, an erasure."""
    store = Store(settings)
    try:
        ks = KeyStore(store.engine)
        made: dict[str, Any] = {"requests": [], "people": {}}
        made["worker"] = ks.create("worker-1", "case_worker", "org-a")[1]
        made["admin"] = ks.create("admin-1", "admin", "org-a")[1]
    finally:
        store.close()
    with TestClient(create_app(settings)) as client:

        def post(role: str, path: str, body: dict[str, Any], idem: str) -> str:
            headers = {"Authorization": f"Bearer {made[role]}", "Idempotency-Key": idem}
            r = client.post(path, json=body, headers=headers)
            assert r.status_code in (200, 201), r.text
            request = {"role": role, "path": path, "body": body, "idempotency_key": idem}
            made["requests"].append(
                {
                    **request,
                    "status": r.status_code,
                    "etag": r.headers["etag"],
                    "id": r.json()["id"],
                }
            )
            return str(r.json()["id"])

        for n, family in enumerate(PEOPLE):
            person = {"family_name": family, "given_names": "Levon", "nationality": "AM"}
            body = {"category": "prisoner_of_war", "person": person, "source": {"kind": "ngo"}}
            made["people"][family] = post("worker", "/cases", body, f"open-{n}")
        note = {"type": "note", "text": "letter passed on", "source": {"kind": "icrc"}}
        post("worker", f"/cases/{made['people'][PEOPLE[0]]}/events", note, "note-0")
        made["erased"] = made["people"].pop(PEOPLE[-1])
        post("admin", f"/cases/{made['erased']}/erase", {"reason": "ref. DP-1"}, "erase-0")
    return made


def assert_answers_as_before(settings: Settings, made: dict[str, Any]) -> None:
    """Everyone is found by name and opens; every request retried with its
    Idempotency-Key gets its first answer (and, changed, is refused); the erased person
    is nowhere."""
    with TestClient(create_app(settings)) as client:
        worker = {"Authorization": f"Bearer {made['worker']}"}
        for family, case_id in made["people"].items():
            found = client.get("/cases", params={"q": family}, headers=worker).json()["items"]
            assert [f["id"] for f in found] == [case_id], family
            view = client.get(f"/cases/{case_id}", headers=worker)
            assert view.status_code == 200 and view.json()["person"]["family_name"] == family
            history = client.get(f"/cases/{case_id}/history", headers=worker)
            assert history.status_code == 200, history.text
        for sent in made["requests"]:
            headers = {
                "Authorization": f"Bearer {made[sent['role']]}",
                "Idempotency-Key": sent["idempotency_key"],
            }
            again = client.post(sent["path"], json=sent["body"], headers=headers)
            assert again.status_code == sent["status"], again.text
            assert (again.json()["id"], again.headers["etag"]) == (sent["id"], sent["etag"])
        sent = made["requests"][0]
        changed = {**sent["body"], "category": "civilian_internee"}
        headers = {**worker, "Idempotency-Key": sent["idempotency_key"]}
        assert client.post(sent["path"], json=changed, headers=headers).status_code == 422
        erased = client.get(f"/cases/{made['erased']}", headers=worker).json()
        assert erased["erased"] is not None and "family_name" not in erased["person"]
    assert key_row(settings, made["erased"])[:2] == (None, None)


def key_row(settings: Settings, key_id: str) -> tuple[Any, ...]:
    """A key's row: wrapped, wrapped by, erased at."""
    t, engine = tables.person_keys, plain_engine(settings)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                select(t.c.wrapped, t.c.wrapped_by, t.c.erased_at).where(
                    t.c.key_id == uuid.UUID(key_id)
                )
            ).one()
    finally:
        engine.dispose()
    return tuple(row)


def wrapped_by(settings: Settings) -> dict[str, int]:
    """How many keys each master key wraps (by fingerprint)."""
    t, engine = tables.person_keys, plain_engine(settings)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(t.c.wrapped_by, sqlalchemy.func.count())
                .where(t.c.wrapped.is_not(None))
                .group_by(t.c.wrapped_by)
            ).all()
    finally:
        engine.dispose()
    return {by: n for by, n in rows}


def load_derived_register(settings: Settings) -> dict[str, Any]:
    """The fixture's register, as the code before this change left it (schema 0004)."""
    which = "sqlite" if settings.is_sqlite else "postgres"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.is_sqlite:
        shutil.copy(FIXTURE / "register.sqlite", settings.sqlite_path())
    else:
        engine = sqlalchemy.create_engine(str(settings.database_url))
        with engine.begin() as conn:
            conn.exec_driver_sql((FIXTURE / "register.postgres.sql").read_text())
        engine.dispose()
    shutil.copy(FIXTURE / f"signing-key.{which}.pem", settings.data_dir / DEV_KEY_FILE)
    made: dict[str, Any] = MADE[which]
    return made


# ---- a register made when the secrets were derived -------------------------------------


def upgraded(settings: Settings) -> tuple[Settings, dict[str, Any]]:
    made = load_derived_register(settings)
    wrong = cli(settings, "upgrade", master=new_master_key())
    assert wrong.exit_code == 1 and "not the master key" in wrong.stderr
    upgraded = cli(settings, "upgrade", master=MADE["master_key"])
    assert upgraded.exit_code == 0, upgraded.output
    applied = "applied 4 migrations: 0005, 0006, 0007, 0008"
    assert applied in upgraded.stdout and "rebuil" not in upgraded.stdout
    return keyed(settings, MADE["master_key"]), made


def test_a_register_made_when_its_secrets_were_derived_answers_as_before_once_upgraded(
    settings: Settings,
) -> None:
    """No views rebuild: the name index is the one the earlier code hashed, the
    idempotency records the digests it made; both still match."""
    settings, made = upgraded(settings)
    assert_answers_as_before(settings, made)


def test_after_a_rotation_the_new_key_alone_opens_the_register_and_the_old_is_refused(
    settings: Settings, tmp_path: Path
) -> None:
    """The runbook's steps: a new key from `casebook master-key`, the rotation with the
    old key given as to the service, then the service with the new key alone."""
    settings, made = upgraded(settings)
    new = cli(settings, "master-key").output.strip()
    erased_before = key_row(settings, made["erased"])
    keys = sum(wrapped_by(settings).values())
    assert keys >= 3
    rotated = rotate_cli(settings, MADE["master_key"], key_file(tmp_path, new))
    assert f"rewrapped {keys} keys and 2 secrets" in rotated.stdout
    assert wrapped_by(settings) == {fingerprint(new): keys}
    assert_answers_as_before(keyed(settings, new), made)
    assert key_row(settings, made["erased"]) == erased_before  # erased, and untouched
    with pytest.raises(MissingMasterKey, match="not the master key"):
        Store(keyed(settings, MADE["master_key"]))
    refused = cli(settings, "keys", "list", master=MADE["master_key"])
    assert refused.exit_code == 1 and "not the master key" in refused.stderr
    again = cli(settings, *ROTATE, str(key_file(tmp_path, new)), master=MADE["master_key"])
    assert again.exit_code == 0 and "nothing to do" in again.stdout


# ---- a rotation killed half-way ---------------------------------------------------------

KILLED = """
import sys, time
from pathlib import Path
from infrastructure import rewrap
from infrastructure.crypto import Keyring, load_master_key, read_master_key_file
from infrastructure.persistence import plain_engine
from infrastructure.settings import Settings
settings = Settings()
def progress(done, total):
    print("rewrapped", done, flush=True)
    time.sleep(0.05)
old, new = load_master_key(settings), read_master_key_file(Path(sys.argv[1]))
rewrap.rotate(plain_engine(settings), Keyring(old), Keyring(new), progress, batch=3)
"""


def test_a_rotation_killed_half_way_stops_everything_until_run_again_then_ends_whole(
    settings: Settings, tmp_path: Path
) -> None:
    made = populate(settings)
    new = new_master_key()
    new_file = key_file(tmp_path, new)
    env = {**os.environ, "CASEBOOK_DATA_DIR": str(settings.data_dir)}
    if settings.database_url:
        env["CASEBOOK_DATABASE_URL"] = settings.database_url
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(new_file)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    reports = [child.stdout.readline() for _ in range(3)]
    child.kill()  # SIGKILL: no cleanup of any kind
    child.wait(30)
    assert reports[-1].startswith("rewrapped"), reports
    half = wrapped_by(settings)
    assert half[fingerprint(new)] >= 6 and half[fingerprint(MASTER)] > 0  # half-way
    for key in (MASTER, new):  # nothing starts, with either key, until it is finished
        with pytest.raises(MissingMasterKey, match="rotation was begun and has not finished"):
            Store(keyed(settings, key))
    refused = cli(settings, "keys", "list")
    assert refused.exit_code == 1 and "master-key rotate" in refused.stderr
    # another new key, or the new key given as the current one, cannot take over
    other = cli(settings, *ROTATE, str(key_file(tmp_path, new_master_key())))
    assert other.exit_code == 1 and "another new master key" in other.stderr
    swapped = cli(settings, *ROTATE, str(new_file), master=new)
    assert swapped.exit_code == 1 and "new master key is the one" in swapped.stderr

    resumed = rotate_cli(settings, MASTER, new_file, "--batch-size", "3")
    done = half[fingerprint(new)]
    assert f"(and {done} by the run that was stopped)" in resumed.stdout
    assert wrapped_by(settings) == {fingerprint(new): sum(half.values())}
    assert_answers_as_before(keyed(settings, new), made)
    with pytest.raises(MissingMasterKey, match="not the master key"):
        Store(keyed(settings, MASTER))


class Stop(Exception):
    """The rotation's process dies here."""


def stop_after(batches: int) -> Any:
    reports: list[int] = []

    def progress(done: int, total: int) -> None:
        reports.append(done)
        if len(reports) > batches:
            raise Stop

    return progress


def test_a_service_left_running_during_a_rotation_writes_nothing_and_says_why(
    settings: Settings, tmp_path: Path
) -> None:
    made = populate(settings)
    worker = {"Authorization": f"Bearer {made['worker']}"}
    first = min(made["people"].values(), key=uuid.UUID)  # rewrapped in the first batch
    new = new_master_key()
    body = {"category": "prisoner_of_war", "person": {"family_name": "Snorvelding"}}
    with TestClient(create_app(settings)) as client:  # started before, holds no key
        engine = plain_engine(settings)
        try:
            with pytest.raises(Stop):
                rotate(engine, Keyring(_b(MASTER)), Keyring(_b(new)), stop_after(1), batch=2)
        finally:
            engine.dispose()
        opened = client.post("/cases", json={**body, "source": {"kind": "ngo"}}, headers=worker)
        assert opened.status_code == 503 and "master key" in opened.json()["detail"]
        read = client.get(f"/cases/{first}", headers=worker)
        assert read.status_code == 503 and "master key" in read.json()["detail"]
    rotate_cli(settings, MASTER, key_file(tmp_path, new))
    assert_answers_as_before(keyed(settings, new), made)
    with TestClient(create_app(keyed(settings, new))) as client:
        found = client.get("/cases", params={"q": "Snorvelding"}, headers=worker).json()
        assert found["items"] == []  # the write refused left nothing


def test_an_erased_person_stays_erased_through_a_rotation(
    settings: Settings, tmp_path: Path
) -> None:
    made = populate(settings)
    before = key_row(settings, made["erased"])
    assert before[0] is None and before[2] is not None
    new = new_master_key()
    engine = plain_engine(settings)
    try:
        rotated = rotate(engine, Keyring(_b(MASTER)), Keyring(_b(new)), batch=4)
    finally:
        engine.dispose()
    assert rotated.keys == len(made["people"]) and rotated.secrets == 2
    assert key_row(settings, made["erased"]) == before
    assert_answers_as_before(keyed(settings, new), made)
    with TestClient(create_app(keyed(settings, new))) as client:
        worker = {"Authorization": f"Bearer {made['worker']}"}
        found = client.get("/cases", params={"q": PEOPLE[-1]}, headers=worker).json()
        assert found["items"] == []
        history = client.get(f"/cases/{made['erased']}/history", headers=worker).text
        assert PEOPLE[-1] not in history


def test_a_rotation_with_the_wrong_key_changes_nothing(settings: Settings, tmp_path: Path) -> None:
    made = populate(settings)
    before = wrapped_by(settings)

    def refused(new_file: Path, master: str = MASTER) -> str:
        result = cli(settings, *ROTATE, str(new_file), master=master)
        assert result.exit_code == 1, result.output
        return result.stderr

    assert "is not the register's" in refused(
        key_file(tmp_path, new_master_key()), new_master_key()
    )
    (tmp_path / "bad.key").write_text("not a key\n")
    assert "must be 32 bytes, base64" in refused(tmp_path / "bad.key")
    assert "cannot read the master key file" in refused(tmp_path / "none.key")
    assert "is the one the register has now" in refused(key_file(tmp_path, MASTER))
    assert wrapped_by(settings) == before
    assert_answers_as_before(settings, made)


def test_master_key_alone_still_prints_a_new_key(sqlite_settings: Settings) -> None:
    printed = [
        cli(sqlite_settings, *args).output.strip()
        for args in (["master-key"], ["master-key", "new"])
    ]
    assert [len(_b(p)) for p in printed] == [32, 32] and printed[0] != printed[1]


def _b(key: str) -> bytes:
    return base64.b64decode(key)
