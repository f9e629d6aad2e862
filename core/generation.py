"""Batch generation: serials, random HRNs, encryption, chunked atomic-per-batch writes (DESIGN §3).

A batch is written in chunks, each its own commit, so memory stays flat and
a running node's writer is never held for long.  Vouchers of a batch are
C{generated} (never usable) until the batch is C{ready}, and only vouchers
of a ready batch can be made available; a generation that fails or is
killed leaves a C{failed} batch whose vouchers are deleted (at once, or by
L{recover_interrupted} on the next start).
"""
from __future__ import annotations

import json
import os
import socket
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, delete, select, update

from core.crypto import VoucherCipher, random_hrns
from core.schema import batch, counter, voucher, voucher_type
from core.timeutil import now_ms as _now_ms

COLUMNS = ("serial", "batch_id", "state", "expires_at", "key_id", "hrn_ct", "blind_index", "exported")
STALE_MS = 10 * 60 * 1000


class GenerationError(Exception):
    """A generation request is invalid or could not complete; nothing usable was left."""


@dataclass(frozen=True)
class BatchInfo:
    """What a finished generation produced."""

    batch_id: int
    first_serial: int
    last_serial: int
    count: int


def owner_tag() -> str:
    """C{host:pid} of this process, recorded on the batches it generates."""
    return "%s:%d" % (socket.gethostname(), os.getpid())


# -- rows -----------------------------------------------------------------
def make_rows(cipher: VoucherCipher, first_serial: int, count: int, length: int,
              batch_id: int, expires_at: int) -> list[tuple]:
    """Rows (in COLUMNS order) for C{count} vouchers from C{first_serial}."""
    hrns = random_hrns(count, length)
    enc, bi, kid = cipher.encrypt, cipher.blind_index, cipher.active_key_id
    state = "generated"
    return [(s, batch_id, state, expires_at, kid, enc(s, h), bi(h), 0)
            for s, h in zip(range(first_serial, first_serial + count), hrns)]


def copy_text(rows) -> bytes:
    """C{rows} in PostgreSQL COPY text format (bytea as hex), ready to stream."""
    return "".join(["%d\t%d\t%s\t%d\t%s\t\\\\x%s\t\\\\x%s\t%d\n" % (
        r[0], r[1], r[2], r[3], r[4], r[5].hex(), r[6].hex(), r[7]) for r in rows]).encode("ascii")


class Packed:
    """A chunk as two byte strings of fixed-width fields (ciphertexts, blind indexes):
    cheap to pass between processes, and turned into rows one at a time while
    they are written, so no list of row tuples ever builds up in memory."""

    __slots__ = ("first", "count", "batch_id", "expires_at", "key_id", "cts", "bis", "width")

    def __init__(self, rows):
        self.first, self.count = rows[0][0], len(rows)
        self.batch_id, self.expires_at, self.key_id = rows[0][1], rows[0][3], rows[0][4]
        self.width = len(rows[0][5])
        self.cts = b"".join(r[5] for r in rows)
        self.bis = b"".join(r[6] for r in rows)

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        w, cts, bis = self.width, self.cts, self.bis
        b, exp, kid = self.batch_id, self.expires_at, self.key_id
        for i in range(self.count):
            yield (self.first + i, b, "generated", exp, kid, cts[i * w:(i + 1) * w],
                   bis[i * 32:(i + 1) * 32], 0)


def make_chunk(cipher, first_serial, count, length, batch_id, expires_at, as_copy: bool):
    """A chunk of rows: L{Packed} for SQLite's executemany, or COPY text when C{as_copy}."""
    rows = make_rows(cipher, first_serial, count, length, batch_id, expires_at)
    return copy_text(rows) if as_copy else Packed(rows)


_worker_cipher: VoucherCipher | None = None


def _worker_init(ring, parent_pid: int | None = None) -> None:
    global _worker_cipher
    _worker_cipher = VoucherCipher(ring)
    if parent_pid is not None:
        import threading
        threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()


def _exit_with_parent(parent_pid: int) -> None:
    """End this worker once its generator is gone (a killed parent would
    otherwise leave it blocked on the call queue forever)."""
    import time
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(1)


def _worker_chunk(first_serial, count, length, batch_id, expires_at, as_copy):
    return make_chunk(_worker_cipher, first_serial, count, length, batch_id, expires_at, as_copy)


# -- units of work ----------------------------------------------------------
_ALLOC = update(counter).where(counter.c.name == "serial") \
    .values(value=counter.c.value + bindparam("n")).returning(counter.c.value)


def allocate_serials(tx, n: int, serial_start: int) -> int:
    """Reserve C{n} consecutive serials; return the first.  Unique across nodes."""
    row = tx.execute(_ALLOC, {"n": n}).first()
    if row is None:
        tx.insert(counter, {"name": "serial", "value": serial_start - 1 + n})
        return serial_start
    return row[0] - n + 1


