"""``casebook prune [--dry-run]``: remove the idempotency records and read-audit records
past their time (``infrastructure.retention``), and say what was removed."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from pydantic import ValidationError

from api.cli import BAR, _store, main
from infrastructure.retention import IDEMPOTENCY, PruneStopped, Removal, Retention
from infrastructure.settings import Settings

# What each kind is called in what the command says, and what its stamp records.
NAMES = {IDEMPOTENCY: ("idempotency records", "made")}
DEFAULT_NAME = ("read-audit records", "read")


def settings_or_refusal() -> Settings:
    """The settings, or a clear refusal naming each bad variable (never its value: a
    setting may be a secret)."""
    try:
        return Settings()
    except ValidationError as e:
        bad = "; ".join(
            f"CASEBOOK_{str(error['loc'][0]).upper()}: "
            + str(error["msg"]).removeprefix("Value error, ")
            for error in e.errors()
        )
        raise click.ClickException(f"bad setting, nothing was done: {bad}") from None


@main.command()
@click.option("--dry-run", is_flag=True, help="say what would be removed; remove nothing")
def prune(dry_run: bool) -> None:
    """Remove the idempotency records older than CASEBOOK_IDEMPOTENCY_HOURS and the
    read-audit records older than CASEBOOK_READ_AUDIT_DAYS, oldest first, in short
    batches, while the service runs; say how many of each, and the oldest and newest.
    The events, the chain, the checkpoints, the keys and the views are never touched.
    A prune stopped half-way is simply run again."""
    settings = settings_or_refusal()
    store = _store(settings)
    try:
        retention = Retention(store)
        if dry_run:
            for removal in retention.survey():
                click.echo(said(removal, settings, dry_run=True))
            click.echo("dry run: nothing was removed")
            return
        removals = _with_progress(retention)
    finally:
        store.close()
    for removal in removals:
        click.echo(said(removal, settings))


def _with_progress(retention: Retention) -> list[Removal]:
    from tqdm import tqdm

    total = sum(r.removed for r in retention.survey())
    with tqdm(total=total, unit=" rows", **BAR) as bar:
        try:
            return retention.prune(lambda _kind, rows: bar.update(rows))
        except PruneStopped as e:
            bar.close()
            for removal in e.removals:
                click.echo(said(removal, retention.store.settings))
            raise click.ClickException(
                f"the prune stopped ({type(e.cause).__name__}); what is said above was "
                "removed; run it again to go on"
            ) from None


def said(removal: Removal, settings: Settings, dry_run: bool = False) -> str:
    """One line: the kind, how long it is kept, how many removed and when stamped."""
    name, stamped = NAMES.get(removal.kind, DEFAULT_NAME)
    verb = "would remove" if dry_run else "removed"
    if removal.cutoff is None:
        return f"{name} (kept forever): none {'would be ' if dry_run else ''}removed"
    kept = (
        f"{settings.idempotency_hours} h"
        if removal.kind == IDEMPOTENCY
        else f"{settings.read_audit_days} days"
    )
    cutoff = _when(removal.cutoff)
    line = f"{name} (kept {kept}, {stamped} before {cutoff}): {verb} {removal.removed}"
    if removal.oldest is not None and removal.newest is not None:
        line += f", {stamped} from {_when(removal.oldest)} to {_when(removal.newest)}"
    return line


def _when(stamp: datetime) -> str:
    return stamp.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
