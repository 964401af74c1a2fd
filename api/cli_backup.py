"""``casebook backup FILE``, ``casebook restore FILE [--force] [--checkpoint KEPT]
[--new-ledger]`` and ``casebook erasure-ledger adopt`` (``infrastructure.backup``,
``infrastructure.restore``, ``infrastructure.reconcile``): what they did, on stdout;
a refusal, on stderr with exit status 1, having changed nothing it could keep from
changing (the README's runbook says what to do next)."""

from __future__ import annotations

from pathlib import Path

import click

from api.cli import _kept, _store, main
from infrastructure.backup import BackupError, backup
from infrastructure.checkpoints import MissingSecret, Signer
from infrastructure.ledger import LedgerRefused
from infrastructure.restore import RestoreRefused, restore
from infrastructure.settings import Settings


@main.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def backup_command(file: Path) -> None:
    """Copy the register to FILE while the service runs, ending with a signed
    checkpoint of the copy's head. FILE must not exist."""
    from infrastructure.rotation import require_current

    settings = Settings()
    store = _store(settings)
    try:
        signer = Signer.from_settings(settings)
        require_current(store.engine, signer)  # a retired key signs nothing
        made = backup(store, file, signer)
    except (BackupError, MissingSecret) as e:
        raise click.ClickException(str(e)) from None
    finally:
        store.close()
    checkpoint = made.checkpoint
    click.echo(
        f"backed up to {file}: the chain to position {checkpoint.position} "
        f"(head {checkpoint.head[:16]}...), checkpoint signed at {checkpoint.made_at}"
    )


@main.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="replace a register that holds events")
@click.option(
    "--checkpoint",
    "kept",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="a JSON file of checkpoints you kept: those up to the copy's head must match",
)
@click.option(
    "--new-ledger",
    is_flag=True,
    help="the copy's erasure ledger is lost for good: restore with this one, knowing "
    "that erasures made after the copy will not be made again",
)
def restore_command(file: Path, force: bool, kept: Path | None, new_ledger: bool) -> None:
    """Put the backup FILE in place of the register (the service stopped): verified
    against its checkpoint and yours, every erasure made since the copy made again."""
    try:
        done = restore(Settings(), file, force=force, kept=_kept(kept), new_ledger=new_ledger)
    except (RestoreRefused, BackupError, MissingSecret, LedgerRefused) as e:
        raise click.ClickException(f"nothing restored: {e}") from None
    click.echo(
        f"restored from {file}: {done.events} events, the chain to position {done.position}; "
        f"{len(done.erased_again)} erasures made again from the erasure ledger"
    )
    for checkpoint in done.kept_past:
        click.echo(
            f"note: your checkpoint at position {checkpoint.position} is past the copy: "
            "it no longer matches (the register records the restore, signed)"
        )


@main.group("erasure-ledger")
def erasure_ledger() -> None:
    """The erasure ledger, kept apart from the register (README: back up and restore)."""


@erasure_ledger.command("adopt")
def erasure_ledger_adopt() -> None:
    """Pair the register with the ledger the settings name, when its own is lost for
    good; only for the live register, never a restored copy (a copy lacks the erasures
    made after it, and a new ledger cannot tell them)."""
    from infrastructure.reconcile import adopt
    from infrastructure.store import Store

    settings = Settings()
    try:
        store = Store(settings, require_current=False)
    except Exception as e:  # by type only: the URL may hold a password
        raise click.ClickException(f"cannot open the store ({type(e).__name__})") from None
    try:
        taken = adopt(store, store.ledger)
    except LedgerRefused as e:
        raise click.ClickException(str(e)) from None
    finally:
        store.close()
    click.echo(f"the register is paired with this ledger; {taken} erasures taken in")
