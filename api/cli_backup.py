"""``casebook backup FILE`` and ``casebook restore FILE [--force] [--checkpoint KEPT]``
(``infrastructure.backup``, ``infrastructure.restore``): what they did, on stdout;
a refusal, on stderr with exit status 1, having changed nothing it could keep from
changing (the README's runbook says what to do next)."""

from __future__ import annotations

from pathlib import Path

import click

from api.cli import _kept, _store, main
from infrastructure.backup import BackupError, backup
from infrastructure.checkpoints import MissingSecret, Signer
from infrastructure.restore import RestoreRefused, restore
from infrastructure.settings import Settings


@main.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def backup_command(file: Path) -> None:
    """Copy the register to FILE while the service runs, ending with a signed
    checkpoint of the copy's head. FILE must not exist."""
    settings = Settings()
    store = _store(settings)
    try:
        made = backup(store, file, Signer.from_settings(settings))
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
def restore_command(file: Path, force: bool, kept: Path | None) -> None:
    """Put the backup FILE in place of the register (the service stopped): verified
    against its checkpoint and yours, every erasure made since the copy made again."""
    try:
        done = restore(Settings(), file, force=force, kept=_kept(kept))
    except (RestoreRefused, BackupError, MissingSecret) as e:
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