def _upsert_type(tx, vt, now: int) -> None:
    values = {"name": vt.name, "face_value": vt.face_value, "currency": vt.currency,
              "validity_days": vt.validity_days, "account_validity_days": vt.account_validity_days,
              "hrn_length": vt.hrn_length, "loyalty": json.dumps(vt.loyalty, sort_keys=True),
              "updated_at": now}
    n = tx.execute(update(voucher_type).where(voucher_type.c.code == vt.code).values(**values)).rowcount
    if n == 0:
        tx.insert(voucher_type, {"code": vt.code, **values})


def start_batch(tx, vt, count, expires_at, requested_by, key_id, serial_start, now):
    """Record a new batch of C{count} vouchers of type C{vt} in state C{generating}.

    The voucher type row is written (or refreshed) and C{count} serials are
    allocated; the vouchers themselves are inserted by the caller.

    @return: (batch id, first serial).
    """
    _upsert_type(tx, vt, now)
    first = allocate_serials(tx, count, serial_start)
    tx.insert(batch, {
        "type_code": vt.code, "count": count, "first_serial": first,
        "last_serial": first + count - 1, "expires_at": expires_at,
        "face_value": vt.face_value, "currency": vt.currency,
        "account_validity_days": vt.account_validity_days,
        "loyalty": json.dumps(vt.loyalty, sort_keys=True), "hrn_length": vt.hrn_length,
        "key_id": key_id, "state": "generating", "requested_by": requested_by,
        "owner": owner_tag(), "heartbeat_at": now, "created_at": now, "generated": 0,
    })
    batch_id = tx.execute(select(batch.c.id).where(batch.c.first_serial == first)).scalar()
    return batch_id, first


def insert_chunk(tx, rows, batch_id, done, now) -> None:
    """Write one chunk: executemany on SQLite, COPY on PostgreSQL (rows as
    tuples, or already in COPY text form)."""
    if tx.is_sqlite:
        tx.cur.executemany("INSERT INTO voucher (%s) VALUES (%s)"
                           % (", ".join(COLUMNS), ", ".join("?" * len(COLUMNS))), rows)
    else:
        with tx.cur.copy("COPY voucher (%s) FROM STDIN" % ", ".join(COLUMNS)) as cp:
            if isinstance(rows, bytes):
                cp.write(rows)
            else:
                for r in rows:
                    cp.write_row(r)
    tx.execute(update(batch).where(batch.c.id == batch_id)
               .values(generated=done, heartbeat_at=now))


def _existing_indexes(tx, indexes) -> set:
    found = set()
    for i in range(0, len(indexes), 500):
        part = indexes[i:i + 500]
        found.update(r[0] for r in tx.execute(
            select(voucher.c.blind_index).where(voucher.c.blind_index.in_(part))).rows)
    return {bytes(b) for b in found}


def _dedupe(tx, cipher, rows, length) -> list[tuple]:
    """Replace rows whose HRN collides with a stored voucher or another row."""
    while True:
        taken = _existing_indexes(tx, [r[6] for r in rows])
        seen: set = set()
        bad = []
        for i, r in enumerate(rows):
            if r[6] in taken or r[6] in seen:
                bad.append(i)
            seen.add(r[6])
        if not bad:
            return rows
        for i in bad:
            s, b, st, exp, _, _, _, ex = rows[i]
            fresh = make_rows(cipher, s, 1, length, b, exp)[0]
            rows[i] = fresh


def _finish(tx, batch_id, now) -> int:
    return tx.execute(update(batch).where(and_(batch.c.id == batch_id, batch.c.state == "generating"))
                      .values(state="ready", finished_at=now, heartbeat_at=now)).rowcount


def fail_batch(tx, batch_id: int, message: str, now: int) -> int:
    """Mark C{batch_id} failed and delete its vouchers; return how many were deleted."""
    tx.execute(update(batch).where(batch.c.id == batch_id)
               .values(state="failed", finished_at=now, message=message[:1000]))
    from core.vouchers import in_batch
    return tx.execute(delete(voucher).where(and_(in_batch(batch_id),
                                                 voucher.c.state == "generated"))).rowcount


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_interrupted(tx, now: int) -> list[int]:
    """Fail every C{generating} batch whose generator is gone.

    A generator is gone when it ran on this host and its process no longer
    exists, or when its heartbeat is older than ten minutes.

    @return: the ids of the batches marked failed.
    """
    host = socket.gethostname()
    failed = []
    for bid, owner, hb in tx.execute(select(batch.c.id, batch.c.owner, batch.c.heartbeat_at)
                                     .where(batch.c.state == "generating")).rows:
        h, _, pid = owner.rpartition(":")
        gone = (h == host and pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid))) \
            or now - hb > STALE_MS
        if gone:
            fail_batch(tx, bid, "generation interrupted (generator %s is gone)" % owner, now)
            failed.append(bid)
    return failed


