"""The ``casebook`` command: serve, upgrade, keys, views rebuild, replay, verify, export,
checkpoint here; backup, restore and erasure-ledger (``api.cli_backup``), prune
(``api.cli_retention``), signing-key (``api.cli_signing``) and master-key
(``api.cli_masterkey``) in modules of their own, registered at the end of this one.

Every command reads ``CASEBOOK_DATABASE_URL`` (and the other ``CASEBOOK_*`` settings)
and creates the store's tables when the database is empty; a register made by an
earlier version is refused (but by ``verify``) until ``casebook upgrade`` has run.
"""

from __future__ import annotations

import json
import sys
import time
import tracemalloc
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import click

from api.timeline import print_timeline, printable
from infrastructure.chain import Verification
from infrastructure.checkpoints import Checkpoint, Signer
from infrastructure.crypto import MissingMasterKey, load_master_key
from infrastructure.keys import ROLES, KeyError_, KeyStore
from infrastructure.ledger import LedgerRefused
from infrastructure.migrations import UpgradeNeeded
from infrastructure.settings import Settings
from infrastructure.store import Store


def _store(settings: Settings | None = None) -> Store:
    try:
        return Store(settings or Settings())
    except (MissingMasterKey, UpgradeNeeded, LedgerRefused) as e:
        raise click.ClickException(str(e)) from None
    except Exception as e:  # by type only: the URL may hold a password
        raise click.ClickException(
            f"cannot open the store ({type(e).__name__}): check CASEBOOK_DATABASE_URL"
        ) from None


