"""The register's own tables, beside the event log that eventsourcing-sqlalchemy keeps.

Every one of them is written in the same transaction as the events it depends on.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
)

metadata = MetaData()
BIGINT = BigInteger().with_variant(Integer(), "sqlite")

# One row: the last log position projected into the views, the last recorded_at handed
# out, and the head of the hash chain. Writers update it under the register's write
# lock, so recorded_at never goes backwards, even across processes on several hosts
# with drifting clocks, and the chain never forks.
register_head = Table(
    "casebook_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("position", BIGINT, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=True),
    Column("chain_position", BIGINT, nullable=False, server_default="0"),
    Column("chain_hash", String(64), nullable=False, server_default="0" * 64),
)

# The hash chain over the event log, in an order of our own: ``position`` is dense
# (1, 2, 3...), unlike the log's ids, which PostgreSQL leaves gaps in and SQLite may
# reuse after the tail is deleted. See ``infrastructure.chain``.
chain = Table(
    "casebook_chain",
    metadata,
    Column("position", BIGINT, primary_key=True, autoincrement=False),
    Column("notification_id", BIGINT, nullable=False, unique=True),
    Column("case_id", Uuid, nullable=False),
    Column("version", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    Index("casebook_chain_case", "case_id", "version", unique=True),
)

# The checkpoint-signing keys after the first, in the order they took over, each with
# the statement that announced it, signed by the key before it and by itself
# (``infrastructure.signing``). The statement is what is trusted, once its signatures
# are checked; the other columns repeat it, for lookups. Made by migration 0005;
# written only by ``casebook signing-key rotate``.
signing_keys = Table(
    "casebook_signing_keys",
    metadata,
    Column("sequence", Integer, primary_key=True, autoincrement=False),
    Column("public_key", String(64), nullable=False, unique=True),
    Column("previous_public_key", String(64), nullable=False),
    Column("position", BIGINT, nullable=False),
    Column("statement", Text, nullable=False),
    Column("outgoing_signature", String(88), nullable=False),  # base64
    Column("incoming_signature", String(88), nullable=False),
)

# Signed checkpoints of the chain (see ``infrastructure.checkpoints``).
checkpoints = Table(
    "casebook_checkpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("position", BIGINT, nullable=False),
    Column("head", String(64), nullable=False),
    Column("made_at", String(40), nullable=False),
    Column("public_key", String(64), nullable=False),
    Column("signature", String(128), nullable=False),
)

# Signed statements that the register was restored from a copy whose chain ended at
# ``position`` (``infrastructure.restore``): checkpoints made past it before the restore
# no longer match, and this says why.
restores = Table(
    "casebook_restores",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("position", BIGINT, nullable=False),
    Column("head", String(64), nullable=False),
    Column("copy_made_at", String(40), nullable=False),
    Column("restored_at", String(40), nullable=False),
    Column("public_key", String(64), nullable=False),
    Column("signature", String(128), nullable=False),
)

# One row: the id of the erasure ledger this register is paired with
# (``infrastructure.ledger``): a store refuses a ledger that is not it (a lost one made
# anew would not know the erasures a restored copy lacks).
ledger_pairing = Table(
    "casebook_ledger_pairing",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ledger_id", String(36), nullable=False),
)

# The status projection: one row per case, the rendered view as JSON text, and the
# columns that list filters need.
case_views = Table(
    "casebook_case_views",
    metadata,
    Column("case_id", Uuid, primary_key=True),
    Column("seq", BIGINT, nullable=False, unique=True),  # log position of the opening
    Column("version", Integer, nullable=False),
    Column("org", String(100), nullable=False),
    Column("category", String(40), nullable=False),
    Column("status", String(40), nullable=False),
    Column("held_by", String(2), nullable=True),
    Column("nationality", String(20), nullable=True),
    Column("disputed", Boolean, nullable=False),
    Column("view", Text, nullable=False),
    Index("casebook_case_views_status", "status", "seq"),
    Index("casebook_case_views_held_by", "held_by", "seq"),
    Index("casebook_case_views_nationality", "nationality", "seq"),
)

# The bitemporal status table: each case's world timeline (valid_from .. valid_to, world
# days) as the register knew it (recorded_from .. recorded_to, register instants). A
# write closes the rows it changes and adds the new ones, so the register as of any day,
# known at any instant, is one indexed query, with no replay of any case.
case_periods = Table(
    "casebook_case_periods",
    metadata,
    Column("id", BIGINT, primary_key=True, autoincrement=True),
    Column("case_id", Uuid, nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_to", Date, nullable=True),
    Column("recorded_from", DateTime(timezone=True), nullable=False),
    Column("recorded_to", DateTime(timezone=True), nullable=True),
    Column("status", String(40), nullable=False),
    Column("held_by", String(2), nullable=True),
    Column("nationality", String(20), nullable=True),
    Column("category", String(40), nullable=False),
    Column("disputed", Boolean, nullable=False),
    # A write closes rows by (case_id, recorded_to IS NULL, valid_from): all three in
    # one index, so that SQLite's planner, which has no statistics unless ANALYZE ran,
    # never prefers the valid_from index below (every case's first period starts on
    # the same day, so that one would scan every case).
    Index("casebook_case_periods_current", "case_id", "recorded_to", "valid_from"),
    Index("casebook_case_periods_when", "valid_from", "recorded_from"),
)

# Each person's data key, wrapped by the master key (``infrastructure.crypto``): kept
# outside the event log so that it can be destroyed. An erased person's row keeps its
# dates and loses its key.
person_keys = Table(
    "casebook_person_keys",
    metadata,
    # A case's id, or a list entry's, or a negotiation record's: whatever the key seals.
    Column("key_id", Uuid, primary_key=True),
    Column("wrapped", LargeBinary, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("erased_at", DateTime(timezone=True), nullable=True),
    # Which master key wraps it (the first hex digits of that key's check value), so
    # that a master-key rotation knows what it has rewrapped; NULL once erased.
    Column("wrapped_by", String(16), nullable=True),
)

# The register's own secrets (``infrastructure.secrets``): the name index's key and the
# request digests' key, random, wrapped by the master key like the people's keys (and
# rewrapped with them by a rotation), so that their values outlive any master key.
secrets = Table(
    "casebook_secrets",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("wrapped", LargeBinary, nullable=False),
    Column("wrapped_by", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# One row: a value derived from the master key, so that a store opened with another
# master key (a typo, a lost development key file) refuses to start instead of failing
# on every person's data, or sealing new data with keys nobody can open together.
# While a master-key rotation is under way, ``rotating_to`` is the new key's: nothing
# starts or writes until the rotation has finished and switched ``check_value``.
master_check = Table(
    "casebook_master_check",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("check_value", String(64), nullable=False),
    Column("rotating_to", String(64), nullable=True),
)

# Every erasure, in order: its count tells each process when to forget cached keys.
erasures = Table(
    "casebook_erasures",
    metadata,
    Column("id", BIGINT, primary_key=True, autoincrement=True),
    Column("key_id", Uuid, nullable=False, unique=True),  # the key destroyed
    Column("erased_at", DateTime(timezone=True), nullable=False),
)

# Keyed hashes (``Keyring.name_key``) of the blocking keys of every name and alias of a
# case, to find candidates for ``q`` without a name in clear.
case_name_keys = Table(
    "casebook_case_name_keys",
    metadata,
    Column("key", String(64), nullable=False),
    Column("case_id", Uuid, nullable=False),
    Index("casebook_case_name_keys_key", "key", "case_id", unique=True),
    Index("casebook_case_name_keys_case", "case_id"),
)

api_keys = Table(
    "casebook_api_keys",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    Column("org", String(100), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

# The first answer to a POST sent with an Idempotency-Key, scoped to the calling key.
# Holds no personal data: a retry re-renders the case as it stood at that version.
idempotency = Table(
    "casebook_idempotency",
    metadata,
    Column("api_key_id", Uuid, primary_key=True),
    Column("idem_key", String(200), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("aggregate_id", Uuid, nullable=False),  # a case, a negotiation, an exchange
    Column("version", Integer, nullable=False),
    # The write's stamp (``recorded_at``): the record answers retries for
    # CASEBOOK_IDEMPOTENCY_HOURS after it. Indexed for ``casebook prune``'s oldest first.
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("casebook_idempotency_created", "created_at"),
)

# Negotiations (``domain.negotiation``): one row each, for listing them and for the
# organisation that owns them. Lists, matches and agreements live in the aggregate.
negotiations = Table(
    "casebook_negotiations",
    metadata,
    Column("negotiation_id", Uuid, primary_key=True),
    Column("seq", BIGINT, nullable=False, unique=True),  # log position of the opening
    Column("org", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("opened_on", Date, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Which cases each negotiation names: on a party's current list, in an agreement
# ("negotiation"), or in one of its exchanges ("exchange"). Serves the case view's
# ``negotiations`` and ``GET /cases?negotiation=``.
negotiation_cases = Table(
    "casebook_negotiation_cases",
    metadata,
    Column("negotiation_id", Uuid, nullable=False),
    Column("case_id", Uuid, nullable=False),
    Column("via", String(20), nullable=False),
    Index("casebook_negotiation_cases_key", "negotiation_id", "case_id", "via", unique=True),
    Index("casebook_negotiation_cases_case", "case_id"),
)

# Every case tied to, or proposed for, an entry of any version of a negotiation's lists
# (``Negotiation.mentions``): where an erasure must redact (old versions included).
negotiation_mentions = Table(
    "casebook_negotiation_mentions",
    metadata,
    Column("negotiation_id", Uuid, nullable=False),
    Column("case_id", Uuid, nullable=False),
    Index("casebook_negotiation_mentions_key", "case_id", "negotiation_id", unique=True),
)

# Exchanges (``domain.exchange``): one row each, for listing them by negotiation.
exchanges = Table(
    "casebook_exchanges",
    metadata,
    Column("exchange_id", Uuid, primary_key=True),
    Column("seq", BIGINT, nullable=False, unique=True),
    Column("org", String(100), nullable=False),
    Column("negotiation_id", Uuid, nullable=True),
    Column("occurred_on", Date, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Index("casebook_exchanges_negotiation", "negotiation_id", "seq"),
)

# The handover facts of every case (handed_over, handover_refused, handover_absent) as
# the register knew them (recorded_from .. recorded_to): a retraction on the case closes
# its row. Reconciliations and reports read outcomes here, as of any day and known at
# any instant, with no replay of any case. Written with the case's other projections.
handovers = Table(
    "casebook_handovers",
    metadata,
    Column("id", BIGINT, primary_key=True, autoincrement=True),
    Column("case_id", Uuid, nullable=False),
    Column("version", Integer, nullable=False),  # the fact's version on the case
    Column("exchange_id", Uuid, nullable=False),
    Column("negotiation_id", Uuid, nullable=True),
    Column("outcome", String(20), nullable=False),
    Column("from_party", String(2), nullable=False),
    Column("to_party", String(2), nullable=False),
    Column("occurred_on", Date, nullable=False),
    Column("willingness", String(20), nullable=True),
    Column("recorded_from", DateTime(timezone=True), nullable=False),
    Column("recorded_to", DateTime(timezone=True), nullable=True),
    Index("casebook_handovers_case", "case_id", "recorded_to"),
    Index("casebook_handovers_negotiation", "negotiation_id", "recorded_to"),
    Index("casebook_handovers_exchange", "exchange_id"),
)

# Which organisations may see and change each case: the one that opened it ("owner")
# and those it is shared with ("share"). Case workers' reads, lists, searches, counts
# and reconciliations are filtered by it. Written with the case's other projections.
case_access = Table(
    "casebook_case_access",
    metadata,
    Column("case_id", Uuid, nullable=False),
    Column("org", String(100), nullable=False),
    Column("via", String(10), nullable=False),
    Index("casebook_case_access_key", "org", "case_id", unique=True),
    Index("casebook_case_access_case", "case_id"),
)

# The read audit: who read which case's personal data, when, through which route (the
# route's template, never its query: a search's words may be a name). Written before
# the answer leaves; a read whose record cannot be written is refused.
access_log = Table(
    "casebook_access_log",
    metadata,
    Column("id", BIGINT, primary_key=True, autoincrement=True),
    Column("read_at", DateTime(timezone=True), nullable=False),
    Column("case_id", Uuid, nullable=False),
    Column("key_name", String(100), nullable=False),
    Column("org", String(100), nullable=False),
    Column("role", String(20), nullable=False),
    Column("route", String(200), nullable=False),
    Index("casebook_access_log_case", "case_id", "id"),
    # ``casebook prune`` removes the records past CASEBOOK_READ_AUDIT_DAYS, oldest first.
    Index("casebook_access_log_read_at", "read_at"),
)

# What ``casebook prune`` removed, one row per kind ("idempotency", "read_audit") and
# run that removed anything: the cutoff (records made or read before it were removed),
# how many, the oldest and newest removed. Written in the transaction of the run's
# first batch and counted up in each later one's, so that a prune killed half-way is
# accounted for exactly. An auditor reading a case's reads is told the newest cutoff:
# before it, an absent read may have been pruned (``GET /audit/access``).
prunes = Table(
    "casebook_prunes",
    metadata,
    Column("id", BIGINT, primary_key=True, autoincrement=True),
    Column("kind", String(20), nullable=False),
    Column("cutoff", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("removed", BIGINT, nullable=False),
    Column("oldest", DateTime(timezone=True), nullable=True),
    Column("newest", DateTime(timezone=True), nullable=True),
    Index("casebook_prunes_kind", "kind", "cutoff"),
)

# The summary report's counts, kept by every write (``infrastructure.counts``): for each
# viewer (an organisation that may see the cases, or "*" for those who see all), each
# counted column and each of its values ("" for none), how many cases stand at it now,
# and by how much that changes on each world day (+1 on a period's first day, -1 on the
# day after its last), so that a count as of a day is a sum over days, not over people.
counts = Table(
    "casebook_counts",
    metadata,
    Column("viewer", String(100), primary_key=True),
    Column("dimension", String(20), primary_key=True),
    Column("value", String(40), primary_key=True),
    Column("n", BIGINT, nullable=False),
)
count_days = Table(
    "casebook_count_days",
    metadata,
    Column("viewer", String(100), primary_key=True),
    Column("dimension", String(20), primary_key=True),
    Column("value", String(40), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("delta", BIGINT, nullable=False),
)

# Work the register is owed: "views_rebuild" when a migration asked for the views to be
# rebuilt (written in the migrations' transaction) until a rebuild has swapped them in,
# so that an upgrade killed between the two still rebuilds when run again.
owed = Table(
    "casebook_owed",
    metadata,
    Column("what", String(40), primary_key=True),
    Column("since", DateTime(timezone=True), nullable=False),
)

# Every table ``infrastructure.projections`` writes from the events: the views rebuild
# fills a copy of each and swaps it in (``infrastructure.rebuild``), and a snapshot read
# on PostgreSQL locks them first so that a swap cannot change them under it
# (``Store.snapshot``).
PROJECTED = (
    case_views,
    case_name_keys,
    case_periods,
    case_access,
    handovers,
    negotiations,
    negotiation_cases,
    negotiation_mentions,
    exchanges,
    counts,
    count_days,
)
