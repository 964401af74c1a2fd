"""The service's settings: one object, read from ``CASEBOOK_*`` environment variables."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_DIR = Path(__file__).resolve().parents[1]

# Retention (``infrastructure.retention``). The bounds keep every period a date can
# hold: beyond a year an idempotency record answers no real retry, and beyond a
# century "forever" says what is meant.
MAX_IDEMPOTENCY_HOURS = 366 * 24
DEFAULT_READ_AUDIT_DAYS = 2192  # six years
MAX_READ_AUDIT_DAYS = 36_525
READ_AUDIT_DAYS_RULE = f"a whole number of days from 1 to {MAX_READ_AUDIT_DAYS}, or forever"


class Settings(BaseSettings):
    """Everything an operator can set. Defaults are for one machine in development."""

    model_config = SettingsConfigDict(env_prefix="CASEBOOK_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="unset: a SQLite file in the data folder; sqlite:///PATH; "
        "postgresql+psycopg://USER@HOST:PORT/DB",
    )
    data_dir: Path = Field(default=PROJECT_DIR / "data", description="the data folder")
    mode: Literal["development", "production"] = "development"
    # Large enough for a list of 20,000 names with their details, or an exchange of
    # 20,000 people (``api.schemas.MAX_ENTRIES``); small enough to bound memory.
    max_body_bytes: int = Field(default=4_000_000, ge=1024)
    # A request's body must arrive whole within this many seconds of the first byte the
    # service asks for (408 beyond). No shared slot is held while it arrives.
    body_timeout_seconds: float = Field(default=30, gt=0)
    # Bodies are held in memory while they arrive and while they are served: at most
    # this many bytes of them per process (503 beyond), and of them for one key (429).
    max_body_buffer_bytes: int = Field(default=256_000_000, ge=1024)
    max_body_buffer_bytes_per_key: int = Field(default=32_000_000, ge=1024)
    # The request line and headers must arrive within this many seconds (408) and hold
    # at most this many bytes (431): uvicorn's httptools parser bounds neither.
    header_timeout_seconds: float = Field(default=10, gt=0)
    max_header_bytes: int = Field(default=32_768, ge=1024)
    # Open connections per process beyond which uvicorn answers 503 at once (its
    # ``limit_concurrency``), and how long an idle kept-alive connection stays open.
    max_connections: int = Field(default=1024, ge=1)
    # An answer the client stops reading for this long is abandoned (the connection
    # dropped), so that what it holds (an export's file, a slot) is let go.
    send_timeout_seconds: float = Field(default=30, gt=0)
    keep_alive_seconds: int = Field(default=5, ge=1)
    # Requests in progress per process beyond which the service answers 503 at once
    # (the probes, /health and /ready, are never counted).
    max_in_flight: int = Field(default=256, ge=1)
    # ... of which one key may have this many (429 beyond).
    max_in_flight_per_key: int = Field(default=32, ge=1)
    # Writes of one process handed to worker threads at a time, and how long the others
    # wait for a turn before a 503 (writes are serialised by the write lock anyway).
    write_slots: int = Field(default=4, ge=1)
    write_wait_seconds: float = Field(default=30, gt=0)
    # SQLite: how long a writer waits for another process's write to finish before the
    # request is answered 503 with Retry-After. Never "database is locked".
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)
    # PostgreSQL: how long a writer waits for the register's write lock (the events
    # table lock); past it the request is answered 503 with Retry-After.
    pg_lock_timeout_ms: int = Field(default=10_000, ge=1)
    # How long a read waits to record itself in the read audit (a lock held on its
    # table, a long write holding SQLite's lock) before it is refused with a 503.
    read_audit_wait_ms: int = Field(default=2_000, ge=1)
    # The installation's Ed25519 key that signs checkpoints of the hash chain. Required
    # in production; in development it is made in the data folder on first use.
    signing_key_file: Path | None = None
    # The master key that wraps every person's data key (``infrastructure.crypto``):
    # 32 random bytes in base64, given directly or in a file. Required in production;
    # in development it is made in the data folder on first use.
    master_key: SecretStr | None = None
    master_key_file: Path | None = None
    # Checkpoints are made automatically every so many events, and every so many
    # minutes when events were recorded since the last one.
    checkpoint_every: int = Field(default=1000, ge=1)
    checkpoint_minutes: float = Field(default=60, gt=0)
    # An idempotency record answers a retry for this many hours after the write it
    # records (by the store's stamp, not a client's or a host's clock); after that the
    # key is forgotten and the same request is a new one. Expired records are removed
    # by ``casebook prune``, or by the write that reuses their key (``idempotency``).
    idempotency_hours: int = Field(default=24, ge=1, le=MAX_IDEMPOTENCY_HOURS)
    # The read audit keeps a record this many days, then ``casebook prune`` removes it;
    # "forever" keeps them all. Six years (leap days included) by default: long enough
    # for a leak found years later to be traced, bounded because each record says which
    # staff member worked on which person's case (README, "Retention").
    read_audit_days: int | Literal["forever"] = DEFAULT_READ_AUDIT_DAYS

    @field_validator("read_audit_days", mode="before")
    @classmethod
    def _days_or_forever(cls, value: object) -> object:
        """A whole number of days in range, or "forever"; anything else is refused with
        a message that says what is taken (never a silent "keep forever")."""
        if isinstance(value, str) and value.strip().lower() == "forever":
            return "forever"
        text = str(value).strip()
        if isinstance(value, bool) or not re.fullmatch(r"[0-9]+", text):
            raise ValueError(READ_AUDIT_DAYS_RULE)
        if not 1 <= int(text) <= MAX_READ_AUDIT_DAYS:
            raise ValueError(READ_AUDIT_DAYS_RULE)
        return int(text)

    # The erasure ledger (``infrastructure.ledger``): a database apart from the register's,
    # holding the ids of every erasure, so that a restored copy made before one does not
    # bring the person back. Unset: a SQLite file beside a SQLite register, or in the data
    # folder beside a PostgreSQL one; with several hosts, a second database they all reach.
    erasure_ledger_url: str | None = None

    # ``GET /metrics`` needs an admin key on the API's address; set this (``host:port``,
    # e.g. ``127.0.0.1:9464``) to serve it also, without a key, on an address of its own
    # that only the monitoring network reaches (``api.metrics_address``).
    metrics_address: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.:\[\]-]+:\d{1,5}$")

    def metrics_host_port(self) -> tuple[str, int] | None:
        """``metrics_address`` split into host and port (an IPv6 host in brackets)."""
        if not self.metrics_address:
            return None
        host, _, port = self.metrics_address.rpartition(":")
        return host.strip("[]"), int(port)

    def url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'casebook.sqlite').resolve()}"

    def sqlite_path(self) -> Path:
        """The SQLite database file (its URL may be a ``file:`` URI with options)."""
        path = self.url().removeprefix("sqlite:///").removeprefix("file:")
        return Path(path.split("?", 1)[0])

    @property
    def is_sqlite(self) -> bool:
        return self.url().startswith("sqlite")
