"""The store's engine and units of work: SQLAlchemy-compiled SQL run on DB-API connections.

One *unit of work* is a plain function C{fn(tx, *args)} that runs a few
statements on a L{Tx}; it commits as a whole or not at all.  Statements
are written once with SQLAlchemy Core (portable between SQLite and
PostgreSQL), compiled once per dialect, and executed on the DB-API cursor, so
the hot path pays neither ORM nor per-call compilation cost.
"""
from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass

from sqlalchemy import create_engine, event, insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError


class StoreError(Exception):
    """The database could not be reached or used; the message says why."""


class StoreUnavailable(StoreError):
    """The database cannot take units of work now: the connection was refused or
    lost (a PostgreSQL restart or failover), the server is shutting down or
    read-only, or the disk is full.  The unit's transaction did not commit,
    except when the connection broke during C{COMMIT} itself: then its
    outcome is unknown, but whole (a unit commits entirely or not at all)."""


#: PostgreSQL SQLSTATE classes and codes meaning "the database is unavailable":
#: connection exceptions, operator intervention (shutdown, cannot connect now),
#: insufficient resources (disk full, out of memory), read-only transaction (a
#: standby after failover).
_PG_UNAVAILABLE_CLASSES = ("08", "57", "53", "58")
_PG_UNAVAILABLE_CODES = ("25006",)
#: SQLite primary result codes meaning the same for the file.
_SQLITE_UNAVAILABLE = ("SQLITE_READONLY", "SQLITE_FULL", "SQLITE_IOERR", "SQLITE_CANTOPEN",
                       "SQLITE_CORRUPT", "SQLITE_NOTADB")


def unavailable(exc: BaseException) -> str | None:
    """Why C{exc} means the database is unavailable (one line, no parameters),
    or None when it is any other error (a bug, a constraint, a deadlock ...).
    """
    if isinstance(exc, StoreUnavailable):
        return str(exc)
    if isinstance(exc, StoreError):       # L{Store.tx} could not connect
        return str(exc) if "cannot connect" in str(exc) else None
    e = getattr(exc, "orig", None) or exc
    name = getattr(e, "sqlite_errorname", None)
    if name is not None:
        primary = "_".join(name.split("_")[:2])     # SQLITE_IOERR_WRITE -> SQLITE_IOERR
        return "%s (%s)" % (first_line(e), name) if primary in _SQLITE_UNAVAILABLE else None
    mod = type(e).__module__
    if mod.startswith("psycopg"):
        state = getattr(e, "sqlstate", None)
        if state is None:
            import psycopg
            return first_line(e) if isinstance(e, psycopg.OperationalError) else None
        if state[:2] in _PG_UNAVAILABLE_CLASSES or state in _PG_UNAVAILABLE_CODES:
            return "%s (SQLSTATE %s)" % (first_line(e), state)
    return None


#: PostgreSQL SQLSTATE codes of a conflict between concurrent transactions that the
#: server resolved by failing one of them: a deadlock (two transactions waiting for
#: each other's row locks) and a serialization failure.  Nothing of the failed
#: statement is kept, and running the unit again in a new transaction succeeds
#: once the other transaction has ended.
_PG_CONFLICT_CODES = ("40P01", "40001")


def conflict(exc: BaseException) -> str | None:
    """Why C{exc} is a conflict with a concurrent transaction that running the
    unit of work again resolves (one line, no parameters), or None.

    Only PostgreSQL reports these: SQLite has one writer at a time, whose
    lock waits end in C{SQLITE_BUSY} after the busy timeout, not in a deadlock.
    """
    e = getattr(exc, "orig", None) or exc
    if not type(e).__module__.startswith("psycopg"):
        return None
    state = getattr(e, "sqlstate", None)
    if state in _PG_CONFLICT_CODES:
        return "%s (SQLSTATE %s)" % (first_line(e), state)
    return None


