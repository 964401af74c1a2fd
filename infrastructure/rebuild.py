"""The projections rebuilt from the whole log (``casebook views rebuild``, and ``casebook
upgrade`` when a migration asks), while the service keeps answering and writing.

1. **Fill.** Shadow copies of every table in ``PROJECTED`` (``infrastructure.shadow``)
   are filled from the log up to the position it had when the rebuild began (H0), by
   the code that projects every write (``infrastructure.replaying``), a batch of
   aggregates per short transaction that takes no lock a writer waits for (on SQLite,
   the database's one writer lock for the few milliseconds the batch's rows take to
   write). The batch's progress is committed with its rows: a rebuild killed at any
   point and started again goes on where it stopped (``restart`` starts afresh).
2. **Recount.** Projections kept by adding to them (the counts) are computed afresh
   from the filled rows, by their own ``recount``.
3. **Catch-up.** The events written since H0 are projected into the copies as their
   live writes projected them, in short transactions, until the copies are a few
   events behind the log.
4. **Swap.** One transaction holding the register's write lock (writers wait for it,
   and only for it) projects the last few events, puts the copies in the live tables'
   place and records that the views have reached the log's head. Readers never wait
   on SQLite; on PostgreSQL they wait the few milliseconds the swap takes. The
   replaced tables are dropped after it (``Shadow.retire``).

Memory holds one batch of aggregates (each batch's person keys, and no others).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Insert, func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from infrastructure import counts, migrations, tables
from infrastructure.replaying import Log, catch_up, fill_cases, fill_others, make_keys
from infrastructure.shadow import Shadow

if TYPE_CHECKING:
    from infrastructure.store import Store

# Every table ``project`` writes: the rebuild fills a copy of each and swaps it in.
PROJECTED = tables.PROJECTED

FILL_ROWS = 1_000  # events read per fill batch (about a hundred aggregates)
CATCH_UP_EVENTS = 200  # log positions in the first catch-up transaction, at least
CATCH_UP_SECONDS = 0.1  # and then as many as the last one projected in this long
SWAP_WITHIN = 50  # the swap begins when the copies are at most this far behind
SWAP_TRIES = 5  # PostgreSQL: times the swap waits for readers before it gives up
SPLIT_ROWS = 5_000  # SQLite: rows of a recount inserted per transaction

Progress = Callable[[int, int], None]  # (events projected, events to project)


class RebuildRefused(Exception):
    """The copies no longer match the register (its schema or its log changed under the
    rebuild): they are not swapped in. Run the rebuild again."""


def rebuild(
    store: Store,
    progress: Progress | None = None,
    *,
    restart: bool = False,
    offline: bool = False,
    phase: Callable[[str], None] | None = None,
) -> int:
    """Rebuild every projected row from the log while the service goes on; return how
    many events the rebuilt views hold. ``restart``: throw away the copies a killed
    rebuild left instead of going on with them. ``offline``: the service is stopped
    (``casebook upgrade``), so SQLite may take the time to give the swapped-in indexes
    their declared names (``infrastructure.shadow``). ``phase`` is told each step."""
    shadow = Shadow(store, PROJECTED)
    with shadow.only_one():
        shadow.retire()  # a swap killed before it dropped what it replaced
        with store.engine.connect() as reader, shadow.connection() as conn:
            run = _Rebuild(store, shadow, Log(store, reader), conn, progress, phase)
            run.start(restart)
            run.fill()
            run.recount()
            run.catch_up()
            run.swap()
        with store.engine.connect() as conn:
            owed = migrations.owed(conn)
        if migrations.VIEWS_REBUILD in owed:  # what a migration asked for is done
            with store.write() as unit:  # the write lock (SQLite: BEGIN IMMEDIATE)
                migrations.paid(unit.session.connection(), migrations.VIEWS_REBUILD)
        (phase or _quiet)("removing the replaced tables")
        shadow.retire()
        if offline:
            shadow.declare_index_names()
    return run.done


def _quiet(_: str) -> None:
    pass


class _Rebuild:
    def __init__(
        self,
        store: Store,
        shadow: Shadow,
        log: Log,
        conn: Connection,
        progress: Progress | None,
        phase: Callable[[str], None] | None,
    ):
        self.store, self.shadow, self.log, self.conn = store, shadow, log, conn
        self.progress = progress or (lambda done, total: None)
        self.phase = phase or _quiet
        self.state: dict[str, Any] = {}

    @property
    def done(self) -> int:
        return int(self.state["done"])

    def start(self, restart: bool) -> None:
        """Go on with the copies a killed rebuild left, if they are of this code, schema
        and log; else make new ones, to be filled up to the log's head now."""
        with self.log.reader.begin():
            made_by = fingerprint(self.store, self.log.reader)
        found = self.shadow.state(self.conn)
        if found is not None and not restart and self._still_valid(found, made_by):
            self.state = found
            self.phase(f"resuming a rebuild begun at log position {found['head']:,}")
            return
        self.shadow.discard()
        head = self.log.head()
        total, link = self._link(head)
        self.state = {
            "fingerprint": made_by,
            "head": head,
            "head_hash": link,
            "total": total,
            "cursor": None,
            "filled": False,
            "position": 0,
            "done": 0,
        }
        self.shadow.create(self.state)

    def _link(self, head: int) -> tuple[int, str | None]:
        """How many events the log holds up to ``head``, and the chain's link there."""
        c, e = tables.chain, self.store.events_table
        with self.log.reader.begin():
            query = select(c.c.position, c.c.hash).where(c.c.notification_id == head)
            link = self.log.reader.execute(query).first()
            if link is not None:
                return int(link.position), str(link.hash)
            count = select(func.count()).select_from(e).where(e.c.id <= head)
            return int(self.log.reader.execute(count).scalar_one()), None

    def _still_valid(self, state: dict[str, Any], made_by: str) -> bool:
        return (
            state["fingerprint"] == made_by and self._link(state["head"])[1] == state["head_hash"]
        )

    def _save(self, **values: Any) -> None:
        self.shadow.save(self.conn, **values)

    def fill(self) -> None:
        """Every aggregate up to the log position H0, a batch per transaction."""
        if self.state["filled"]:
            return
        self.phase("filling the new views")
        self.progress(self.done, self.state["total"])
        keyring = self.store.keyring
        while True:
            logged, cursor = self.log.batch(self.state["cursor"], self.state["head"], FILL_ROWS)
            if cursor == self.state["cursor"]:
                return
            missing = self.log.without_keys(logged)
            if missing:
                make_keys(self.store, missing)
            statements = fill_cases(keyring, [i for i in logged if i.is_case])
            others = [i for i in logged if not i.is_case]
            done = self.done + sum(len(i.events) for i in logged)
            with self.shadow.writing(self.conn):
                for statement, params in statements:
                    self.conn.execute(statement, params)
                if others:
                    with Session(bind=self.conn) as session:
                        fill_others(session, keyring, others)
                self._save(cursor=cursor, done=done)
            self.state.update(cursor=cursor, done=done)
            self.progress(done, self.state["total"])

    def recount(self) -> None:
        """The projections kept by adding to them (``infrastructure.counts``), computed
        afresh from the filled rows; then the copies hold every event up to H0."""
        if self.state["filled"]:
            return
        self.phase("counting")
        if self.shadow.sqlite:  # in moments of the writer lock, not one long one
            with self.shadow.connection() as read:
                counts.recount(cast(Session, _Split(self.shadow, self.conn, read)))
        else:
            with self.shadow.writing(self.conn), Session(bind=self.conn) as session:
                counts.recount(session)
        with self.shadow.writing(self.conn):
            self._save(filled=True, position=self.state["head"])
        self.state.update(filled=True, position=self.state["head"])

    def catch_up(self) -> None:
        """The events written since, in short transactions, until the copies are at most
        ``SWAP_WITHIN`` positions behind the log. Each transaction takes about as many
        events as the last one projected in ``CATCH_UP_SECONDS``: short, and as many as
        the writers bring."""
        window, told = CATCH_UP_EVENTS, False
        while True:
            head, position = self.log.head(), int(self.state["position"])
            if head - position <= SWAP_WITHIN:
                return
            if not told:
                self.phase("catching up with the writes made meanwhile")
                told = True
            upto = min(head, position + window)
            logged = self.log.window(position, upto)
            started = time.perf_counter()
            with self.shadow.writing(self.conn):
                with Session(bind=self.conn) as session:
                    caught = catch_up(session, self.store.keyring, logged, position)
                self._save(position=upto, done=self.done + caught)
            took = time.perf_counter() - started
            window = max(CATCH_UP_EVENTS, int((upto - position) * CATCH_UP_SECONDS / took))
            self.state.update(position=upto, done=self.done + caught)
            self.progress(self.done, self.done + head - upto)

    def swap(self) -> None:
        """Under the register's write lock: the last events, then the copies in place of
        the live tables. On PostgreSQL a reader of a live table that outlasts the swap's
        short wait makes it give up (writers go on) and try again."""
        self.shadow.analyse(self.conn)
        for attempt in range(SWAP_TRIES):
            self.catch_up()  # what was written meanwhile: the swap takes the last few
            self.phase("swapping the new views in")
            try:
                self._swap_once()
                return
            except OperationalError as e:
                if getattr(e.orig, "sqlstate", None) != "55P03":  # lock_not_available
                    raise
            time.sleep(0.2 * (attempt + 1))
        raise RebuildRefused("the swap kept waiting for long reads; run the rebuild again")

    def _swap_once(self) -> None:
        position, events = int(self.state["position"]), self.store.events_table.name
        asked = time.perf_counter()
        with self.shadow.register_locked(self.conn):
            got = time.perf_counter()
            head = int(self.conn.exec_driver_sql(f"SELECT max(id) FROM {events}").scalar() or 0)
            with self.log.reader.begin():
                made_by = fingerprint(self.store, self.log.reader)
            if not self._still_valid(self.state, made_by):
                raise RebuildRefused(
                    "the register's schema or log changed during the rebuild: "
                    "its new views were not swapped in; run it again"
                )
            window = self.log.window(position, head)
            with Session(bind=self.conn) as session:
                done = self.done + catch_up(session, self.store.keyring, window, position)
            self.shadow.swap(self.conn, head)
        held, waited = (time.perf_counter() - got) * 1000, (got - asked) * 1000
        self.state.update(position=head, done=done)
        self.progress(done, done)
        self.phase(f"swapped in: the write lock held {held:.0f} ms (after {waited:.0f} ms for it)")