@click.group()
def main() -> None:
    """casebook: the case register for people deprived of liberty in armed conflict."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
def serve(host: str, port: int, workers: int) -> None:
    """Start the API."""
    from api.server import run
    from infrastructure import migrations, rotation
    from infrastructure.checkpoints import MissingSecret

    settings = Settings()
    try:
        Signer.from_settings(settings)  # production refuses to start without its key
    except MissingSecret as e:
        raise click.ClickException(str(e)) from None
    store = _store(settings)  # create the tables once, before the workers race to
    try:
        rotation.require_current(store.engine, Signer.from_settings(settings))
        with store.engine.connect() as conn:
            owed = migrations.owed(conn)
    except MissingSecret as e:  # a key that a rotation retired
        raise click.ClickException(str(e)) from None
    finally:
        store.close()
    if migrations.VIEWS_REBUILD in owed:
        click.echo(
            "warning: a views rebuild that a migration asked for did not finish; until "
            "`casebook views rebuild` (or `casebook upgrade`) has run, searches may "
            "miss people",
            err=True,
        )
    click.echo(f"casebook on http://{host}:{port} ({settings.mode} mode), docs at /docs")
    run(host, port, workers, settings)


@main.command()
def upgrade() -> None:
    """Bring the register's schema up to this version of casebook (run it once, with
    the service stopped, after installing a new version); rebuild the views when a
    migration asks for it. A register already up to date is left as it is."""
    from infrastructure import migrations
    from infrastructure.persistence import plain_engine
    from infrastructure.rebuild import rebuild
    from infrastructure.shadow import before_migrations

    settings = Settings()
    if settings.is_sqlite and not settings.sqlite_path().exists():
        raise click.ClickException(
            f"no register at {settings.sqlite_path()}: nothing to upgrade "
            "(any other command makes a new one there)"
        )
    engine = plain_engine(settings)
    try:
        with engine.connect() as conn:
            behind = migrations.state(conn) == "behind"
        if behind:  # what an interrupted or online views rebuild left, set straight
            before_migrations(engine)
        # read only if a revision needs it (0006: the register's secrets, wrapped by it)
        applied = migrations.upgrade(engine, lambda: load_master_key(settings))
        with engine.connect() as conn:
            owed = migrations.VIEWS_REBUILD in migrations.owed(conn)
    except (UpgradeNeeded, MissingMasterKey) as e:
        raise click.ClickException(str(e)) from None
    except Exception as e:  # by type only: the URL may hold a password
        raise click.ClickException(
            f"the upgrade failed ({type(e).__name__}); nothing changed"
        ) from None
    finally:
        engine.dispose()
    if not applied:
        click.echo(f"the register is up to date (schema {migrations.head()})")
        if not owed:
            return
        click.echo("a views rebuild a migration asked for did not finish: rebuilding")
    else:
        click.echo(f"applied {len(applied)} migrations: {', '.join(applied)}")
    if owed:  # written with the migrations that asked for it; cleared by the rebuild
        store = _store(settings)
        try:
            count = rebuild(store, offline=True)
        finally:
            store.close()
        click.echo(f"rebuilt the views from {count} events, as a migration asked")


@main.group()
def keys() -> None:
    """Create, list and revoke API keys."""


@keys.command("create")
@click.option("--name", required=True, help="who or what uses the key")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--org", required=True, help="the organisation the key belongs to")
@click.option("--expires", type=click.DateTime(), help="expiry (UTC), e.g. 2027-01-31")
def keys_create(name: str, role: str, org: str, expires: datetime | None) -> None:
    """Make a key and print it once, alone on the last line."""
    store = _store()
    try:
        key, secret = KeyStore(store.engine).create(
            name, role, org, expires.replace(tzinfo=UTC) if expires else None
        )
    except KeyError_ as e:
        raise click.ClickException(str(e)) from None
    finally:
        store.close()
    click.echo(f"key {key.name!r} ({key.role}, org {key.org}); it is shown only now:")
    click.echo(secret)


@keys.command("list")
def keys_list() -> None:
    """List keys (never their secrets)."""
    store = _store()
    try:
        for key in KeyStore(store.engine).list():
            state = "revoked" if key.revoked_at else "active"
            if key.expires_at and not key.revoked_at:
                state += f", expires {key.expires_at:%Y-%m-%d %H:%M}Z"
            name, org = printable(key.name), printable(key.org)
            click.echo(f"{name}\t{key.role}\t{org}\t{key.created_at:%Y-%m-%d}\t{state}")
    finally:
        store.close()


@keys.command("revoke")
@click.argument("name")
def keys_revoke(name: str) -> None:
    """Revoke a key: refused from the next request on."""
    store = _store()
    try:
        KeyStore(store.engine).revoke(name)
    except KeyError_ as e:
        raise click.ClickException(str(e)) from None
    finally:
        store.close()
    click.echo(f"revoked {name!r}")


@main.group()
def views() -> None:
    """The status views."""


@views.command("rebuild")
@click.option(
    "--restart",
    is_flag=True,
    help="throw away what a stopped rebuild left and start afresh (by default it goes on)",
)
@click.option("--measure-memory", is_flag=True, help="print the peak memory the rebuild took")
def views_rebuild(restart: bool, measure_memory: bool) -> None:
    """Rebuild the views from the event log while the service goes on answering and
    writing: new views are filled beside the live ones, then swapped in by one short
    transaction (writers wait only for that). A rebuild that was stopped goes on where
    it stopped when run again. Progress, rate and time left on stderr."""
    from tqdm import tqdm

    from infrastructure.rebuild import RebuildRefused, rebuild
    from infrastructure.shadow import RebuildBusy

    store = _store()
    bars: list[tqdm[None]] = []  # made at the first report: a resumed rebuild starts there

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(initial=done, total=total, unit=" events", **BAR))
        bar = bars[0]
        bar.total = total
        bar.update(done - bar.n)

    def phase(name: str) -> None:
        tqdm.write(name, file=sys.stderr)  # above the bar, if there is one

    if measure_memory:
        tracemalloc.start()
    started, cpu = time.monotonic(), time.process_time()
    try:
        count = rebuild(store, progress, restart=restart, phase=phase)
    except (RebuildBusy, RebuildRefused) as e:
        raise click.ClickException(str(e)) from None
    finally:
        for bar in bars:
            bar.close()
        store.close()
    took, cpu = time.monotonic() - started, time.process_time() - cpu
    click.echo(
        f"rebuilt the views from {count} events in {took:.2f}s "
        f"({count / took:,.0f}/s; {cpu:.2f}s of CPU)"
    )
    if measure_memory:
        _, peak = tracemalloc.get_traced_memory()
        click.echo(f"peak traced memory: {peak / 1e6:.1f} MB")


# The views rebuild's progress bar, on stderr when it is a terminal (else a line a step).
BAR = {"unit_scale": True, "file": sys.stderr, "disable": None, "smoothing": 0.05}


@main.command()
@click.argument("case_id", type=click.UUID)
def replay(case_id: UUID) -> None:
    """Print a case's timeline, in the order it was recorded, for an auditor."""
    from domain.errors import CaseNotFound
    from infrastructure.cases import CaseReads

    store = _store()
    try:
        history = CaseReads(store).history(case_id)
    except CaseNotFound:
        raise click.ClickException("no such case") from None
    finally:
        store.close()
    print_timeline(history, click.echo)


