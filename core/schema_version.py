"""The schema revision a node needs, checked at start without loading Alembic.

A running node only has to know that its database is at the revision its
code was written for.  Reading that takes one query of Alembic's own
C{alembic_version} table; Alembic itself (with Mako and Pygments, about
8 MB of a node's resident memory) is loaded only by the commands that
migrate (L{core.migrate}).  C{tests/unit/test_migrations.py} checks that
L{HEAD} is the newest revision of the migration scripts.
"""
from __future__ import annotations

import os

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from core.db import StoreError, first_line, sqlite_path

#: The newest migration (C{core/migrations/versions}); bumped with each new one.
HEAD = "0007"


def current(store) -> str | None:
    """The revision the database of C{store} is at, or None for an empty database.

    @raise StoreError: the database cannot be read.
    """
    try:
        with store.engine.connect() as conn:
            if not store.engine.dialect.has_table(conn, "alembic_version"):
                return None
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).fetchall()
    except (DBAPIError, OperationalError) as e:
        raise StoreError("cannot read the database: %s" % first_line(e)) from e
    if len(rows) > 1:
        raise StoreError("the database names %d schema revisions; run 'ivoms db upgrade'"
                         % len(rows))
    return rows[0][0] if rows else None


def require_current(store) -> None:
    """Fail unless the database is migrated to the code's head revision L{HEAD}.

    @raise StoreError: not initialised, or at another revision.
    """
    path = sqlite_path(store.url)
    if path is not None and not os.path.exists(path):
        raise StoreError("database file %s does not exist; run 'ivoms init' first" % path)
    rev = current(store)
    if rev is None:
        raise StoreError("the database is empty; run 'ivoms init' (or 'ivoms db upgrade') first")
    if rev != HEAD:
        raise StoreError("the database is at revision %s but this iVOMS needs %s; "
                         "run 'ivoms db upgrade'" % (rev, HEAD))