class _Split:
    """Stands in for the session of a ``recount`` on SQLite, where any transaction that
    writes holds the database's one writer lock: each INSERT ... SELECT is run as its
    SELECT, on a reading connection (no lock), then its rows are inserted a few thousand
    per transaction; any other statement runs in a transaction of its own."""

    def __init__(self, shadow: Shadow, conn: Connection, read: Connection):
        self.shadow, self.conn, self.read = shadow, conn, read

    def execute(self, statement: Any, params: Any = None) -> None:
        query = getattr(statement, "select", None) if isinstance(statement, Insert) else None
        if query is None:
            with self.shadow.writing(self.conn):
                self.conn.execute(statement, params)
            return
        names = statement._select_names  # the columns ``from_select`` fills, in order
        with self.read.begin():
            found = self.read.execute(query, execution_options={"yield_per": SPLIT_ROWS})
            for rows in found.partitions():
                with self.shadow.writing(self.conn):
                    self.conn.execute(
                        insert(statement.table), [dict(zip(names, r, strict=True)) for r in rows]
                    )


def _code() -> bytes:
    """The source of every module of ``domain`` and ``infrastructure``, as imported."""
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for path in sorted([*here.glob("*.py"), *(here.parent / "domain").glob("*.py")]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.digest()


# Read when this process started: the code it runs, even if the files change under it.
CODE = _code()


def fingerprint(store: Store, conn: Connection) -> str:
    """What the copies are built by: the code that derives and projects (``CODE``),
    the schema's revision and the master key. A rebuild goes on only with copies of the
    same fingerprint, and swaps them in only if the register still has it."""
    digest = hashlib.sha256(CODE)
    version = conn.exec_driver_sql(f"SELECT version_num FROM {migrations.VERSION_TABLE}")
    digest.update(str(version.scalar()).encode())
    digest.update(store.keyring.check_value.encode())
    return digest.hexdigest()
