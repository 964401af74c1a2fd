"""``casebook signing-key``: make, rotate and list the keys that sign checkpoints.

The order of a rotation's steps, and why a kill at any point leaves one key in force,
is in ``infrastructure.rotation``.
"""

from __future__ import annotations

from pathlib import Path

import click

from api.cli import _store, main
from api.timeline import printable
from infrastructure.checkpoints import MissingSecret, Signer, write_new_key
from infrastructure.settings import Settings


@main.group("signing-key")
def signing_key() -> None:
    """The keys that sign checkpoints of the hash chain."""


@signing_key.command("new")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def new_key(file: Path) -> None:
    """Write a new Ed25519 private key (PEM, mode 0600) to FILE, which must not exist:
    the key to give `signing-key rotate --new-key-file` (or a first production key)."""
    if not write_new_key(file):
        raise click.ClickException(f"{file} exists: give a new file")
    click.echo(f"wrote key {Signer.from_file(file).key_id} to {file}")


@signing_key.command("rotate")
@click.option(
    "--new-key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="the new private key (PEM Ed25519, e.g. from `casebook signing-key new`); "
    "required when CASEBOOK_SIGNING_KEY_FILE is set. Without it, the key in the data "
    "folder is replaced by a new one",
)
def rotate(new_key_file: Path | None) -> None:
    """Announce a new signing key: a statement signed by the key in force and by the new
    key, recorded with the chain position from which the new key signs. Then restart
    the service with the new key (it refuses to start with the old one)."""
    from infrastructure import rotation
    from infrastructure.faults import StorageFault

    settings = Settings()
    in_folder = settings.signing_key_file is None and new_key_file is None
    if settings.signing_key_file is not None and new_key_file is None:
        raise click.ClickException(
            "CASEBOOK_SIGNING_KEY_FILE is set: give the new key with --new-key-file FILE "
            "(make one with `casebook signing-key new FILE`)"
        )
    store = _store(settings)
    try:
        given = Signer.from_file(new_key_file) if new_key_file else None
        with store.engine.connect() as conn:
            waiting = rotation.interrupted(settings, conn) if in_folder else None
            done = given is not None and rotation.in_force(conn) == given.public_key
        if waiting is not None:  # killed after its commit: only the file step was left
            rotation.install_next_key(settings, waiting)
            click.echo(f"finished the interrupted rotation: key {waiting.key_id} is in force")
            return
        if done and given is not None:  # a rerun after a commit whose answer was lost
            click.echo(f"key {given.key_id} is in force already: nothing recorded")
            _tell_to_restart(new_key_file)
            return
        outgoing = Signer.from_settings(settings)
        incoming = given or rotation.make_next_key(settings)
        try:
            made = rotation.rotate(store, outgoing, incoming)
        except BaseException:
            if in_folder:  # never announced: a key that can sign nothing, gone
                rotation.next_key(settings, incoming.public_key).unlink(missing_ok=True)
            raise
        if in_folder:
            rotation.install_next_key(settings, incoming)
    except (MissingSecret, rotation.RotationRefused) as e:
        raise click.ClickException(str(e)) from None
    except StorageFault as e:
        raise click.ClickException(f"{e.detail}; retry") from None
    finally:
        store.close()
    click.echo(
        f"key {incoming.key_id} announced, signed by key {outgoing.key_id} and by itself: "
        f"it signs checkpoints from chain position {made.position} on"
    )
    _tell_to_restart(new_key_file)


def _tell_to_restart(new_key_file: Path | None) -> None:
    if new_key_file is None:
        click.echo("the data folder holds the new key: restart the service")
    else:
        click.echo(
            f"now set CASEBOOK_SIGNING_KEY_FILE={new_key_file} and restart the service "
            "(it refuses to start with the old key); then destroy the old key file"
        )


@signing_key.command("list")
def list_keys() -> None:
    """Every signing key, oldest first: key id, the positions it is in force for, the
    positions of the first and last checkpoints it signed. As the register lists them:
    `casebook verify` is what checks them."""
    from infrastructure.auditing import AuditReads

    settings = Settings()
    store = _store(settings)
    try:
        store.public_key = Signer.installed_public_key(settings)
        listed = AuditReads(store).keys()
    finally:
        store.close()
    for key in listed:
        until = "now" if key["in_force_until"] is None else key["in_force_until"]
        signed = (
            "no checkpoint"
            if key["first_checkpoint"] is None
            else f"checkpoints {key['first_checkpoint']}..{key['last_checkpoint']}"
        )
        click.echo(
            f"{key['sequence']}\t{key['key_id']}\tpositions {key['in_force_from']}..{until}"
            f"\t{printable(signed)}"
        )
