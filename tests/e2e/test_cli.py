"""The casebook command, run as an operator or auditor would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from domain.cases import ShareCase
from infrastructure.keys import KeyStore
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.book import Book as Casebook
from tests.conftest import new_case

CASEBOOK = str(Path(sys.executable).parent / "casebook")


def run(
    settings: Settings, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, "CASEBOOK_DATA_DIR": str(settings.data_dir), **(env or {})}
    if settings.database_url:
        env["CASEBOOK_DATABASE_URL"] = settings.database_url
    result = subprocess.run([CASEBOOK, *args], env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_keys_are_created_listed_and_revoked_and_the_secret_is_shown_once(settings):
    created = run(
        settings,
        "keys",
        "create",
        "--name",
        "desk-1",
        "--role",
        "case_worker",
        "--org",
        "bureau",
    )
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("cbk_") and len(secret) >= 40
    listing = run(settings, "keys", "list").stdout
    assert "desk-1\tcase_worker\tbureau" in listing and secret not in listing
    assert "active" in listing
    run(settings, "keys", "revoke", "desk-1")
    assert "revoked" in run(settings, "keys", "list").stdout
    again = run(
        settings,
        "keys",
        "create",
        "--name",
        "desk-1",
        "--role",
        "auditor",
        "--org",
        "bureau",
        check=False,
    )
    assert again.returncode != 0 and "already exists" in again.stderr
    bad_role = run(
        settings, "keys", "create", "--name", "x", "--role", "god", "--org", "b", check=False
    )
    assert bad_role.returncode != 0


def test_replay_prints_the_timeline_and_rebuild_reports_its_work(settings, client, keys):
    case = client.post(
        "/cases",
        headers=keys.worker,
        json={
            "category": "civilian_internee",
            "person": {"family_name": "Testyan"},
            "source": {"kind": "family"},
        },
    ).json()
    client.post(
        f"/cases/{case['id']}/events",
        headers=keys.worker,
        json={
            "type": "captured",
            "occurred_on": "2021-01-15",
            "by_party": "AZ",
            "place": "Hadrut",
            "source": {"kind": "media", "name": "a newspaper"},
        },
    )
    timeline = run(settings, "replay", case["id"]).stdout
    lines = timeline.splitlines()
    assert lines[0] == f"case {case['id']}"
    assert "v1" in lines[1] and "opened" in lines[1] and "worker-1 (org-a)" in lines[1]
    assert "2021-01-15" in lines[3] and "captured" in lines[3]
    assert "by_party=AZ" in lines[4] and "a newspaper" in lines[4]
    missing = run(settings, "replay", "6f1c2f4e-8a3b-4c2d-9e8f-0a1b2c3d4e5f", check=False)
    assert missing.returncode != 0 and "no such case" in missing.stderr
    rebuilt = run(settings, "views", "rebuild").stdout
    assert "rebuilt the views from 2 events" in rebuilt
    assert client.get(f"/cases/{case['id']}", headers=keys.worker).json()["held_by"] == "AZ"


def test_verify_exits_0_when_the_chain_holds_1_when_broken_2_when_it_cannot_check(
    settings, client, keys
):
    from sqlalchemy import update

    from infrastructure.store import Store

    case = client.post(
        "/cases",
        headers=keys.worker,
        json={
            "category": "missing_person",
            "person": {"family_name": "Testyan"},
            "source": {"kind": "family"},
        },
    ).json()
    ok = run(settings, "verify")
    assert ok.stdout.startswith("ok: 1 events chained")
    store = Store(settings)
    with store.engine.begin() as conn:
        conn.execute(update(store.events_table).values(topic="domain.case:Case.Forged"))
    store.close()
    broken = run(settings, "verify", check=False)
    assert broken.returncode == 1 and "BROKEN at position 1" in broken.stdout
    assert case["id"] not in broken.stdout
    unreachable = Settings(
        data_dir=settings.data_dir, database_url="postgresql+psycopg://nobody@127.0.0.1:9/none"
    )
    assert run(unreachable, "verify", check=False).returncode == 2


def test_checkpoint_prints_a_signed_checkpoint_that_verify_accepts(settings, tmp_path):
    import json

    made = run(settings, "checkpoint")
    checkpoint = json.loads(made.stdout)
    assert checkpoint["position"] == 0 and checkpoint["signature"]
    kept = tmp_path / "kept.json"
    kept.write_text(made.stdout)
    verified = run(settings, "verify", "--checkpoint", str(kept)).stdout
    assert "2 checkpoints agree" in verified  # the one kept and the one stored


def test_production_mode_refuses_to_serve_without_its_signing_key(tmp_path):
    env = {**os.environ, "CASEBOOK_DATA_DIR": str(tmp_path), "CASEBOOK_MODE": "production"}
    result = subprocess.run(
        [CASEBOOK, "serve", "--port", "9"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and "CASEBOOK_SIGNING_KEY_FILE" in result.stderr


def test_a_store_that_cannot_be_opened_is_said_plainly(tmp_path):
    broken = Settings(data_dir=tmp_path, database_url="postgresql+psycopg://x:pw@127.0.0.1:9/db")
    result = run(broken, "keys", "list", check=False)
    assert result.returncode == 1 and "cannot open the store" in result.stderr
    assert "Traceback" not in result.stderr and "pw" not in result.stderr


def test_an_export_is_verified_and_replayed_offline_and_tampering_shows(
    settings, client, keys, tmp_path
):
    case = client.post(
        "/cases",
        headers=keys.worker,
        json={
            "category": "prisoner_of_war",
            "person": {"family_name": "Testyan"},
            "source": {"kind": "family"},
        },
    ).json()
    client.post(
        f"/cases/{case['id']}/events",
        headers=keys.worker,
        json={
            "type": "captured",
            "occurred_on": "2021-01-15",
            "by_party": "AZ",
            "source": {"kind": "media"},
        },
    )
    kept = tmp_path / "kept.json"
    kept.write_text(run(settings, "checkpoint").stdout)
    export = tmp_path / "register.jsonl"
    run(settings, "export", "--output", str(export))
    offline = Settings(data_dir=tmp_path / "elsewhere", database_url="sqlite:///:memory:")
    verified = run(
        offline,
        "verify",
        "--export",
        str(export),
        "--replay",
        case["id"],
        "--checkpoint",
        str(kept),
    )
    assert "ok: 2 events chained" in verified.stdout and "2 checkpoints agree" in verified.stdout
    assert "captured" in verified.stdout and "by_party=AZ" in verified.stdout
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text(export.read_text().replace('"version":2', '"version":3'))
    broken = run(offline, "verify", "--export", str(tampered), check=False)
    assert broken.returncode == 1 and "BROKEN at position 2" in broken.stdout
    unanchored = run(offline, "verify", "--export", str(export)).stdout
    assert "note: unanchored" in unanchored
    one = tmp_path / "case.jsonl"
    run(settings, "export", "--case", case["id"], "--output", str(one))
    case_file = run(offline, "verify", "--export", str(one))
    assert case_file.returncode == 0 and "not anchored" in case_file.stdout


def test_verify_trusts_the_installations_key_not_one_found_in_the_database(
    settings, client, keys, tmp_path
):
    from sqlalchemy import insert

    from infrastructure import tables
    from infrastructure.checkpoints import Signer
    from infrastructure.store import Store

    client.post(
        "/cases",
        headers=keys.worker,
        json={
            "category": "missing_person",
            "person": {"family_name": "Testyan"},
            "source": {"kind": "family"},
        },
    )
    forger = Signer.from_settings(Settings(data_dir=tmp_path / "forger"))
    store = Store(settings)
    with store.engine.begin() as conn:
        conn.execute(insert(tables.checkpoints).values(**forger.sign(1, "0" * 64).as_dict()))
    store.close()
    result = run(settings, "verify", check=False)
    assert result.returncode == 1 and "another key" in result.stdout


def test_verify_works_on_a_read_only_store(settings, client, keys):
    """An auditor verifies a replica or a copy they may not write to."""
    new_case(client, keys.worker)
    assert client.post("/audit/checkpoints", headers=keys.admin).status_code == 201
    if settings.is_sqlite:
        path = settings.data_dir / "casebook.sqlite"
        url = f"sqlite:///file:{path}?mode=ro&uri=true"
    else:  # as a hot standby refuses writes
        url = f"{settings.database_url}?options=-c%20default_transaction_read_only%3Don"
    result = run(settings.model_copy(update={"database_url": url}), "verify", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        result.stdout.startswith("ok: 1 events chained") and "1 checkpoints agree" in result.stdout
    )


def test_replay_escapes_control_characters_stored_in_the_register(settings):
    """A share's purpose recorded before the API refused control characters (written
    here through the register itself) cannot act on the auditor's terminal."""
    hostile = "tracing\x1b]0;x\x07\x1b[2J\x1b[1A\x1b[2Kall events verified\u202e"
    store = Store(settings)
    try:
        keys = KeyStore(store.engine)
        key, _ = keys.create("desk-1", "case_worker", "org-a")
        keys.create("desk-2", "case_worker", "org-b")
        casebook = Casebook(store)
        case = casebook.open_case(
            {
                "category": "missing_person",
                "person": {"family_name": "Testyan"},
                "source": {"kind": "ngo"},
            },
            key,
        )
        # The use case itself, past the API's schema: as an older version stored it.
        store.register.share_case(ShareCase(case.case_id, "org-b", hostile), key)
    finally:
        store.close()
    out = run(settings, "replay", str(case.case_id)).stdout
    assert "shared" in out and "all events verified" in out
    assert not any(ch in out for ch in "\x1b\x07\u202e")
    assert "\\x1b]0;x\\x07\\x1b[2J" in out and "\\u202e" in out
