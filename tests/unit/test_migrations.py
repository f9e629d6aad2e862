"""Alembic migrations (core.migrate) from an empty database, on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from core import migrate
from core.db import Store, StoreError
from core.schema import metadata

REQUIRED_TABLES = {
    "voucher_type", "batch", "voucher", "voucher_history", "txn", "loyalty_counter",
    "fraud_counter", "users", "audit_log", "export", "partner", "housekeeping_run",
    "ledger_account", "ledger_entry",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path):
    """An empty database (no template: these tests run the migrations themselves)."""
    if request.param == "sqlite":
        return "sqlite:///" + str(tmp_path / "ivoms.db")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(empty_url):
    s = Store(empty_url)
    yield s
    s.dispose()


def _tables(store):
    with store.engine.connect() as conn:
        return set(inspect(conn).get_table_names())


def _diff(store):
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True,
                                                     "compare_server_default": True})
        return compare_metadata(ctx, metadata)


def test_upgrade_from_empty_reaches_head(store):
    assert migrate.current(store) is None
    assert _tables(store) == set()
    head = migrate.head()
    assert head
    assert migrate.upgrade(store) == head
    assert migrate.current(store) == head
    tables = _tables(store)
    assert REQUIRED_TABLES <= tables
    assert set(metadata.tables) | {"alembic_version"} == tables
    # upgrading again is a no-op
    assert migrate.upgrade(store) == head
    assert _tables(store) == tables


def test_migrated_schema_matches_the_model(store):
    migrate.upgrade(store)
    assert _diff(store) == []


def test_comparison_would_see_a_drift(store):
    # the check above has teeth: a missing index shows up as a difference
    migrate.upgrade(store)
    name = sorted(ix.name for ix in metadata.tables["voucher"].indexes if not ix.unique)[0]
    with store.engine.begin() as conn:
        conn.execute(text("DROP INDEX " + name))
    diff = _diff(store)
    assert [(d[0], d[1].name) for d in diff] == [("add_index", name)]


def test_unique_blind_index_exists(store):
    migrate.upgrade(store)
    with store.engine.connect() as conn:
        idx = {i["name"]: i for i in inspect(conn).get_indexes("voucher")}
    assert idx["ix_voucher_blind_index"]["unique"]
    assert idx["ix_voucher_blind_index"]["column_names"] == ["blind_index"]


def test_downgrade_to_base_and_up_again(store):
    migrate.upgrade(store)
    cfg = migrate.alembic_config()
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert migrate.current(store) is None
    assert _tables(store) <= {"alembic_version"}
    assert migrate.upgrade(store) == migrate.head()
    assert _diff(store) == []


def test_require_current(store):
    with pytest.raises(StoreError, match="run 'ivoms init'"):
        migrate.require_current(store)
    migrate.upgrade(store)
    migrate.require_current(store)          # no error
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(StoreError, match="at revision 9999 but this iVOMS needs %s"
                       % migrate.head()):
        migrate.require_current(store)


def test_unreachable_database_is_a_store_error():
    s = Store("postgresql+psycopg://ivoms@127.0.0.1:1/ivoms")
    try:
        with pytest.raises(StoreError, match="cannot read the database"):
            migrate.current(s)
        with pytest.raises(StoreError):
            migrate.upgrade(s)
        with pytest.raises(StoreError, match="cannot connect to database"):
            s.tx()
    finally:
        s.dispose()


def test_malformed_url_is_a_store_error():
    with pytest.raises(StoreError, match="cannot use database URL"):
        Store("nosuchdriver://x/y")


def test_sqlite_runs_with_wal_and_full_sync(sqlite_url):
    s = Store(sqlite_url)
    try:
        migrate.upgrade(s)
        tx = s.tx()
        try:
            assert tx.execute_raw("PRAGMA journal_mode").scalar() == "wal"
            assert tx.execute_raw("PRAGMA synchronous").scalar() == 2      # FULL
            assert tx.execute_raw("PRAGMA foreign_keys").scalar() == 1
        finally:
            tx.close()
    finally:
        s.dispose()


def test_the_start_up_check_knows_the_newest_migration(store):
    """A node checks its schema without Alembic (core.schema_version): its HEAD must be
    the scripts' head, and it reads the revision as Alembic does, before and after."""
    from core import schema_version
    assert schema_version.HEAD == migrate.head()
    assert schema_version.current(store) is None
    with pytest.raises(StoreError, match="empty"):
        schema_version.require_current(store)
    migrate.upgrade(store, "0006")
    with store.engine.connect() as conn:          # Alembic's own reading of the table
        alembic_reads = MigrationContext.configure(conn).get_current_revision()
    assert schema_version.current(store) == alembic_reads == "0006"
    with pytest.raises(StoreError, match="at revision 0006 but this iVOMS needs"):
        schema_version.require_current(store)
    migrate.upgrade(store)
    schema_version.require_current(store)


def test_a_node_starts_without_loading_alembic():
    """Alembic, Mako and Pygments stay out of a running node (about 8 MB of memory)."""
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", (
        "import sys, gateway.cli, gateway.node, core.schema_version\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'alembic', 'mako', 'pygments'}))")],
        capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