@main.command()
@click.option(
    "--checkpoint",
    "kept",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="a JSON file of checkpoints you kept (one object or a list)",
)
@click.option(
    "--export",
    "export_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="verify this export file instead of the store (offline)",
)
@click.option(
    "--trusted-key",
    "trusted_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="a signing public key you kept (hex, GET /audit/key's JSON, or PEM): the key "
    "announcements are followed from it",
)
@click.option("--replay", "replay_case", type=click.UUID, help="with --export: print a case")
def verify(
    kept: Path | None, export_file: Path | None, trusted_file: Path | None, replay_case: UUID | None
) -> None:
    """Check the hash chain: exit 0 when it holds, 1 when it does not (naming the first
    broken position), 2 when it could not be checked."""
    trusted = _trusted(trusted_file)
    try:
        if export_file is not None:
            result = _verify_export(export_file, replay_case, kept, trusted)
        else:
            result = _verify_store(kept, trusted)
    except click.ClickException:
        raise
    except Exception as e:  # the store or the file could not be read: by type only
        click.echo(f"could not verify: {type(e).__name__}", err=True)
        sys.exit(2)
    # An export file may come from anyone: whatever it carries is escaped (printable).
    p = printable
    if result.ok:
        keys = f", signed by {result.keys} keys in turn" if result.keys > 1 else ""
        click.echo(
            f"ok: {p(result.events)} events chained, head {p(result.head)}, "
            f"{p(result.checkpoints)} checkpoints agree{keys}"
        )
        if result.note:
            click.echo(f"note: {p(result.note)}")
        return
    click.echo(
        f"BROKEN at position {p(result.broken_at)}: {p(result.problem)} "
        f"({p(result.events)} events verified before it)"
    )
    sys.exit(1)


def _trusted(path: Path | None) -> str | None:
    """The key in ``--trusted-key``; a file that holds none could not be checked (2)."""
    from infrastructure.signing import read_public_key

    if path is None:
        return None
    try:
        return read_public_key(path.read_text())
    except (OSError, ValueError) as e:
        raise click.BadParameter(f"{type(e).__name__}: {e}", param_hint="--trusted-key") from None


def _verify_store(kept: Path | None, trusted: str | None) -> Verification:
    from infrastructure.auditing import AuditReads

    settings = Settings()
    # An auditor may verify a register not yet upgraded (a copy, a replica): the chain's
    # tables have not changed since before migrations.
    store = Store(settings, require_current=False)
    store.public_key = Signer.installed_public_key(settings)
    try:
        return AuditReads(store).verify(_kept(kept), trusted)
    finally:
        store.close()


def _kept(path: Path | None) -> list[Checkpoint]:
    loaded = json.loads(path.read_text()) if path else []
    return [Checkpoint.from_dict(c) for c in (loaded if isinstance(loaded, list) else [loaded])]


def _verify_export(
    path: Path, replay_case: UUID | None, kept: Path | None, trusted: str | None
) -> Verification:
    from infrastructure.exports import Export, replay_from_export, verify_export
    from infrastructure.history import history_of

    with path.open() as f:
        export = Export.read(f)
    result = verify_export(export, _kept(kept), trusted)
    if replay_case is not None and result.ok:
        try:
            case = replay_from_export(export, replay_case)
        except KeyError:
            raise click.ClickException("the export holds no events of this case") from None
        hashes = {
            e["version"]: e["hash"] for e in export.events if e["case_id"] == str(replay_case)
        }
        print_timeline(history_of(replay_case, case.facts, hashes), click.echo)
    return result


@main.command("export")
@click.option("--case", "case_id", type=click.UUID, help="export one case (default: all)")
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), help="file (default: stdout)"
)
def export_command(case_id: UUID | None, output: Path | None) -> None:
    """Write the log (or one case) as JSON Lines with its chain and latest checkpoint."""
    from domain.errors import CaseNotFound
    from infrastructure.cases import CaseReads

    store = _store()
    try:
        with output.open("w") if output else nullcontext(sys.stdout) as out:
            for line in CaseReads(store).export(case_id):
                out.write(line)
    except CaseNotFound:
        raise click.ClickException("no such case") from None
    finally:
        store.close()


@main.command()
def checkpoint() -> None:
    """Sign the chain's head now and print the checkpoint (JSON) for you to keep."""
    from infrastructure.checkpoints import MissingSecret

    settings = Settings()
    store = _store(settings)
    try:
        store.signer = Signer.from_settings(settings)
        made = store.checkpoint()
    except MissingSecret as e:  # none, or one a rotation retired
        raise click.ClickException(str(e)) from None
    finally:
        store.close()
    click.echo(json.dumps(made.shown()))


# The commands of other modules, registered on ``main`` when they are imported.
from api import cli_backup, cli_masterkey, cli_retention, cli_signing  # noqa: E402,F401