def make_engine(url: str, *, pool_size: int = 8, busy_timeout_ms: int = 30000) -> Engine:
    """Create an engine for C{url} with the durability settings iVOMS relies on.

    SQLite gets WAL, C{synchronous=FULL}, foreign keys and a busy timeout,
    and runs in autocommit mode so that units of work issue their own
    C{BEGIN IMMEDIATE} / C{SAVEPOINT} / C{COMMIT}.

    @raise StoreError: the URL is malformed or names an unknown driver.
    """
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, pool_size=pool_size, max_overflow=4,
                                   connect_args={"check_same_thread": False})

            @event.listens_for(engine, "connect")
            def _sqlite_connect(dbapi_conn, _record):
                dbapi_conn.isolation_level = None
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=FULL")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA busy_timeout=%d" % busy_timeout_ms)
                # after a checkpoint the WAL file is cut back to this size
                cur.execute("PRAGMA journal_size_limit=67108864")
                cur.close()

            @event.listens_for(engine, "begin")
            def _sqlite_begin(conn):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            # pre-ping: a pooled connection that died with a server restart is
            # replaced on checkout; connect_timeout: a server that does not
            # answer fails the unit in seconds instead of hanging it
            engine = create_engine(url, pool_size=pool_size, max_overflow=4,
                                   pool_pre_ping=True, connect_args={"connect_timeout": 5})
    except (ArgumentError, SQLAlchemyError, ImportError) as e:
        raise StoreError("cannot use database URL %r: %s" % (_redact(url), e)) from e
    return engine


def _redact(url: str) -> str:
    """Return C{url} with any password replaced, for messages."""
    from sqlalchemy.engine import make_url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<malformed URL>"


@dataclass(frozen=True)
class Compiled:
    """A statement compiled for one dialect: SQL text plus how to order parameters."""

    sql: str
    positional: tuple | None
    defaults: dict


class Result:
    """Rows (tuples) a statement returned, and the rows it changed."""

    __slots__ = ("rows", "rowcount")

    def __init__(self, rows, rowcount):
        self.rows = rows
        self.rowcount = rowcount

    def first(self):
        """The first row, or None."""
        return self.rows[0] if self.rows else None

    def scalar(self):
        """The first column of the first row, or None."""
        return self.rows[0][0] if self.rows else None


_NO_RESULT = Result([], -1)


