"""Schema migrations: every revision from nothing gives the schema the code declares; a
register written by the code before migrations (``tests/fixtures/old_register``, made
by ``tests/fixtures/make_old_register.py`` at commit e6fda4e) is refused until
``casebook upgrade``, then answers as it did, and its chain and checkpoint verify."""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
import uuid
from pathlib import Path

import pytest
import sqlalchemy
from alembic import command
from alembic.config import Config
from pydantic import SecretStr
from sqlalchemy import func, select

from infrastructure import migrations, tables
from infrastructure.checkpoints import DEV_KEY_FILE, Signer
from infrastructure.persistence import plain_engine
from infrastructure.rebuild import rebuild
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.book import Book as Casebook
from tests.e2e.test_cli import run

FIXTURE = Path(__file__).parents[1] / "fixtures" / "old_register"
MADE = json.loads((FIXTURE / "register.json").read_text())


def test_every_revision_from_nothing_gives_the_schema_a_new_register_gets(
    settings: Settings,
) -> None:
    """What ``migrations.create`` makes in one step for a new register is what the
    revisions make one by one: no drift between the two."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = plain_engine(settings)
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(migrations.HERE))
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    step_by_step = schema_of(engine)
    wipe(engine, settings)
    Store(settings).close()  # a new register: today's schema in one step
    assert schema_of(engine) == step_by_step
    engine.dispose()


def schema_of(engine: sqlalchemy.Engine) -> dict[str, object]:
    """Tables, columns (name, type, nullable), keys, indexes and unique constraints."""
    inspector = sqlalchemy.inspect(engine)
    out: dict[str, object] = {}
    for table in sorted(inspector.get_table_names()):
        columns = [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)]
        indexes = sorted(
            (i["name"], tuple(i["column_names"]), bool(i["unique"]))
            for i in inspector.get_indexes(table)
        )
        uniques = sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table))
        key = tuple(inspector.get_pk_constraint(table)["constrained_columns"])
        out[table] = (sorted(columns), key, indexes, uniques)
    return out


def wipe(engine: sqlalchemy.Engine, settings: Settings) -> None:
    if settings.is_sqlite:
        engine.dispose()
        settings.sqlite_path().unlink()
        return
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")


def load_old_register(settings: Settings) -> dict[str, str]:
    """The fixture's register, as the earlier code left it, on this test's store."""
    store = "sqlite" if settings.is_sqlite else "postgres"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.is_sqlite:
        shutil.copy(FIXTURE / "register.sqlite", settings.sqlite_path())
    else:
        engine = sqlalchemy.create_engine(str(settings.database_url))
        with engine.begin() as conn:
            conn.exec_driver_sql((FIXTURE / "register.postgres.sql").read_text())
        engine.dispose()
    shutil.copy(FIXTURE / f"signing-key.{store}.pem", settings.data_dir / DEV_KEY_FILE)
    ids: dict[str, str] = MADE[store]
    return ids


def old(settings: Settings) -> Settings:
    return settings.model_copy(update={"master_key": SecretStr(MADE["master_key"])})


def test_an_old_register_is_refused_until_upgraded_then_answers_as_before(
    settings: Settings,
) -> None:
    settings = old(settings)
    ids = load_old_register(settings)
    with pytest.raises(migrations.UpgradeNeeded, match="casebook upgrade"):
        Store(settings)
    env = {"CASEBOOK_MASTER_KEY": MADE["master_key"]}
    refused = run(settings, "serve", "--port", "0", check=False, env=env)
    assert refused.returncode != 0 and "run `casebook upgrade`" in refused.stderr
    before = stored_views(settings)
    statuses = status_counts(settings)

    upgraded = run(settings, "upgrade", env=env)
    assert "applied 7 migrations: 0002, 0003, 0004, 0005, 0006, 0007, 0008" in upgraded.stdout
    assert "up to date" in run(settings, "upgrade", env=env).stdout

    store = Store(settings)
    store.public_key = Signer.installed_public_key(settings)
    try:
        # 0004 asked for a rebuild: every view was sealed afresh, and says the same
        assert stored_views(settings).keys() == before.keys()
        assert stored_views(settings) != before
        casebook = Casebook(store)
        # 0003 counted the old register's cases for the summary, as its views say
        counted = {g["value"]: g["count"] for g in casebook.summary("status")["groups"]}
        assert counted == statuses and sum(statuses.values()) >= 3
        views = {
            name: json.loads(casebook.view_json(uuid.UUID(i))[1])
            for name, i in ids.items()
            if name != "negotiation"
        }
        assert views["aram"]["status"] == "repatriated"
        assert views["aram"]["person"]["given_names"] == "Aram"
        assert views["aram"]["negotiations"] == [ids["negotiation"]]
        assert views["narek"]["person"] == {"nationality": "AM"}  # erased, and stays so
        # the full-name search reaches the old register's people (0004's keys)
        found, _ = casebook.list_cases({}, "Aram Goldenyan", 20, None)
        assert [f["id"] for f in found] == [ids["aram"]]
        verified = casebook.verify()
        assert verified.ok and verified.checkpoints == 1
        rebuild(store)  # the views the code of today projects from the old log
        again = {
            name: json.loads(casebook.view_json(uuid.UUID(i))[1])
            for name, i in ids.items()
            if name != "negotiation"
        }
        assert again == views
        worker = next(k for k in store_keys(store) if k.role == "case_worker")
        note = {"type": "note", "text": "after the upgrade", "source": {"kind": "ngo"}}
        written = casebook.record_fact(uuid.UUID(ids["aram"]), note, worker)
        assert written.view["person"]["family_name"] == "Goldenyan"
        assert casebook.verify().ok
    finally:
        store.close()


def test_an_upgrade_killed_before_its_rebuild_rebuilds_when_run_again(
    settings: Settings,
) -> None:
    """0004 asks for a rebuild (the name index's new keys). An upgrade whose process
    died after its migrations committed and before that rebuild finished would leave a
    register at the newest schema whose full-name searches find nobody: the rebuild
    is owed until done, and the next upgrade does it."""
    settings = old(settings)
    ids = load_old_register(settings)
    engine = plain_engine(settings)
    try:
        # the migrations (0006 with the master key), and then the process died
        assert migrations.upgrade(engine, lambda: base64.b64decode(MADE["master_key"]))
        with engine.connect() as conn:
            assert migrations.owed(conn) == {migrations.VIEWS_REBUILD}
    finally:
        engine.dispose()
    store = Store(settings)
    try:
        assert Casebook(store).list_cases({}, "Aram Goldenyan", 20, None)[0] == []
    finally:
        store.close()
    env = {"CASEBOOK_MASTER_KEY": MADE["master_key"]}
    upgraded = run(settings, "upgrade", env=env).stdout
    assert "up to date" in upgraded and "rebuilding" in upgraded
    assert "up to date" in run(settings, "upgrade", env=env).stdout
    store = Store(settings)
    try:
        found, _ = Casebook(store).list_cases({}, "Aram Goldenyan", 20, None)
        assert [f["id"] for f in found] == [ids["aram"]]
        with store.engine.connect() as conn:
            assert migrations.owed(conn) == set()
    finally:
        store.close()


def views_of(casebook: Casebook, ids: dict[str, str]) -> dict[str, dict[str, object]]:
    cases = {name: uuid.UUID(i) for name, i in ids.items() if name != "negotiation"}
    return {name: json.loads(casebook.view_json(case_id)[1]) for name, case_id in cases.items()}


def stored_views(settings: Settings) -> dict[str, str]:
    """The case views as stored (sealed), by case."""
    engine = plain_engine(settings)
    t = tables.case_views
    with engine.connect() as conn:
        rows = conn.execute(select(t.c.case_id, t.c.view)).all()
    engine.dispose()
    return {str(case_id): view for case_id, view in rows}


def status_counts(settings: Settings) -> dict[str, int]:
    """How many cases stand at each status, grouped from the stored views."""
    engine = plain_engine(settings)
    t = tables.case_views
    with engine.connect() as conn:
        rows = conn.execute(select(t.c.status, func.count()).group_by(t.c.status)).all()
    engine.dispose()
    return {status: n for status, n in rows}


def store_keys(store: Store) -> list:  # type: ignore[type-arg]
    from infrastructure.keys import KeyStore

    return KeyStore(store.engine).list()


def test_a_register_made_by_a_newer_casebook_is_refused(settings: Settings) -> None:
    Store(settings).close()
    engine = plain_engine(settings)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"UPDATE {migrations.VERSION_TABLE} SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(migrations.UpgradeNeeded, match="newer version"):
        Store(settings)


def test_the_sqlite_fixture_was_written_before_migrations() -> None:
    """It has the earlier names and no version table: what `upgrade` must handle."""
    with sqlite3.connect(FIXTURE / "register.sqlite") as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "chainedregister_events" in names and migrations.VERSION_TABLE not in names


def test_a_register_last_opened_by_an_older_release_gets_what_it_lacks(
    sqlite_settings: Settings,
) -> None:
    """Before migrations the code added missing tables and indexes at every start: a
    register last opened by an older release may lack some. The upgrade adds them."""
    settings = old(sqlite_settings)
    load_old_register(settings)
    with sqlite3.connect(settings.sqlite_path()) as conn:
        conn.execute("DROP TABLE casebook_handovers")
        conn.execute("DROP INDEX casebook_case_periods_current")
    run(settings, "upgrade", env={"CASEBOOK_MASTER_KEY": MADE["master_key"]})
    engine = plain_engine(settings)
    inspector = sqlalchemy.inspect(engine)
    assert "casebook_handovers" in inspector.get_table_names()
    indexes = {i["name"] for i in inspector.get_indexes("casebook_case_periods")}
    assert "casebook_case_periods_current" in indexes
    engine.dispose()
    store = Store(settings)
    try:
        assert rebuild(store) == 50  # every event of the fixture, handovers included
    finally:
        store.close()


def test_an_old_copy_verifies_before_it_is_upgraded(settings: Settings) -> None:
    """An auditor verifies a copy (or a replica) of a register not yet upgraded."""
    settings = old(settings)
    load_old_register(settings)
    result = run(settings, "verify", env={"CASEBOOK_MASTER_KEY": MADE["master_key"]})
    assert "1 checkpoints agree" in result.stdout
