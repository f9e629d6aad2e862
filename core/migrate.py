"""Schema migrations with Alembic (C{ivoms db upgrade}; C{ivoms init} runs it)."""
from __future__ import annotations

import os

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy.exc import DBAPIError, OperationalError

from core import schema_version
from core.db import StoreError, first_line

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations")


def alembic_config() -> AlembicConfig:
    """An Alembic config pointing at iVOMS's migration scripts."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", HERE)
    return cfg


def upgrade(store, revision: str = "head") -> str:
    """Bring the database of C{store} to C{revision}.

    @return: the revision now current.
    @raise StoreError: the database cannot be reached or migrated.
    """
    cfg = alembic_config()
    try:
        with store.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
        return current(store)
    except (DBAPIError, OperationalError) as e:
        raise StoreError("cannot migrate the database: %s" % first_line(e)) from e


#: The revision the database is at, or None for an empty database (one reader
#: of C{alembic_version} for the commands and the node's start-up check alike).
current = schema_version.current


def head() -> str:
    """The newest revision the code knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


# A node's start-up check lives where Alembic is not needed.
require_current = schema_version.require_current
