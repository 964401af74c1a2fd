"""The operator's runbook, backing up and restoring, followed as written (README:
"Back up and restore"), on SQLite and PostgreSQL: a backup taken while the service
answers; an erasure after it; a restore of that backup, which must not bring the
erased person back anywhere (the erasure canary's checks); what the auditor's kept
checkpoints then say."""

from __future__ import annotations

import json
import sqlite3
import tarfile
import uuid
from pathlib import Path

import pytest
import sqlalchemy
from fastapi.testclient import TestClient

from api.app import create_app
from infrastructure import tables
from infrastructure.crypto import new_master_key
from infrastructure.ledger import ErasureLedger, LedgerRefused, ledger_url
from infrastructure.ledger import facts as ledger_facts
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.conftest import Keys
from tests.e2e.test_cli import run
from tests.e2e.test_erasure import (
    FAMILY,
    erase,
    found,
    history,
    list_person,
    names_in,
    open_person,
    wrapped_keys,
)


def every_row_text(settings: Settings) -> dict[str, str]:
    """Every table of the register's database, each row as text (bytes decoded)."""
    engine = sqlalchemy.create_engine(settings.url())
    out: dict[str, str] = {}
    try:
        with engine.connect() as conn:
            for name in sqlalchemy.inspect(conn).get_table_names():
                rows = conn.exec_driver_sql(f'SELECT * FROM "{name}"').all()
                out[name] = "\n".join(
                    " ".join(
                        bytes(c).decode("utf-8", "replace")
                        if isinstance(c, bytes | memoryview)
                        else str(c)
                        for c in row
                    )
                    for row in rows
                )
    finally:
        engine.dispose()
    return out


def test_a_restored_copy_made_before_an_erasure_keeps_the_person_erased(
    settings: Settings, keys: Keys, tmp_path: Path
) -> None:
    copy = tmp_path / "register.backup"
    with TestClient(create_app(settings)) as client:
        cid = open_person(client, keys)["id"]
        n = list_person(client, keys, cid)
        other = client.post(
            "/cases",
            json={
                "category": "missing_person",
                "person": {"family_name": "Testyan"},
                "source": {"kind": "family"},
            },
            headers=keys.worker,
        ).json()["id"]
        # 1. back up while the service runs
        made = run(settings, "backup", str(copy))
        assert f"backed up to {copy}" in made.stdout
        refused = run(settings, "backup", str(copy), check=False)
        assert refused.returncode == 1 and "exists" in refused.stderr
        wrapped = wrapped_keys(settings)[uuid.UUID(cid)]
        assert wrapped is not None
        # 2. the person is erased after the copy, and an auditor keeps a checkpoint
        assert erase(client, keys.admin, cid).status_code == 200
        kept = json.loads(run(settings, "checkpoint").stdout)
        (tmp_path / "kept.json").write_text(json.dumps(kept))
        assert found(client, keys, FAMILY) == []

    # 3. restore (the service stopped): refused over a register without --force
    refused = run(settings, "restore", str(copy), check=False)
    assert refused.returncode == 1 and "--force" in refused.stderr
    restored = run(
        settings, "restore", str(copy), "--force", "--checkpoint", str(tmp_path / "kept.json")
    )
    assert "1 erasures made again" in restored.stdout, restored.stdout
    assert f"checkpoint at position {kept['position']} is past the copy" in restored.stdout

    # the person is erased again, with a new erasure saying why; the other is there
    with TestClient(create_app(settings)) as client:
        erased = [e for e in history(client, keys, cid) if e["type"] == "erased"]
        assert len(erased) == 1 and "erasure ledger" in json.dumps(erased[0])
        for path in (f"/cases/{cid}", f"/cases/{cid}/history", f"/negotiations/{n['id']}"):
            got = client.get(path, headers=keys.auditor)
            assert got.status_code == 200, got.text
            assert names_in(got.text) == [], path
        assert found(client, keys, FAMILY) == []
        assert found(client, keys, "Testyan") == [other]
    # nothing of them in any table, in clear; their key destroyed
    for name, text in every_row_text(settings).items():
        assert names_in(text) == [], name
    assert wrapped_keys(settings)[uuid.UUID(cid)] is None
    if settings.is_sqlite:  # nor the destroyed key in the file
        assert wrapped not in settings.sqlite_path().read_bytes()

    # 4. the auditor: the chain holds; the kept checkpoint past the copy no longer
    # matches, and verify says why
    assert run(settings, "verify").returncode == 0
    checked = run(settings, "verify", "--checkpoint", str(tmp_path / "kept.json"), check=False)
    assert checked.returncode == 1 and "restored at" in checked.stdout, checked.stdout

    # the ledger holds ids only, never a name
    ledger = ErasureLedger.of(settings)
    try:
        assert [str(e.case_id) for e in ledger.entries()] == [cid]
    finally:
        ledger.close()


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_an_altered_or_broken_copy_is_refused_and_the_register_is_untouched(
    settings: Settings, keys: Keys, tmp_path: Path
) -> None:
    copy = tmp_path / "register.backup"
    with TestClient(create_app(settings)) as client:
        cid = open_person(client, keys)["id"]
        run(settings, "backup", str(copy))
        assert erase(client, keys.admin, cid).status_code == 200
    before = settings.sqlite_path().read_bytes()

    # the copy altered after the backup (here, its chain), its manifest kept
    work = tmp_path / "work"
    with tarfile.open(copy) as archive:
        archive.extractall(work, filter="data")
    con = sqlite3.connect(work / "register.sqlite")
    con.execute(f"UPDATE {tables.chain.name} SET hash = ? WHERE position = 2", ("0" * 64,))
    con.commit()
    con.close()
    altered = tmp_path / "altered.backup"
    with tarfile.open(altered, "w") as archive:
        archive.add(work / "manifest.json", arcname="manifest.json")
        archive.add(work / "register.sqlite", arcname="register.sqlite")
    refused = run(settings, "restore", str(altered), "--force", check=False)
    assert refused.returncode == 1 and "not the one the manifest signed" in refused.stderr
    assert settings.sqlite_path().read_bytes() == before

    # a copy of a register whose chain was broken before the backup: signed, but it
    # does not verify
    with TestClient(create_app(settings)) as client:
        open_person(client, keys)
    engine = sqlalchemy.create_engine(settings.url())
    with engine.begin() as conn:
        conn.execute(
            sqlalchemy.update(tables.chain)
            .where(tables.chain.c.position == 2)
            .values(hash="0" * 64)
        )
    engine.dispose()
    broken_copy = tmp_path / "broken.backup"
    run(settings, "backup", str(broken_copy))
    before = settings.sqlite_path().read_bytes()
    refused = run(settings, "restore", str(broken_copy), "--force", check=False)
    assert refused.returncode == 1 and "does not verify" in refused.stderr, refused.stderr
    assert settings.sqlite_path().read_bytes() == before
    assert not Path(f"{settings.sqlite_path()}.restoring").exists()


