"""Helpers shared by the benchmarks: throw-away instances, PostgreSQL databases, RSS."""
from __future__ import annotations

import os
import resource
import shutil
import tempfile
import uuid

PG_ADMIN_URL = os.environ.get("IVOMS_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident set size of this process (or its reaped children), in MB."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024.0


class Instance:
    """A fresh key file and an empty migrated database (SQLite file or PostgreSQL database)."""

    def __init__(self, backend: str = "sqlite"):
        from core import keys, migrate
        from core.crypto import VoucherCipher
        from core.db import Store
        self.dir = tempfile.mkdtemp(prefix="ivoms-bench-")
        self.ring = keys.init(os.path.join(self.dir, "keys.json"))
        self.cipher = VoucherCipher(self.ring)
        self.pg_name = None
        if backend == "sqlite":
            self.url = "sqlite:///" + os.path.join(self.dir, "ivoms.db")
        else:
            self.pg_name = "ivoms_bench_" + uuid.uuid4().hex[:8]
            _pg_admin("CREATE DATABASE " + self.pg_name)
            self.url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + self.pg_name
        self.store = Store(self.url)
        migrate.upgrade(self.store)

    def close(self):
        self.store.dispose()
        if self.pg_name:
            _pg_admin("DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.pg_name)
        shutil.rmtree(self.dir, ignore_errors=True)


def _pg_admin(sql: str) -> None:
    from sqlalchemy import create_engine, text
    eng = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(sql))
    eng.dispose()


def percentile(sorted_values, p: float) -> float:
    """The ``p``-th percentile (0-100) of an ascending list."""
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * (len(sorted_values) - 1)))))
    return sorted_values[k]
