"""Shared fixtures: throw-away iVOMS instances on SQLite and on PostgreSQL."""
from __future__ import annotations

import os
import shutil
import uuid

import pytest

PG_ADMIN_URL = os.environ.get("IVOMS_TEST_PG_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _pg_admin(sql: str) -> None:
    from sqlalchemy import create_engine, text
    eng = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as c:
            c.execute(text(sql))
    finally:
        eng.dispose()


def _pg_available() -> str | None:
    try:
        _pg_admin("SELECT 1")
        return None
    except Exception as e:  # noqa: BLE001 - any failure means "not reachable"
        return str(e).splitlines()[0]


@pytest.fixture(scope="session")
def pg_server():
    """The PostgreSQL admin URL; in CI an unreachable server fails the test."""
    problem = _pg_available()
    if problem:
        if IN_CI:
            pytest.fail("PostgreSQL is required in CI but unreachable: %s" % problem)
        pytest.skip("PostgreSQL unreachable at %s: %s" % (PG_ADMIN_URL, problem))
    return PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_server):
    """URL of a fresh, empty PostgreSQL database, dropped afterwards."""
    name = "ivoms_t_" + uuid.uuid4().hex[:10]
    _pg_admin("CREATE DATABASE " + name)
    yield pg_server.rsplit("/", 1)[0] + "/" + name
    _pg_admin("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)


@pytest.fixture(scope="session")
def pg_template(pg_server):
    """Name of a PostgreSQL database migrated to head once per run (dropped at the end).

    L{pg_migrated_url} empties it for each test, which is much cheaper than
    a database and the migrations per test; tests/unit/test_migrations.py
    still runs the real migrations on L{pg_url}.
    """
    from core import migrate
    from core.db import Store
    name = "ivoms_tpl_" + uuid.uuid4().hex[:10]
    _pg_admin("CREATE DATABASE " + name)
    store = Store(pg_server.rsplit("/", 1)[0] + "/" + name)
    try:
        migrate.upgrade(store)
    finally:
        store.dispose()
    yield name
    _pg_admin("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)


@pytest.fixture
def pg_migrated_url(pg_server, pg_template):
    """URL of a PostgreSQL database at head with every table empty.

    One database (L{pg_template}) serves every test: before each test its
    tables are emptied (C{TRUNCATE ... RESTART IDENTITY}), after it the
    connections the test left are closed.  That costs milliseconds where a
    new database per test costs a large part of a second.
    """
    from sqlalchemy import create_engine, text
    url = pg_server.rsplit("/", 1)[0] + "/" + pg_template
    eng = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as c:
            tables = [r[0] for r in c.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"))]
            c.execute(text("TRUNCATE %s RESTART IDENTITY CASCADE"
                           % ", ".join('"%s"' % t for t in tables)))
    finally:
        eng.dispose()
    from core.saga import forget_batch_terms
    forget_batch_terms()              # batch ids restart at 1 under the same URL
    yield url
    _pg_admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
              "WHERE datname = '%s' AND pid <> pg_backend_pid()" % pg_template)


@pytest.fixture
def sqlite_url(tmp_path):
    return "sqlite:///" + str(tmp_path / "ivoms.db")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Each store test runs on SQLite and on PostgreSQL (both at head once make_store
    opens them: SQLite from a copied file, PostgreSQL emptied by L{pg_migrated_url})."""
    if request.param == "sqlite":
        return "sqlite:///" + str(tmp_path / "ivoms.db")
    return request.getfixturevalue("pg_migrated_url")


@pytest.fixture
def conf_dir(tmp_path):
    """A copy of the shipped conf/ folder (self-contained instance)."""
    d = tmp_path / "conf"
    shutil.copytree(os.path.join(REPO, "conf"), d, ignore=shutil.ignore_patterns("var"))
    return d


@pytest.fixture
def reactor():
    """The global reactor pytest-twisted runs (for threads calling back into it)."""
    from twisted.internet import reactor as r
    return r


#: Argon2id parameters for tests only: the same algorithm at minimal cost, so
#: that creating and logging in users does not dominate the unit suite.
#: Production keeps the library defaults (see test_users_hasher_defaults).
CHEAP_ARGON2 = dict(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch):
    """Hash passwords with cheap Argon2id parameters in this process."""
    from argon2 import PasswordHasher

    import core.users
    monkeypatch.setattr(core.users, "_hasher", PasswordHasher(**CHEAP_ARGON2))