def test_a_restore_refuses_what_is_not_this_installations_backup(
    settings: Settings, keys: Keys, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"not a backup at all")
    refused = run(settings, "restore", str(junk), check=False)
    assert refused.returncode == 1 and "nothing restored" in refused.stderr
    copy = tmp_path / "register.backup"
    run(settings, "backup", str(copy))
    other_master = {"CASEBOOK_MASTER_KEY": new_master_key()}
    refused = run(settings, "restore", str(copy), "--force", check=False, env=other_master)
    assert refused.returncode == 1 and "another master key" in refused.stderr, refused.stderr
    run(settings, "signing-key", "rotate")  # the copy's key is retired
    refused = run(settings, "restore", str(copy), "--force", check=False)
    assert refused.returncode == 1 and "before a signing-key rotation" in refused.stderr
    stranger = settings.model_copy(update={"data_dir": tmp_path / "elsewhere"})
    (tmp_path / "elsewhere").mkdir()
    if settings.is_sqlite:  # another installation: another signing key
        refused = run(stranger, "restore", str(copy), check=False)
        assert refused.returncode == 1 and "not signed by this installation" in refused.stderr


@pytest.mark.parametrize(
    "settings", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_a_postgresql_restore_cut_short_is_refused_until_run_again(
    settings: Settings, keys: Keys, tmp_path: Path
) -> None:
    """pg_restore replaces the register in its own database: a restore that fails or
    is killed part-way leaves its mark in the ledger, outside that database, and no
    store opens the register until a restore succeeds."""
    copy = tmp_path / "register.backup"
    with TestClient(create_app(settings)) as client:
        cid = open_person(client, keys)["id"]
        run(settings, "backup", str(copy))
        assert erase(client, keys.admin, cid).status_code == 200
    with ErasureLedger.of(settings).engine.begin() as conn:  # killed after the drop
        conn.execute(sqlalchemy.insert(ledger_facts).values(name="restoring", value="now"))
    with pytest.raises(LedgerRefused, match="restore of this register was not finished"):
        Store(settings)
    refused = run(settings, "keys", "list", check=False)
    assert refused.returncode == 1 and "casebook restore" in refused.stderr
    run(settings, "restore", str(copy), "--force")
    with TestClient(create_app(settings)) as client:
        assert names_in(client.get(f"/cases/{cid}", headers=keys.auditor).text) == []


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_a_restore_without_the_copys_ledger_is_refused_unless_told(
    settings: Settings, keys: Keys, tmp_path: Path
) -> None:
    """The disk that held the register and its ledger died: a new ledger does not know
    who was erased after the copy. The restore says so, and goes on only when told."""
    copy = tmp_path / "register.backup"
    with TestClient(create_app(settings)) as client:
        open_person(client, keys)
    run(settings, "backup", str(copy))
    lost = ledger_url(settings).removeprefix("sqlite:///")
    Path(lost).unlink()
    refused = run(settings, "restore", str(copy), "--force", check=False)
    assert refused.returncode == 1 and "--new-ledger" in refused.stderr, refused.stderr
    run(settings, "restore", str(copy), "--force", "--new-ledger")
    assert run(settings, "verify").returncode == 0
