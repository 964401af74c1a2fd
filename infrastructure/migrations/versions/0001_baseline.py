"""The register's schema as the code before migrations made it (December 2026).

A register made before ``casebook upgrade`` existed has these tables and no version
table; ``casebook upgrade`` stamps it with this revision, then applies the later ones.
The event log's table bears the name eventsourcing gave it then, after the class that
ran the register (``chainedregister_events``); 0002 renames it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection
from sqlalchemy_utils.types.uuid import UUIDType

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


# The baseline's tables and indexes, declared once: ``upgrade`` creates them all in an
# empty database; ``complete`` adds those missing from a register made before migrations
# (the code then created missing tables and indexes at every start, so a register last
# opened by an older release may lack some), before it is stamped with this revision.
BASELINE = sa.MetaData()

sa.Table(
    "casebook_access_log",
    BASELINE,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        autoincrement=True,
        nullable=False,
    ),
    sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("case_id", sa.Uuid(), nullable=False),
    sa.Column("key_name", sa.String(length=100), nullable=False),
    sa.Column("org", sa.String(length=100), nullable=False),
    sa.Column("role", sa.String(length=20), nullable=False),
    sa.Column("route", sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint("id"),
)
sa.Index(
    "casebook_access_log_case",
    *(BASELINE.tables["casebook_access_log"].c[c] for c in ["case_id", "id"]),
    unique=False,
)
sa.Table(
    "casebook_api_keys",
    BASELINE,
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("name", sa.String(length=100), nullable=False),
    sa.Column("role", sa.String(length=20), nullable=False),
    sa.Column("org", sa.String(length=100), nullable=False),
    sa.Column("key_hash", sa.String(length=64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("key_hash"),
    sa.UniqueConstraint("name"),
)
sa.Table(
    "casebook_case_access",
    BASELINE,
    sa.Column("case_id", sa.Uuid(), nullable=False),
    sa.Column("org", sa.String(length=100), nullable=False),
    sa.Column("via", sa.String(length=10), nullable=False),
)
sa.Index(
    "casebook_case_access_case",
    *(BASELINE.tables["casebook_case_access"].c[c] for c in ["case_id"]),
    unique=False,
)
sa.Index(
    "casebook_case_access_key",
    *(BASELINE.tables["casebook_case_access"].c[c] for c in ["org", "case_id"]),
    unique=True,
)
sa.Table(
    "casebook_case_name_keys",
    BASELINE,
    sa.Column("key", sa.String(length=64), nullable=False),
    sa.Column("case_id", sa.Uuid(), nullable=False),
)
sa.Index(
    "casebook_case_name_keys_case",
    *(BASELINE.tables["casebook_case_name_keys"].c[c] for c in ["case_id"]),
    unique=False,
)
sa.Index(
    "casebook_case_name_keys_key",
    *(BASELINE.tables["casebook_case_name_keys"].c[c] for c in ["key", "case_id"]),
    unique=True,
)
sa.Table(
    "casebook_case_periods",
    BASELINE,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        autoincrement=True,
        nullable=False,
    ),
    sa.Column("case_id", sa.Uuid(), nullable=False),
    sa.Column("valid_from", sa.Date(), nullable=False),
    sa.Column("valid_to", sa.Date(), nullable=True),
    sa.Column("recorded_from", sa.DateTime(timezone=True), nullable=False),
    sa.Column("recorded_to", sa.DateTime(timezone=True), nullable=True),
    sa.Column("status", sa.String(length=40), nullable=False),
    sa.Column("held_by", sa.String(length=2), nullable=True),
    sa.Column("nationality", sa.String(length=20), nullable=True),
    sa.Column("category", sa.String(length=40), nullable=False),
    sa.Column("disputed", sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint("id"),
)
sa.Index(
    "casebook_case_periods_current",
    *(
        BASELINE.tables["casebook_case_periods"].c[c]
        for c in ["case_id", "recorded_to", "valid_from"]
    ),
    unique=False,
)
sa.Index(
    "casebook_case_periods_when",
    *(BASELINE.tables["casebook_case_periods"].c[c] for c in ["valid_from", "recorded_from"]),
    unique=False,
)
sa.Table(
    "casebook_case_views",
    BASELINE,
    sa.Column("case_id", sa.Uuid(), nullable=False),
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("org", sa.String(length=100), nullable=False),
    sa.Column("category", sa.String(length=40), nullable=False),
    sa.Column("status", sa.String(length=40), nullable=False),
    sa.Column("held_by", sa.String(length=2), nullable=True),
    sa.Column("nationality", sa.String(length=20), nullable=True),
    sa.Column("disputed", sa.Boolean(), nullable=False),
    sa.Column("view", sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint("case_id"),
    sa.UniqueConstraint("seq"),
)
sa.Index(
    "casebook_case_views_held_by",
    *(BASELINE.tables["casebook_case_views"].c[c] for c in ["held_by", "seq"]),
    unique=False,
)
sa.Index(
    "casebook_case_views_nationality",
    *(BASELINE.tables["casebook_case_views"].c[c] for c in ["nationality", "seq"]),
    unique=False,
)
sa.Index(
    "casebook_case_views_status",
    *(BASELINE.tables["casebook_case_views"].c[c] for c in ["status", "seq"]),
    unique=False,
)
sa.Table(
    "casebook_chain",
    BASELINE,
    sa.Column(
        "position",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        autoincrement=False,
        nullable=False,
    ),
    sa.Column(
        "notification_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
    ),
    sa.Column("case_id", sa.Uuid(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("hash", sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint("position"),
    sa.UniqueConstraint("notification_id"),
)
sa.Index(
    "casebook_chain_case",
    *(BASELINE.tables["casebook_chain"].c[c] for c in ["case_id", "version"]),
    unique=True,
)
sa.Table(
    "casebook_checkpoints",
    BASELINE,
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("position", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("head", sa.String(length=64), nullable=False),
    sa.Column("made_at", sa.String(length=40), nullable=False),
    sa.Column("public_key", sa.String(length=64), nullable=False),
    sa.Column("signature", sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint("id"),
)
sa.Table(
    "casebook_erasures",
    BASELINE,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        autoincrement=True,
        nullable=False,
    ),
    sa.Column("case_id", sa.Uuid(), nullable=False),
    sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("case_id"),
)
sa.Table(
    "casebook_exchanges",
    BASELINE,
    sa.Column("exchange_id", sa.Uuid(), nullable=False),
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("org", sa.String(length=100), nullable=False),
    sa.Column("negotiation_id", sa.Uuid(), nullable=True),
    sa.Column("occurred_on", sa.Date(), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("exchange_id"),
    sa.UniqueConstraint("seq"),
)
sa.Index(
    "casebook_exchanges_negotiation",
    *(BASELINE.tables["casebook_exchanges"].c[c] for c in ["negotiation_id", "seq"]),
    unique=False,
)
sa.Table(
    "casebook_handovers",
    BASELINE,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        autoincrement=True,
        nullable=False,
    ),
    sa.Column("case_id", sa.Uuid(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("exchange_id", sa.Uuid(), nullable=False),
    sa.Column("negotiation_id", sa.Uuid(), nullable=True),
    sa.Column("outcome", sa.String(length=20), nullable=False),
    sa.Column("from_party", sa.String(length=2), nullable=False),
    sa.Column("to_party", sa.String(length=2), nullable=False),
    sa.Column("occurred_on", sa.Date(), nullable=False),
    sa.Column("willingness", sa.String(length=20), nullable=True),
    sa.Column("recorded_from", sa.DateTime(timezone=True), nullable=False),
    sa.Column("recorded_to", sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint("id"),
)
sa.Index(
    "casebook_handovers_case",
    *(BASELINE.tables["casebook_handovers"].c[c] for c in ["case_id", "recorded_to"]),
    unique=False,
)
sa.Index(
    "casebook_handovers_exchange",
    *(BASELINE.tables["casebook_handovers"].c[c] for c in ["exchange_id"]),
    unique=False,
)
sa.Index(
    "casebook_handovers_negotiation",
    *(BASELINE.tables["casebook_handovers"].c[c] for c in ["negotiation_id", "recorded_to"]),
    unique=False,
)
sa.Table(
    "casebook_head",
    BASELINE,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("position", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column(
        "chain_position",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        server_default="0",
        nullable=False,
    ),
    sa.Column(
        "chain_hash",
        sa.String(length=64),
        server_default="0000000000000000000000000000000000000000000000000000000000000000",
        nullable=False,
    ),
    sa.PrimaryKeyConstraint("id"),
)
sa.Table(
    "casebook_idempotency",
    BASELINE,
    sa.Column("api_key_id", sa.Uuid(), nullable=False),
    sa.Column("idem_key", sa.String(length=200), nullable=False),
    sa.Column("request_hash", sa.String(length=64), nullable=False),
    sa.Column("status_code", sa.Integer(), nullable=False),
    sa.Column("case_id", sa.Uuid(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("api_key_id", "idem_key"),
)
sa.Table(
    "casebook_master_check",
    BASELINE,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("check_value", sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint("id"),
)
sa.Table(
    "casebook_negotiation_cases",
    BASELINE,
    sa.Column("negotiation_id", sa.Uuid(), nullable=False),
    sa.Column("case_id", sa.Uuid(), nullable=False),
    sa.Column("via", sa.String(length=20), nullable=False),
)
sa.Index(
    "casebook_negotiation_cases_case",
    *(BASELINE.tables["casebook_negotiation_cases"].c[c] for c in ["case_id"]),
    unique=False,
)
sa.Index(
    "casebook_negotiation_cases_key",
    *(
        BASELINE.tables["casebook_negotiation_cases"].c[c]
        for c in ["negotiation_id", "case_id", "via"]
    ),
    unique=True,
)
sa.Table(
    "casebook_negotiation_mentions",
    BASELINE,
    sa.Column("negotiation_id", sa.Uuid(), nullable=False),
    sa.Column("case_id", sa.Uuid(), nullable=False),
)
sa.Index(
    "casebook_negotiation_mentions_key",
    *(BASELINE.tables["casebook_negotiation_mentions"].c[c] for c in ["case_id", "negotiation_id"]),
    unique=True,
)
sa.Table(
    "casebook_negotiations",
    BASELINE,
    sa.Column("negotiation_id", sa.Uuid(), nullable=False),
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("org", sa.String(length=100), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("opened_on", sa.Date(), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("negotiation_id"),
    sa.UniqueConstraint("seq"),
)
sa.Table(
    "casebook_person_keys",
    BASELINE,
    sa.Column("case_id", sa.Uuid(), nullable=False),
    sa.Column("wrapped", sa.LargeBinary(), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint("case_id"),
)
sa.Table(
    "chainedregister_events",
    BASELINE,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        autoincrement=True,
        nullable=False,
    ),
    sa.Column("originator_id", UUIDType(), nullable=False),
    sa.Column(
        "originator_version",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        nullable=False,
    ),
    sa.Column("topic", sa.Text(), nullable=False),
    sa.Column("state", sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint("id"),
)
sa.Index(
    "chainedregister_events_aggregate_idx",
    *(
        BASELINE.tables["chainedregister_events"].c[c]
        for c in ["originator_id", "originator_version"]
    ),
    unique=True,
)


def upgrade() -> None:
    BASELINE.create_all(op.get_bind())


def complete(conn: Connection) -> None:
    """Add what a register made before migrations lacks of the baseline."""
    BASELINE.create_all(conn, checkfirst=True)
    for table in BASELINE.sorted_tables:
        for index in table.indexes:
            index.create(conn, checkfirst=True)


def downgrade() -> None:
    raise NotImplementedError("a register is never taken back to an earlier schema")
