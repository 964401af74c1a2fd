"""The register's schema as the code before migrations made it (December 2026).

A register made before ``casebook upgrade`` existed has these tables and no version
table; ``casebook upgrade`` stamps it with this revision, then applies the later ones.
The event log's table bears the name eventsourcing gave it then, after the class that
ran the register (``chainedregister_events``); 0002 renames it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy_utils.types.uuid import UUIDType

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "casebook_access_log",
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
    op.create_index(
        "casebook_access_log_case", "casebook_access_log", ["case_id", "id"], unique=False
    )
    op.create_table(
        "casebook_api_keys",
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
    op.create_table(
        "casebook_case_access",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("org", sa.String(length=100), nullable=False),
        sa.Column("via", sa.String(length=10), nullable=False),
    )
    op.create_index("casebook_case_access_case", "casebook_case_access", ["case_id"], unique=False)
    op.create_index(
        "casebook_case_access_key", "casebook_case_access", ["org", "case_id"], unique=True
    )
    op.create_table(
        "casebook_case_name_keys",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
    )
    op.create_index(
        "casebook_case_name_keys_case", "casebook_case_name_keys", ["case_id"], unique=False
    )
    op.create_index(
        "casebook_case_name_keys_key", "casebook_case_name_keys", ["key", "case_id"], unique=True
    )
    op.create_table(
        "casebook_case_periods",
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
    op.create_index(
        "casebook_case_periods_current",
        "casebook_case_periods",
        ["case_id", "recorded_to", "valid_from"],
        unique=False,
    )
    op.create_index(
        "casebook_case_periods_when",
        "casebook_case_periods",
        ["valid_from", "recorded_from"],
        unique=False,
    )
    op.create_table(
        "casebook_case_views",
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
    op.create_index(
        "casebook_case_views_held_by", "casebook_case_views", ["held_by", "seq"], unique=False
    )
    op.create_index(
        "casebook_case_views_nationality",
        "casebook_case_views",
        ["nationality", "seq"],
        unique=False,
    )
    op.create_index(
        "casebook_case_views_status", "casebook_case_views", ["status", "seq"], unique=False
    )
    op.create_table(
        "casebook_chain",
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
    op.create_index("casebook_chain_case", "casebook_chain", ["case_id", "version"], unique=True)
    op.create_table(
        "casebook_checkpoints",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("position", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("head", sa.String(length=64), nullable=False),
        sa.Column("made_at", sa.String(length=40), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "casebook_erasures",
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
    op.create_table(
        "casebook_exchanges",
        sa.Column("exchange_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("org", sa.String(length=100), nullable=False),
        sa.Column("negotiation_id", sa.Uuid(), nullable=True),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("exchange_id"),
        sa.UniqueConstraint("seq"),
    )
    op.create_index(
        "casebook_exchanges_negotiation",
        "casebook_exchanges",
        ["negotiation_id", "seq"],
        unique=False,
    )
    op.create_table(
        "casebook_handovers",
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
    op.create_index(
        "casebook_handovers_case", "casebook_handovers", ["case_id", "recorded_to"], unique=False
    )
    op.create_index(
        "casebook_handovers_exchange", "casebook_handovers", ["exchange_id"], unique=False
    )
    op.create_index(
        "casebook_handovers_negotiation",
        "casebook_handovers",
        ["negotiation_id", "recorded_to"],
        unique=False,
    )
    op.create_table(
        "casebook_head",
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
    op.create_table(
        "casebook_idempotency",
        sa.Column("api_key_id", sa.Uuid(), nullable=False),
        sa.Column("idem_key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("api_key_id", "idem_key"),
    )
    op.create_table(
        "casebook_master_check",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("check_value", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "casebook_negotiation_cases",
        sa.Column("negotiation_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("via", sa.String(length=20), nullable=False),
    )
    op.create_index(
        "casebook_negotiation_cases_case", "casebook_negotiation_cases", ["case_id"], unique=False
    )
    op.create_index(
        "casebook_negotiation_cases_key",
        "casebook_negotiation_cases",
        ["negotiation_id", "case_id", "via"],
        unique=True,
    )
    op.create_table(
        "casebook_negotiation_mentions",
        sa.Column("negotiation_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
    )
    op.create_index(
        "casebook_negotiation_mentions_key",
        "casebook_negotiation_mentions",
        ["case_id", "negotiation_id"],
        unique=True,
    )
    op.create_table(
        "casebook_negotiations",
        sa.Column("negotiation_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("org", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("opened_on", sa.Date(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("negotiation_id"),
        sa.UniqueConstraint("seq"),
    )
    op.create_table(
        "casebook_person_keys",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("case_id"),
    )
    op.create_table(
        "chainedregister_events",
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
    op.create_index(
        "chainedregister_events_aggregate_idx",
        "chainedregister_events",
        ["originator_id", "originator_version"],
        unique=True,
    )


def downgrade() -> None:
    raise NotImplementedError("a register is never taken back to an earlier schema")