# -- driver -----------------------------------------------------------------
def generate(store, cipher: VoucherCipher, vt, count: int, expires_at: int, *,
             requested_by: str, serial_start: int, chunk_size: int = 20000,
             workers: int = 0, progress=None, clock=None) -> BatchInfo:
    """Generate C{count} vouchers of type C{vt} into C{store} (blocking).

    @param progress: called with (done, count) after every chunk.
    @param workers: extra processes encrypting the next chunk while this one
        is written (0 encrypts inline).
    @return: the batch id and serial range.
    @raise GenerationError: the batch failed; it is marked C{failed} and
        none of its vouchers remain.
    """
    if count <= 0:
        raise GenerationError("count must be at least 1, got %d" % count)
    now = _now_ms(clock)
    if expires_at <= now:
        raise GenerationError("the expiry date is in the past")
    batch_id, first = store.run_sync(start_batch, vt, count, expires_at, requested_by,
                                     cipher.active_key_id, serial_start, now)
    pool = None
    try:
        as_copy = not store.is_sqlite
        starts = list(range(first, first + count, chunk_size))
        sizes = [min(chunk_size, first + count - s) for s in starts]
        if workers > 0 and len(starts) > 1:
            import multiprocessing
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_worker_init, initargs=(cipher.ring, os.getpid()))
            futures = [pool.submit(_worker_chunk, s, n, vt.hrn_length, batch_id, expires_at, as_copy)
                       for s, n in zip(starts[:workers + 1], sizes[:workers + 1])]
            nxt = len(futures)

            def chunks():
                nonlocal nxt
                for i in range(len(starts)):
                    rows = futures[i].result()
                    futures[i] = None
                    if nxt < len(starts):
                        futures.append(pool.submit(_worker_chunk, starts[nxt], sizes[nxt],
                                                   vt.hrn_length, batch_id, expires_at, as_copy))
                        nxt += 1
                    yield rows
        else:
            def chunks():
                for s, n in zip(starts, sizes):
                    yield make_chunk(cipher, s, n, vt.hrn_length, batch_id, expires_at, as_copy)
        done = 0
        tx = store.tx()
        tune_bulk_writer(tx)
        try:
            for start, size, rows in zip(starts, sizes, chunks()):
                done += size
                t = _now_ms(clock)
                try:
                    tx.begin()
                    insert_chunk(tx, rows, batch_id, done, t)
                    tx.commit()
                except Exception as e:
                    tx.rollback()
                    if not is_unique_violation(e):
                        raise
                    tx.begin()
                    if isinstance(rows, bytes):    # COPY text: draw the chunk again
                        rows = make_rows(cipher, start, size, vt.hrn_length, batch_id, expires_at)
                    elif isinstance(rows, Packed):
                        rows = list(rows)
                    rows = _dedupe(tx, cipher, rows, vt.hrn_length)
                    insert_chunk(tx, rows, batch_id, done, t)
                    tx.commit()
                if progress is not None:
                    progress(done, count)
        finally:
            end_bulk_writer(tx)
            tx.close()
        if store.run_sync(_finish, batch_id, _now_ms(clock)) != 1:
            raise GenerationError("batch %d was marked failed while it was generating" % batch_id)
        if pool is not None:
            pool.shutdown(wait=True)
            pool = None
    except BaseException as e:
        try:
            store.run_sync(fail_batch, batch_id, "generation failed: %s" % (str(e) or type(e).__name__),
                           _now_ms(clock))
        except Exception:
            pass  # recover_interrupted will finish the job
        if isinstance(e, GenerationError):
            raise
        if isinstance(e, Exception):
            raise GenerationError("batch %d failed: %s" % (batch_id, e)) from e
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
    return BatchInfo(batch_id, first, first + count - 1, count)


#: Page cache of the generating connection (KiB, as SQLite's negative cache_size).
BULK_CACHE_KIB = 131072
#: WAL frames the generating connection lets accumulate before it checkpoints
#: (instead of SQLite's 1,000): few checkpoints, yet a bounded WAL and wal-index.
BULK_CHECKPOINT_FRAMES = 100_000


def tune_bulk_writer(tx) -> None:
    """SQLite settings for a connection writing a whole batch: a larger page cache
    (random blind-index inserts stay in memory) and rarer checkpoints (the WAL and
    its index stay bounded at any count).  Durability is unchanged: every chunk's
    commit is still synced (synchronous=FULL)."""
    if tx.is_sqlite:
        tx.execute_raw("PRAGMA cache_size=-%d" % BULK_CACHE_KIB)
        tx.execute_raw("PRAGMA wal_autocheckpoint=%d" % BULK_CHECKPOINT_FRAMES)


def end_bulk_writer(tx) -> None:
    """Checkpoint what the batch wrote and give the pooled connection its defaults back."""
    if tx.is_sqlite:
        try:
            tx.execute_raw("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            tx.execute_raw("PRAGMA wal_autocheckpoint=1000")
            tx.execute_raw("PRAGMA cache_size=-2000")


def is_unique_violation(e: Exception) -> bool:
    """Whether C{e} is a unique-constraint violation (SQLite or PostgreSQL)."""
    name = type(e).__name__
    text = str(e).lower()
    return name in ("IntegrityError", "UniqueViolation") or "unique" in text