class Tx:
    """One DB-API connection inside a unit of work; statements run on its cursor."""

    def __init__(self, store: "Store", dbapi_conn):
        self.store = store
        self.conn = dbapi_conn
        self.cur = dbapi_conn.cursor()
        self.is_sqlite = store.is_sqlite
        self._pipe = None
        self.commit_sent = False

    @contextlib.contextmanager
    def pipeline(self):
        """PostgreSQL pipeline mode for the statements run inside (a no-op on SQLite).

        Statements whose result nobody reads (C{insert}, C{execute(wait=False)})
        are sent without waiting for the server; the next statement whose result
        is read waits for all of them, so a unit of work costs one round trip per
        result it needs instead of one per statement.  Errors surface at that
        point or when the block ends.
        """
        if self.is_sqlite:
            yield
            return
        with self.conn.pipeline() as pipe:
            self._pipe = pipe
            try:
                yield
            finally:
                self._pipe = None

    def execute(self, stmt, params=None, *, wait: bool = True) -> Result:
        """Run a Core statement (compiled once and cached) with C{params}.

        @param wait: False when the caller will not read the result: under
            pipeline mode the statement is then sent without a round trip.
        """
        c = self.store.compiled(stmt)
        return self._run(c, params or {}, wait)

    def insert(self, table, row: dict) -> None:
        """Insert C{row} (a dict of column values) into C{table} (no result)."""
        c = self.store.compiled_insert(table, tuple(row))
        self._run(c, row, False)

    def insert_ignore(self, table, row: dict) -> int:
        """Insert C{row} unless its primary key exists (C{ON CONFLICT DO NOTHING},
        which SQLite and PostgreSQL both speak); return 1 if inserted, else 0."""
        k = ("ignore", table, tuple(row))
        c = self.store._cache.get(k)
        if c is None:
            if self.is_sqlite:
                from sqlalchemy.dialects.sqlite import insert as dialect_insert
            else:
                from sqlalchemy.dialects.postgresql import insert as dialect_insert
            c = self.store._compile(dialect_insert(table).on_conflict_do_nothing(),
                                    column_keys=list(row))
            self.store._cache[k] = c
        return self._run(c, row).rowcount

    def insert_many(self, table, rows: list[dict]) -> None:
        """Insert many rows with the same keys using C{executemany}."""
        if not rows:
            return
        self._many(self.store.compiled_insert(table, tuple(rows[0])), rows)

    def execute_many(self, stmt, params: list[dict]) -> int:
        """Run a Core statement once per parameter dict (C{executemany}, no result).

        @return: the rows changed in all, as the driver reports it.
        """
        if not params:
            return 0
        return self._many(self.store.compiled(stmt), params)

    def execute_each(self, stmt, name: str, values, **common) -> int:
        """Run a Core statement once per value of its parameter C{name}, with the
        other parameters C{common} (C{executemany}, no result): the same effect
        as L{execute_many} with one dict per value, without building them.

        @return: the rows changed in all, as the driver reports it.
        """
        values = list(values)
        if not values:
            return 0
        c = self.store.compiled(stmt)
        base = {**c.defaults, **common}
        order = c.positional
        if order is None or order.count(name) != 1:
            return self._many(c, [{**base, name: v} for v in values])
        at = order.index(name)
        row = [None if n == name else base[n] for n in order]     # KeyError: a missing one
        rows = []
        for v in values:
            row[at] = v
            rows.append(tuple(row))
        self.cur.executemany(c.sql, rows)
        return self.cur.rowcount

    def _many(self, c: Compiled, params: list[dict]) -> int:
        if c.defaults:
            params = [{**c.defaults, **p} for p in params]
        if c.positional is not None:
            order = c.positional
            self.cur.executemany(c.sql, [tuple(p[n] for n in order) for p in params])
        else:
            self.cur.executemany(c.sql, params)
        return self.cur.rowcount

    def _run(self, c: Compiled, params, wait: bool = True) -> Result:
        if c.defaults:
            params = {**c.defaults, **params}
        if c.positional is not None:
            args = tuple(params[n] for n in c.positional)
        else:
            args = params
        cur = self.cur
        cur.execute(c.sql, args)
        if not wait:
            return _NO_RESULT
        if self._pipe is not None:
            self._pipe.sync()
        if cur.description is not None:
            rows = cur.fetchall()
            return Result(rows, len(rows))
        return Result([], cur.rowcount)

    def execute_raw(self, sql: str, args=()) -> Result:
        """Run literal SQL (DDL, PRAGMA, SAVEPOINT) with driver parameters."""
        cur = self.cur
        cur.execute(sql, args)
        if self._pipe is not None:
            self._pipe.sync()
        if cur.description is not None:
            rows = cur.fetchall()
            return Result(rows, len(rows))
        return Result([], cur.rowcount)

    # Transaction control: explicit, so group commit can wrap units in savepoints.
    def begin(self) -> None:
        """Start a write transaction (SQLite takes the write lock at once)."""
        self.commit_sent = False
        if self.is_sqlite:
            self.cur.execute("BEGIN IMMEDIATE")

    def begin_read(self) -> None:
        """Start a read transaction (a consistent snapshot)."""
        self.commit_sent = False
        if self.is_sqlite:
            self.cur.execute("BEGIN")

    def commit(self) -> None:
        """Commit the transaction (C{commit_sent} tells afterwards that it was
        attempted: if the connection broke then, the outcome is unknown)."""
        self.commit_sent = True
        if self.is_sqlite:
            self.cur.execute("COMMIT")
        else:
            self.conn.commit()

    def rollback(self) -> None:
        """Roll the transaction back; never raises for an already-closed one."""
        try:
            if self.is_sqlite:
                if self.conn.in_transaction:
                    self.cur.execute("ROLLBACK")
            else:
                self.conn.rollback()
        except DBAPIError:
            pass
        except Exception:  # the DB-API's own error classes
            pass

    def savepoint(self, name: str) -> None:
        self.cur.execute("SAVEPOINT " + name)

    def release(self, name: str) -> None:
        self.cur.execute("RELEASE SAVEPOINT " + name)

    def rollback_to(self, name: str) -> None:
        self.cur.execute("ROLLBACK TO SAVEPOINT " + name)
        self.cur.execute("RELEASE SAVEPOINT " + name)

    def close(self) -> None:
        try:
            self.cur.close()
        finally:
            self.conn.close()

    def discard(self) -> None:
        """Close this connection for good (it broke): the pool opens a new one."""
        try:
            self.cur.close()
        except Exception:
            pass
        try:
            self.conn.invalidate()
        except Exception:
            pass
        try:
            self.conn.close()
        except Exception:
            pass


