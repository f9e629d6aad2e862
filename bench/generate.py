"""Benchmark: voucher generation against a raw-driver baseline in the same run.

Generates N vouchers (default 1,000,000) into a fresh store with iVOMS's
generator (random HRNs, AES-256-GCM, HMAC blind index, chunked commits),
then writes identically shaped precomputed rows into another fresh store with
the raw driver alone (stdlib sqlite3 executemany, or psycopg COPY), with the
same schema, indexes, chunk size and durability.  Prints vouchers/s for both,
their ratio and the generator's peak RSS.

    python bench/generate.py [--count N] [--backend sqlite|postgresql] [--no-baseline]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import BenchType, Instance, peak_rss_mb  # noqa: E402
from core.generation import COLUMNS  # noqa: E402


def run_ivoms(backend, count, chunk, workers):
    from core.generation import generate
    inst = Instance(backend)
    try:
        t0 = time.perf_counter()
        info = generate(inst.store, inst.cipher, BenchType, count, int(time.time() * 1000) + 86400_000 * 365,
                        requested_by="bench", serial_start=1_000_000_000, chunk_size=chunk,
                        workers=workers)
        dt = time.perf_counter() - t0
        assert info.count == count
        return dt, peak_rss_mb(), peak_rss_mb(children=True)
    finally:
        inst.close()


def run_baseline(backend, count, chunk):
    """Raw driver writes of precomputed rows of the same shape, same chunking
    (SQLite: executemany of tuples; PostgreSQL: COPY of preformatted text)."""
    inst = Instance(backend)
    try:
        from core.generation import start_batch
        batch_id, first = inst.store.run_sync(start_batch, BenchType, count, 2 ** 42, "bench", "d1",
                                              1_000_000_000, int(time.time() * 1000))
        rows = [(first + i, batch_id, "generated", 2 ** 42, "d1", os.urandom(42), os.urandom(32), 0)
                for i in range(count)]
        path = inst.url.split("///", 1)[1] if backend == "sqlite" else None
        t0 = time.perf_counter()
        if backend == "sqlite":
            import sqlite3
            db = sqlite3.connect(path, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            from core.generation import BULK_CACHE_KIB, BULK_CHECKPOINT_FRAMES
            db.execute("PRAGMA cache_size=-%d" % BULK_CACHE_KIB)    # the generator's own tuning
            db.execute("PRAGMA wal_autocheckpoint=%d" % BULK_CHECKPOINT_FRAMES)
            sql = "INSERT INTO voucher (%s) VALUES (%s)" % (", ".join(COLUMNS), ", ".join("?" * len(COLUMNS)))
            for i in range(0, count, chunk):
                db.execute("BEGIN IMMEDIATE")
                db.executemany(sql, rows[i:i + chunk])
                db.execute("COMMIT")
            db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            db.close()
        else:
            import psycopg

            from core.generation import copy_text
            t_fmt = time.perf_counter()
            blobs = [copy_text(rows[i:i + chunk]) for i in range(0, count, chunk)]
            t0 += time.perf_counter() - t_fmt      # formatting is precomputation too
            conn = psycopg.connect(inst.url.replace("postgresql+psycopg", "postgresql"))
            for blob in blobs:
                with conn.cursor() as cur:
                    with cur.copy("COPY voucher (%s) FROM STDIN" % ", ".join(COLUMNS)) as cp:
                        cp.write(blob)
                conn.commit()
            conn.close()
        return time.perf_counter() - t0
    finally:
        inst.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--chunk", type=int, default=20_000)
    ap.add_argument("--workers", type=int, default=1, help="encryption worker processes")
    ap.add_argument("--no-baseline", action="store_true")
    a = ap.parse_args()
    dt, rss, child_rss = run_ivoms(a.backend, a.count, a.chunk, a.workers)
    print("backend:            %s" % a.backend)
    print("vouchers:           %d" % a.count)
    print("ivoms generation:   %.2f s, %.0f vouchers/s" % (dt, a.count / dt))
    print("peak RSS:           %.0f MB (main), %.0f MB (largest worker)" % (rss, child_rss))
    if not a.no_baseline:
        base = run_baseline(a.backend, a.count, a.chunk)
        print("raw driver insert:  %.2f s, %.0f rows/s (precomputed rows)" % (base, a.count / base))
        print("ratio:              %.2f (ivoms rate / raw rate)" % (base / dt))


if __name__ == "__main__":
    main()
