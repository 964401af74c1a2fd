"""The runbook's signing-key rotation, followed as an operator and an auditor would:
`casebook signing-key rotate` in development and production, a rotation killed before
and after its commit, the service that must be restarted with the new key, and
`GET /audit/keys`, whose statements an auditor checks with nothing but `cryptography`."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from infrastructure import tables
from infrastructure.auditing import AuditReads
from infrastructure.chain import Verification
from infrastructure.checkpoints import Signer, StaleSigningKey, write_new_key
from infrastructure.keys import KeyStore
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.book import Book as Casebook
from tests.conftest import populate, seen
from tests.e2e.test_cli import run


def record_events(settings: Settings, cases: int = 1) -> None:
    """Two events a case, written as the service would."""
    store = Store(settings)
    try:
        ks = KeyStore(store.engine)
        worker = next((k for k in ks.list() if k.name == "desk"), None)
        worker = worker or ks.create("desk", "case_worker", "org-a")[0]
        populate(Casebook(store), worker, cases, [seen(1)])
    finally:
        store.close()


def checkpoint(settings: Settings, key_file: Path | None = None) -> dict:
    """What `casebook checkpoint` prints, made in this process (a command costs a
    second of start-up; the rotations are what these tests run as commands)."""
    settings = settings.model_copy(update={"signing_key_file": key_file})
    store = Store(settings)
    try:
        store.signer = Signer.from_settings(settings)
        return store.checkpoint().shown()
    finally:
        store.close()


def verify(settings: Settings, key_file: Path | None = None) -> Verification:
    """What `casebook verify` answers, on the machine that holds the key."""
    settings = settings.model_copy(update={"signing_key_file": key_file})
    store = Store(settings)
    try:
        store.public_key = Signer.installed_public_key(settings)
        return AuditReads(store).verify()
    finally:
        store.close()


def announced(settings: Settings) -> int:
    store = Store(settings)
    try:
        with store.engine.connect() as conn:
            count: int = conn.execute(
                select(func.count()).select_from(tables.signing_keys)
            ).scalar_one()
            return count
    finally:
        store.close()


def checked_offline(items: list[dict]) -> list[str]:
    """What an auditor does with `GET /audit/keys` and only the `cryptography` package:
    each statement signed by the key before it and by the key it announces, naming that
    predecessor. The keys, in order, from the first."""
    chain = [items[0]["public_key"]]
    for item in items[1:]:
        signed = item["announcement"]["statement"].encode("ascii")
        statement = json.loads(signed)
        assert statement["previous_public_key"] == chain[-1]
        assert statement["public_key"] == item["public_key"]
        assert statement["position"] == item["in_force_from"]
        for key, signature in (
            (chain[-1], item["announcement"]["outgoing_signature"]),
            (item["public_key"], item["announcement"]["incoming_signature"]),
        ):  # raises InvalidSignature if it does not hold
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(key)).verify(
                base64.b64decode(signature), signed
            )
        chain.append(item["public_key"])
    return chain


def test_two_rotations_every_checkpoint_verifies_and_the_keys_are_listed(
    settings: Settings, keys, tmp_path: Path
) -> None:
    record_events(settings)
    kept = tmp_path / "kept.json"
    first = checkpoint(settings)
    kept.write_text(json.dumps(first))
    rotated = run(settings, "signing-key", "rotate").stdout
    assert "from chain position 2 on" in rotated and "restart the service" in rotated
    record_events(settings)
    second = checkpoint(settings)
    run(settings, "signing-key", "rotate")
    record_events(settings)
    third = checkpoint(settings)
    assert len({first["key_id"], second["key_id"], third["key_id"]}) == 3

    verified = verify(settings)
    assert (verified.ok, verified.checkpoints, verified.keys) == (True, 3, 3), verified.problem
    # An auditor's machine, without the installation's key: from the checkpoint they
    # kept before both rotations, or from the first public key, to the newest.
    auditor = settings.model_copy(
        update={"data_dir": tmp_path / "auditor", "database_url": settings.url()}
    )
    from_kept = run(auditor, "verify", "--checkpoint", str(kept)).stdout
    assert "4 checkpoints agree, signed by 3 keys in turn" in from_kept
    trusted = tmp_path / "first.pub"
    trusted.write_text(first["public_key"])
    assert run(auditor, "verify", "--trusted-key", str(trusted)).returncode == 0
    trusted.write_text("not a key")
    unreadable = run(auditor, "verify", "--trusted-key", str(trusted), check=False)
    assert unreadable.returncode == 2 and "--trusted-key" in unreadable.stderr

    with TestClient(create_app(settings)) as client:
        listed = client.get("/audit/keys", headers=keys.auditor)
        assert client.get("/audit/keys", headers=keys.worker).status_code == 403
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert [k["public_key"] for k in items] == [
        first["public_key"],
        second["public_key"],
        third["public_key"],
    ]
    spans = [(k["in_force_from"], k["in_force_until"], k["current"]) for k in items]
    assert spans == [(0, 2, False), (2, 4, False), (4, None, True)]
    signed = [(k["first_checkpoint"], k["last_checkpoint"]) for k in items]
    assert signed == [(2, 2), (4, 4), (6, 6)]
    assert items[0]["announcement"] is None
    assert checked_offline(items) == [k["public_key"] for k in items]
    listing = run(settings, "signing-key", "list").stdout.splitlines()
    assert [line.split("\t")[1] for line in listing] == [k["key_id"] for k in items]


KILLED = """
import os, signal, sys
from infrastructure import rotation
from api.cli import main
step, when = sys.argv[1], sys.argv[2]
original = getattr(rotation, step)
def killed(*args, **kwargs):
    if when == "after":
        original(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
setattr(rotation, step, killed)
main(["signing-key", "rotate"])
"""


def rotate_killed(settings: Settings, step: str, when: str) -> None:
    """`casebook signing-key rotate`, killed (SIGKILL: no cleanup) at a step."""
    env = {**os.environ, "CASEBOOK_DATA_DIR": str(settings.data_dir)}
    env["CASEBOOK_DATABASE_URL"] = settings.url()
    result = subprocess.run(
        [sys.executable, "-c", KILLED, step, when],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr


def test_a_rotation_killed_before_its_commit_leaves_the_old_key_in_force(
    settings: Settings,
) -> None:
    record_events(settings)
    old = checkpoint(settings)
    key_file = settings.data_dir / "checkpoint-signing-key.pem"
    before = key_file.read_bytes()
    rotate_killed(settings, "_record", "after")  # the statement inserted, not committed
    assert announced(settings) == 0 and key_file.read_bytes() == before
    assert checkpoint(settings)["public_key"] == old["public_key"]
    assert verify(settings).checkpoints == 2
    # Run again: the new key the killed run left, never announced, is replaced.
    (left,) = settings.data_dir.glob("checkpoint-signing-key.next-*.pem")  # never announced
    leftover = left.read_bytes()
    assert "announced" in run(settings, "signing-key", "rotate").stdout
    assert announced(settings) == 1 and key_file.read_bytes() not in (before, leftover)
    assert checkpoint(settings)["public_key"] != old["public_key"]
    assert verify(settings).keys == 2


def test_a_rotation_killed_after_its_commit_is_finished_by_running_it_again(
    settings: Settings,
) -> None:
    record_events(settings)
    old = checkpoint(settings)
    rotate_killed(settings, "install_next_key", "before")
    assert announced(settings) == 1  # the register names the new key; the folder not yet
    with pytest.raises(StaleSigningKey):
        checkpoint(settings)
    serving = run(settings, "serve", "--port", "0", check=False)
    assert serving.returncode == 1 and "is not the one in force" in serving.stderr
    finished = run(settings, "signing-key", "rotate").stdout
    assert "finished the interrupted rotation" in finished and announced(settings) == 1
    assert checkpoint(settings)["public_key"] != old["public_key"]
    assert verify(settings).keys == 2


def test_production_rotation_with_the_operators_new_key_file(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    """On SQLite only: what differs from development is the key files, not the store
    (the rotation's transaction is the same, run on both stores by the tests above)."""
    settings = sqlite_settings
    old_file, new_file = tmp_path / "old.pem", tmp_path / "new.pem"
    run(settings, "signing-key", "new", str(old_file))
    assert oct(old_file.stat().st_mode & 0o777) == "0o600"
    production = {"CASEBOOK_MODE": "production", "CASEBOOK_SIGNING_KEY_FILE": str(old_file)}
    record_events(settings)
    old = checkpoint(settings, old_file)
    no_file = run(settings, "signing-key", "rotate", env=production, check=False)
    assert no_file.returncode == 1 and "--new-key-file" in no_file.stderr
    write_new_key(new_file)
    rotated = run(
        settings, "signing-key", "rotate", "--new-key-file", str(new_file), env=production
    )
    assert f"set CASEBOOK_SIGNING_KEY_FILE={new_file}" in rotated.stdout
    again = run(settings, "signing-key", "rotate", "--new-key-file", str(new_file), env=production)
    assert "in force already" in again.stdout and announced(settings) == 1
    # The operator has not yet pointed the setting at the new key: refused, plainly.
    serving = run(settings, "serve", "--port", "0", env=production, check=False)
    assert serving.returncode == 1 and "is not the one in force" in serving.stderr
    stale = create_app(settings.model_copy(update={"signing_key_file": old_file}))
    with pytest.raises(StaleSigningKey), TestClient(stale):  # nor does an app's worker
        pass
    record_events(settings)
    new = checkpoint(settings, new_file)
    assert (old["position"], new["position"]) == (2, 4) and new["key_id"] != old["key_id"]
    assert verify(settings, new_file).keys == 2


def test_a_service_still_running_with_the_rotated_key_signs_no_more(
    settings: Settings, client, keys
) -> None:
    record_events(settings)
    assert client.post("/audit/checkpoints", headers=keys.admin).status_code == 201
    run(settings, "signing-key", "rotate")
    refused = client.post("/audit/checkpoints", headers=keys.admin)
    assert refused.status_code == 503
    assert refused.json()["type"] == "/problems/signing-key-rotated"
    verified = client.get("/audit/verify", headers=keys.auditor).json()
    assert verified["ok"] and verified["keys"] == 2  # its key is the old one: reached too
    with TestClient(create_app(settings)) as restarted:
        assert restarted.post("/audit/checkpoints", headers=keys.admin).status_code == 201
