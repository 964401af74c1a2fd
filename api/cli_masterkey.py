"""``casebook master-key``: print a new master key, or rotate the register's to a new one.

``casebook master-key`` alone prints a new key, as it always did (``new`` too);
``casebook master-key rotate --new-key-file F`` rewraps every key and secret under the
key in F (``infrastructure.rewrap``). The rotation is offline: stop the service
first. Should it be left running, the rotation's first step makes it refuse every
write and every key it has not cached (503), and no process starts until the rotation
has finished; run it again, killed or not, and it goes on where it stopped.
"""

from __future__ import annotations

from pathlib import Path

import click

from api.cli import BAR, main
from infrastructure.crypto import (
    Keyring,
    MissingMasterKey,
    load_master_key,
    new_master_key,
    read_master_key_file,
)
from infrastructure.faults import StoreBusy, classify
from infrastructure.migrations import UpgradeNeeded
from infrastructure.rewrap import BATCH, RotationRefused, rotate
from infrastructure.settings import Settings


@main.group("master-key", invoke_without_command=True)
@click.pass_context
def master_key(ctx: click.Context) -> None:
    """Print a new master key (32 random bytes, base64) for CASEBOOK_MASTER_KEY or the
    file CASEBOOK_MASTER_KEY_FILE (alone, or `new`); or `rotate` the register's. Keep it
    apart from the database and its backups: whoever holds both reads every person's
    data that is not erased."""
    if ctx.invoked_subcommand is None:
        click.echo(new_master_key())


@master_key.command("new")
def master_key_new() -> None:
    """Print a new master key (32 random bytes, base64)."""
    click.echo(new_master_key())


@master_key.command("rotate")
@click.option(
    "--new-key-file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="a file holding the new master key (`casebook master-key > F` makes one)",
)
@click.option(
    "--batch-size",
    default=BATCH,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="keys rewrapped per transaction",
)
def master_key_rotate(new_key_file: Path, batch_size: int) -> None:
    """Rewrap every person's key, every record's key and the register's secrets under
    the master key in NEW_KEY_FILE; the current one is read as the service reads it
    (CASEBOOK_MASTER_KEY or CASEBOOK_MASTER_KEY_FILE). Stop the service first. Killed,
    it goes on where it stopped when run again with the same two keys; until it has
    finished, nothing starts. Then start the service with the new key only. Progress on
    stderr."""
    from tqdm import tqdm

    from infrastructure import migrations
    from infrastructure.persistence import plain_engine

    settings = Settings()
    if settings.is_sqlite and not settings.sqlite_path().exists():
        raise click.ClickException(f"no register at {settings.sqlite_path()}: nothing to rotate")
    bars: list[tqdm[None]] = []

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(initial=done, total=total, unit=" keys", **BAR))
        bars[0].update(done - bars[0].n)

    engine = plain_engine(settings)
    try:
        with engine.connect() as conn:
            if migrations.check(conn) == "empty":
                raise click.ClickException("the database holds no register: nothing to rotate")
        new = Keyring(read_master_key_file(new_key_file))
        old = Keyring(load_master_key(settings))
        done = rotate(engine, old, new, progress, batch_size)
    except (MissingMasterKey, UpgradeNeeded, RotationRefused) as e:
        raise click.ClickException(str(e)) from None
    except click.ClickException:
        raise
    except Exception as e:  # by type only: the URL may hold a password
        if isinstance(classify(e), StoreBusy):
            raise click.ClickException(
                "the register's write lock could not be had: stop the service and run "
                "this again (it goes on where it stopped)"
            ) from None
        raise click.ClickException(
            f"the rotation stopped ({type(e).__name__}); run it again with the same two "
            "keys: it goes on where it stopped"
        ) from None
    finally:
        for bar in bars:
            bar.close()
        engine.dispose()
    if done.finished_before:
        click.echo("the register's keys are wrapped by the new master key already: nothing to do")
    else:
        resumed = f" (and {done.before} by the run that was stopped)" if done.before else ""
        click.echo(
            f"rewrapped {done.keys} keys{resumed} and {done.secrets} secrets under the new "
            "master key"
        )
    click.echo(
        "start the service with the new master key only; keep the old one only as long "
        "as backups made under it, then destroy it"
    )