class Store:
    """The database: an engine, a cache of compiled statements, and connections.

    Thread-safe; each unit of work gets its own L{Tx}.
    """

    def __init__(self, url: str, *, pool_size: int = 8):
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self.dialect = self.engine.dialect
        self.is_sqlite = self.dialect.name == "sqlite"
        self._cache: dict = {}
        self._lock = threading.Lock()

    # -- compilation ------------------------------------------------------
    def compiled(self, stmt) -> Compiled:
        """Compile C{stmt} for this dialect once; later calls hit the cache."""
        c = self._cache.get(stmt)
        if c is None:
            c = self._compile(stmt)
            with self._lock:
                if len(self._cache) > 4096:   # ad-hoc statements: keep the cache bounded
                    self._cache.clear()
                self._cache[stmt] = c
        return c

    def compiled_insert(self, table, keys: tuple) -> Compiled:
        """Compile an INSERT of exactly C{keys} into C{table}, cached."""
        k = (table, keys)
        c = self._cache.get(k)
        if c is None:
            c = self._compile(insert(table), column_keys=list(keys))
            with self._lock:
                self._cache[k] = c
        return c

    def _compile(self, stmt, column_keys=None) -> Compiled:
        comp = stmt.compile(dialect=self.dialect, column_keys=column_keys,
                            compile_kwargs={"render_postcompile": True})
        defaults = {}
        for name, bind in comp.binds.items():
            if bind.value is not None or not bind.required:
                if not callable(bind.value):
                    defaults[name] = bind.value
        if any(getattr(b, "expanding", False) for b in comp.binds.values()):
            # a literal IN list is rendered as name_1, name_2 ... binds that
            # comp.binds does not hold; take their values from the compiler
            for name, value in comp.construct_params().items():
                if name not in comp.binds:
                    defaults[name] = value
        if comp.positiontup is not None:
            positional = tuple(comp.positiontup)
        else:
            positional = None
        if column_keys is not None:
            defaults = {}
        return Compiled(str(comp), positional, defaults)

    # -- connections ------------------------------------------------------
    def tx(self) -> Tx:
        """A new L{Tx} on a pooled connection; the caller closes it.

        @raise StoreError: the database cannot be reached.
        """
        try:
            return Tx(self, self.engine.raw_connection())
        except (DBAPIError, SQLAlchemyError, OSError, self.dialect.loaded_dbapi.Error) as e:
            # raw_connection() lets the driver's own connect error through unwrapped
            raise StoreError("cannot connect to database %s: %s"
                             % (_redact(self.url), first_line(e))) from e

    def run_sync(self, fn, *args, read_only: bool = False, **kwargs):
        """Run the unit of work C{fn(tx, *args, **kwargs)} on the calling thread.

        Commits when C{fn} returns, rolls back when it raises.

        @return: what C{fn} returned.
        """
        tx = self.tx()
        try:
            if read_only:
                tx.begin_read()
            else:
                tx.begin()
            result = fn(tx, *args, **kwargs)
            tx.commit()
            return result
        except BaseException:
            tx.rollback()
            raise
        finally:
            tx.close()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def first_line(e: BaseException) -> str:
    """The first line of a database error's text (the driver's own message when
    SQLAlchemy wraps one), or the exception's class name when it has no text."""
    text = str(getattr(e, "orig", None) or e)
    return text.strip().splitlines()[0] if text.strip() else type(e).__name__


def sqlite_path(url: str) -> str | None:
    """The file path of a SQLite URL, or None for other databases/memory."""
    from sqlalchemy.engine import make_url
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return os.path.abspath(u.database)
