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


def pg_admin(sql: str) -> None:
    from sqlalchemy import create_engine, text
    eng = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as c:
            c.execute(text(sql))
    finally:
        eng.dispose()


def _pg_available() -> str | None:
    try:
        pg_admin("SELECT 1")
        return None
    except Exception as e:  # noqa: BLE001 - any failure means "not reachable"
        return str(e).splitlines()[0]


def pytest_collection_finish(session):
    """Put what the imports and the collection made into the permanent GC generation.

    Those objects (modules, classes, test items) live for the whole run; left
    in the collected generations, every full collection walks them again,
    which costs seconds over the unit suite.  Objects the tests make are
    collected as usual.
    """
    import gc
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session")
def pg_server():
    """The PostgreSQL admin URL; in CI an unreachable server fails the test."""
    problem = _pg_available()
    if problem:
        if IN_CI:
            pytest.fail("PostgreSQL is required in CI but unreachable: %s" % problem)
        pytest.skip("PostgreSQL unreachable at %s: %s" % (PG_ADMIN_URL, problem))
    return PG_ADMIN_URL


def _pg_url(pg_server: str, name: str) -> str:
    return pg_server.rsplit("/", 1)[0] + "/" + name


def _pg_disconnect(name: str) -> None:
    """Close the connections a test left on database C{name}."""
    pg_admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
              "WHERE datname = '%s' AND pid <> pg_backend_pid()" % name)


@pytest.fixture(scope="session")
def pg_scratch(pg_server):
    """Name of a PostgreSQL database created once per run for L{pg_url} (dropped at the end).

    Each run (and each pytest-xdist worker, a run of its own) has its own
    random name, so parallel runs never share a database.
    """
    name = "ivoms_t_" + uuid.uuid4().hex[:10]
    pg_admin("CREATE DATABASE " + name)
    yield name
    pg_admin("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)


@pytest.fixture
def pg_url(pg_server, pg_scratch):
    """URL of an empty PostgreSQL database: no table, type, function or sequence.

    The database of L{pg_scratch} gets a new empty C{public} schema before
    each test (everything a migration creates lives there) and its own
    settings back, which leaves it as a new database is.  Dropping a database per test instead makes the
    server checkpoint each time: up to seconds on a busy machine.
    """
    # what a test may have changed on the database itself (tests/integration/
    # test_store_outage.py refuses connections to it for a while)
    pg_admin("ALTER DATABASE %s ALLOW_CONNECTIONS true CONNECTION LIMIT -1" % pg_scratch)
    pg_admin("ALTER DATABASE %s RESET ALL" % pg_scratch)
    _pg_disconnect(pg_scratch)
    from sqlalchemy import create_engine, text
    url = _pg_url(pg_server, pg_scratch)
    eng = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as c:
            c.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            c.execute(text("CREATE SCHEMA public AUTHORIZATION pg_database_owner"))
    finally:
        eng.dispose()
    yield url
    _pg_disconnect(pg_scratch)


class _PgTemplate:
    """The database of L{pg_template} and how to empty it between tests."""

    def __init__(self, name: str, url: str):
        from sqlalchemy import create_engine, text
        from sqlalchemy.pool import NullPool

        from core.schema import metadata
        self.name = name
        # no pool: the connections are closed after each test (L{_pg_disconnect})
        self.engine = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with self.engine.connect() as c:
            tables = {r[0] for r in c.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"))}
            sequences = [r[0] for r in c.execute(text(
                "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'"))]
        # children before parents, so that no foreign key refuses a DELETE
        ordered = [t.name for t in reversed(metadata.sorted_tables) if t.name in tables]
        extra = sorted(tables - set(ordered))
        self.statements = (
            ["TRUNCATE %s CASCADE" % ", ".join('"%s"' % t for t in extra)] if extra else []) + [
            'DELETE FROM "%s"' % t for t in ordered] + [
            'ALTER SEQUENCE "%s" RESTART' % s for s in sequences]

    def empty(self) -> None:
        """Delete every row and restart every sequence, in one transaction."""
        from sqlalchemy import text
        with self.engine.begin() as c:
            for statement in self.statements:
                c.execute(text(statement))


@pytest.fixture(scope="session")
def pg_template(pg_server):
    """A PostgreSQL database migrated to head once per run (dropped at the end).

    L{pg_migrated_url} empties it for each test, which is much cheaper than
    a database and the migrations per test; tests/unit/test_migrations.py
    still runs the real migrations on L{pg_url}.  Like L{pg_scratch}, each
    run and each pytest-xdist worker has its own.

    The database commits without waiting for its WAL flush
    (C{synchronous_commit = off}): a throw-away database needs no
    durability across a server crash, and locking, isolation and
    visibility are the same as with the production setting.
    """
    from core import migrate
    from core.db import Store
    name = "ivoms_tpl_" + uuid.uuid4().hex[:10]
    pg_admin("CREATE DATABASE " + name)
    pg_admin("ALTER DATABASE %s SET synchronous_commit = off" % name)
    store = Store(_pg_url(pg_server, name))
    try:
        migrate.upgrade(store)
    finally:
        store.dispose()
    template = _PgTemplate(name, _pg_url(pg_server, name))
    yield template
    template.engine.dispose()
    pg_admin("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)


@pytest.fixture
def pg_migrated_url(pg_server, pg_template):
    """URL of a PostgreSQL database at head with every table empty.

    One database (L{pg_template}) serves every test: before each test its
    rows are deleted and its sequences restarted (as a new database has
    them), after it the connections the test left are closed.  That costs
    milliseconds where a new database per test, or a C{TRUNCATE} of every
    table, costs a large part of a second.
    """
    pg_template.empty()
    from core.saga import forget_batch_terms
    forget_batch_terms()              # batch ids restart at 1 under the same URL
    yield _pg_url(pg_server, pg_template.name)
    _pg_disconnect(pg_template.name)


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
def env(db_url, tmp_path):
    """(store, cipher): a migrated store on each database of L{db_url} and a cipher
    over a new key file; the store is disposed of afterwards."""
    from tests.helpers import make_store
    store, cipher = make_store(db_url, str(tmp_path))
    yield store, cipher
    store.dispose()


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
