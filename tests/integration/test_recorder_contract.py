"""Our configuration of eventsourcing-sqlalchemy (``CasebookFactory``: BEGIN IMMEDIATE,
synchronous=FULL, busy and lock timeouts) passes the library's own recorder tests, on a
SQLite file and on PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from eventsourcing.persistence import AggregateRecorder, ApplicationRecorder, InfrastructureFactory
from eventsourcing.tests.persistence import (
    AggregateRecorderTestCase,
    ApplicationRecorderTestCase,
    NonInterleavingNotificationIDsBaseCase,
)
from eventsourcing.utils import Environment

from infrastructure.persistence import persistence_env
from infrastructure.settings import Settings


class OnSqliteFile:
    """Mixin: each test gets new tables (a fresh name) on a SQLite file."""

    settings: Settings

    @pytest.fixture(autouse=True)
    def _store(self, tmp_path: Path) -> None:
        self.settings = Settings(data_dir=tmp_path)

    def _factory(self) -> InfrastructureFactory:
        # The register's schema is the migrations'; these tables are the library's own.
        configured = {**persistence_env(self.settings), "CREATE_TABLE": "y"}
        env = Environment(f"t{uuid.uuid4().hex[:12]}", configured)
        return InfrastructureFactory.construct(env)


class OnPostgres(OnSqliteFile):
    """Mixin: the same on this test run's PostgreSQL database."""

    @pytest.fixture(autouse=True)
    def _store(self, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        url = request.getfixturevalue("pg_database")
        self.settings = Settings(data_dir=tmp_path, database_url=url)


class AggregateRecorderContract(AggregateRecorderTestCase):
    __test__ = False  # run by the store-specific subclasses below

    def create_recorder(self) -> AggregateRecorder:
        return self._factory().aggregate_recorder()  # type: ignore[attr-defined]


class ApplicationRecorderContract(ApplicationRecorderTestCase):
    __test__ = False

    def create_recorder(self) -> ApplicationRecorder:
        return self._factory().application_recorder()  # type: ignore[attr-defined]


class NonInterleavingContract(NonInterleavingNotificationIDsBaseCase):
    __test__ = False
    insert_num = 200

    def create_recorder(self) -> ApplicationRecorder:
        return self._factory().application_recorder()  # type: ignore[attr-defined]


class TestAggregateRecorderSqlite(OnSqliteFile, AggregateRecorderContract):
    __test__ = True


class TestApplicationRecorderSqlite(OnSqliteFile, ApplicationRecorderContract):
    __test__ = True


class TestNonInterleavingSqlite(OnSqliteFile, NonInterleavingContract):
    __test__ = True


@pytest.mark.postgres
class TestAggregateRecorderPostgres(OnPostgres, AggregateRecorderContract):
    __test__ = True


@pytest.mark.postgres
class TestApplicationRecorderPostgres(OnPostgres, ApplicationRecorderContract):
    __test__ = True


@pytest.mark.postgres
class TestNonInterleavingPostgres(OnPostgres, NonInterleavingContract):
    __test__ = True


def test_tables_are_named_after_the_application(tmp_path: Path) -> None:
    from domain.register import Register

    app = Register(env={**persistence_env(Settings(data_dir=tmp_path)), "CREATE_TABLE": "y"})
    assert app.recorder.events_record_cls.__tablename__ == "casebook_events"  # type: ignore[attr-defined]
    app.close()
