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
            pg_admin("CREATE DATABASE " + self.pg_name)
            self.url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + self.pg_name
        self.store = Store(self.url)
        migrate.upgrade(self.store)

    def close(self):
        self.store.dispose()
        if self.pg_name:
            pg_admin("DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.pg_name)
        shutil.rmtree(self.dir, ignore_errors=True)


def pg_admin(sql: str) -> None:
    """Run C{sql} on the PostgreSQL server's admin database (autocommit)."""
    from sqlalchemy import create_engine, text
    eng = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(sql))
    eng.dispose()


def cpu_seconds(pid: int | None = None) -> float:
    """User plus system CPU seconds used so far by this process (all its threads),
    or by process C{pid} (from C{/proc/<pid>/stat})."""
    if pid is None:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(sorted_values, p: float) -> float:
    """The C{p}-th percentile (0-100) of an ascending list."""
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * (len(sorted_values) - 1)))))
    return sorted_values[k]


class BenchType:
    """The voucher type every benchmark generates (14-digit HRNs, 10.00 EUR)."""

    code, name, face_value, currency = "B10", "Bench 10", 1000, "EUR"
    validity_days, account_validity_days, hrn_length, loyalty = 365, 30, 14, {}


class NoBars:
    """Fraud settings that never bar (benchmarks activate from many numbers at once)."""

    window_seconds = 86400
    reset_on_success = True
    tiers = ()
    source_failures_per_minute = 10 ** 9    # nor throttle a source


def stock(inst, count: int, *, serial_start: int = 1_000_000_000, expires_in_days: int = 365,
          workers: int = 0) -> list[str]:
    """Generate C{count} vouchers, make them available, and return their HRNs."""
    import time

    from core.generation import generate
    from core.vouchers import Selection, set_state
    now = int(time.time() * 1000)
    info = generate(inst.store, inst.cipher, BenchType, count, now + 86_400_000 * expires_in_days,
                    requested_by="bench", serial_start=serial_start, chunk_size=20_000,
                    workers=workers)
    inst.store.run_sync(set_state, Selection.of_batch(info.batch_id), "available",
                        actor="bench", reason=None, now=now)
    return batch_hrns(inst.store, inst.cipher, info.batch_id)


def batch_hrns(store, cipher, batch_id: int) -> list[str]:
    """The HRNs of every voucher of batch C{batch_id}, decrypted with C{cipher}."""
    from sqlalchemy import select

    from core.schema import voucher
    rows = store.run_sync(lambda tx: tx.execute(
        select(voucher.c.serial, voucher.c.key_id, voucher.c.hrn_ct)
        .where(voucher.c.batch_id == batch_id)).rows)
    return [cipher.decrypt(s, k, bytes(ct)) for s, k, ct in rows]


def credit_check(store) -> str:
    """One line saying whether every used voucher in C{store} is credited exactly
    once with a successful transaction, and none is pending ("OK" or "BROKEN")."""
    from sqlalchemy import select

    from core.schema import ledger_entry, txn, voucher

    def unit(tx):
        used = {r[0] for r in tx.execute(select(voucher.c.txn_id)
                                         .where(voucher.c.state == "used")).rows}
        credited = [r[0] for r in tx.execute(select(ledger_entry.c.idempotency_key)
                                             .where(ledger_entry.c.outcome == "credited")).rows]
        ok = {r[0] for r in tx.execute(select(txn.c.id).where(txn.c.state == "success")).rows}
        pending = len(tx.execute(select(txn.c.id).where(txn.c.state == "pending")).rows)
        return used, credited, ok, pending
    used, credited, ok, pending = store.run_sync(unit)
    good = used == set(credited) == ok and len(credited) == len(set(credited)) and not pending
    return ("consistency: %s (%d used vouchers, %d credits, %d successful transactions, "
            "%d pending)" % ("OK" if good else "BROKEN", len(used), len(credited), len(ok), pending))


def raw_fill(inst, n: int, *, state: str, expires_at: int, serial_start: int = 5_000_000_000) -> None:
    """Add C{n} realistic voucher rows (random ciphertext and blind index) with the raw
    driver, fast: filler for "large store" runs, not usable vouchers."""
    import time

    from core.generation import COLUMNS, start_batch, copy_text
    now = int(time.time() * 1000)
    batch_id, first = inst.store.run_sync(start_batch, BenchType, n, max(expires_at, now + 1),
                                          "bench", "d1", serial_start, now)
    tx = inst.store.tx()
    try:
        for lo in range(0, n, 50_000):
            rows = [(first + lo + i, batch_id, state, expires_at, "d1", os.urandom(42),
                     os.urandom(32), 0) for i in range(min(50_000, n - lo))]
            tx.begin()
            if tx.is_sqlite:
                tx.cur.executemany("INSERT INTO voucher (%s) VALUES (%s)"
                                   % (", ".join(COLUMNS), ", ".join("?" * len(COLUMNS))), rows)
            else:
                with tx.cur.copy("COPY voucher (%s) FROM STDIN" % ", ".join(COLUMNS)) as cp:
                    cp.write(copy_text(rows))
            tx.commit()
    finally:
        tx.close()


def writer_process(store) -> bool:
    """Whether the benchmark's units run in a writer process: as in a node with
    C{writer = "auto"} (SQLite: yes), unless C{IVOMS_BENCH_WRITER=threads}
    (or C{process}) says otherwise."""
    choice = os.environ.get("IVOMS_BENCH_WRITER", "auto")
    if choice not in ("auto", "threads", "process"):
        raise SystemExit("IVOMS_BENCH_WRITER: auto, threads or process, not %r" % (choice,))
    return store.is_sqlite and choice != "threads"


def make_runner(store, reactor, *, workers: int = 1, max_batch: int = 512):
    """The benchmark's unit runner (not started): a writer process where
    L{writer_process} says so, else C{workers} writer threads."""
    if writer_process(store):
        from core.unit_process import ProcessUnitRunner
        return ProcessUnitRunner(store, reactor, max_batch=max_batch)
    from core.units import UnitRunner
    return UnitRunner(store, reactor, workers=workers, max_batch=max_batch)


def started(runner):
    """A Deferred firing once the benchmark is in the state of a started node: its
    writer process is up (when it has one) and the heap is settled as the node
    settles it (L{gateway.lifecycle.settle_heap})."""
    from twisted.internet import defer

    from gateway.lifecycle import settle_heap

    async def go():
        if hasattr(runner, "ready"):
            await runner.ready()
        settle_heap()
    return defer.ensureDeferred(go())


def writer_cpu(runner) -> float:
    """CPU seconds the runner's writer process has used so far (0.0 without one)."""
    pid = getattr(runner, "pid", None)
    if pid is None:
        return 0.0
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def writer_label(runner) -> str:
    """How the benchmark's units ran, for its report."""
    return "writer process" if getattr(runner, "pid", None) is not None else "writer thread"


def build_core(inst, reactor, *, billing=None, workers: int = 1, in_transaction: bool = True,
               fraud_settings=None):
    """(runner, service): a started UnitRunner and an ActivationService over C{inst}
    with the embedded ledger (or C{billing}), never barring unless given
    C{fraud_settings}."""
    from billing.ledger import EmbeddedLedger
    from core.activation import ActivationService
    from core.normalise import MsisdnRules
    runner = make_runner(inst.store, reactor, workers=workers)
    runner.start()
    service = ActivationService(
        runner, billing or EmbeddedLedger(runner, clock=reactor, in_transaction=in_transaction),
        inst.cipher, clock=reactor, msisdn_rules=MsisdnRules("381", "0", ["00", "+"], [11, 12]),
        hrn_lengths={14}, fraud_settings=fraud_settings or NoBars(), billing_timeout=30.0)
    return runner, service


def run_on_reactor(main) -> None:
    """Run the coroutine function C{main()} under the global reactor and stop it
    afterwards; a failure is printed and exits with status 1."""
    from twisted.internet import defer, reactor
    failed = []

    def go():
        d = defer.ensureDeferred(main())
        d.addErrback(lambda f: (f.printTraceback(), failed.append(f)))
        d.addBoth(lambda _: reactor.stop())
    reactor.callWhenRunning(go)
    reactor.run(installSignalHandlers=False)
    if failed:
        raise SystemExit(1)


def run_generator(cmd: list[str], timeout: float):
    """Run a load-generator process off the reactor; a Deferred firing with the JSON
    object its last output line holds (its stderr tail is echoed)."""
    import json
    import subprocess
    import sys

    from twisted.internet import threads

    def go():
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if done.stderr:
            sys.stderr.write(done.stderr[-4000:])
        if done.returncode != 0:
            raise RuntimeError("generator failed: %s" % (done.stderr[-2000:],))
        return json.loads(done.stdout.strip().splitlines()[-1])
    return threads.deferToThread(go)


def measure_core(inst, reactor, hrns: list[str], slots: int, request):
    """The core-only reference phase of a channel benchmark: activate C{hrns}
    straight on a fresh ActivationService over C{inst}, C{slots} at once.

    @param request: C{request(slot, i, hrn)} -> the slot's i-th ActivationRequest.
    @return: a Deferred firing with {rate, p50, p99, codes, seconds}.
    """
    import time

    from twisted.internet import defer

    async def go():
        runner, service = build_core(inst, reactor)
        await started(runner)
        queues = [hrns[s::slots] for s in range(slots)]
        latencies, codes = [], {}

        async def worker(slot):
            for i, hrn in enumerate(queues[slot]):
                t0 = time.perf_counter()
                result = await service.activate(request(slot, i, hrn))
                latencies.append(time.perf_counter() - t0)
                codes[result.name] = codes.get(result.name, 0) + 1
        t0, w0 = time.perf_counter(), writer_cpu(runner)
        await defer.gatherResults([defer.ensureDeferred(worker(s)) for s in range(slots)])
        dt = time.perf_counter() - t0
        spent = writer_cpu(runner) - w0
        label = writer_label(runner)
        await runner.stop()
        latencies.sort()
        return dict(rate=len(latencies) / dt, p50=percentile(latencies, 50),
                    p99=percentile(latencies, 99), codes=codes, seconds=dt,
                    batch=runner.units / max(1, runner.batches), writer_cpu=spent,
                    writer=label)
    return defer.ensureDeferred(go())


def drive_clients(reactor, port, count: int, make_protocol, protocols: list,
                  timeout: float) -> None:
    """Load-generator side: connect C{count} clients to 127.0.0.1:C{port}
    (C{make_protocol(i)}, each appended to C{protocols} as it connects) and run
    the reactor until a client stops it, or for C{timeout} seconds.

    @param port: a port, or a list of ports: client C{i} connects to
        C{port[i % len(port)]} (load spread over several nodes)."""
    ports = port if isinstance(port, (list, tuple)) else [port]
    from twisted.internet.protocol import ClientFactory

    class Factory(ClientFactory):
        def __init__(self, index):
            self.index = index

        def buildProtocol(self, addr):
            p = make_protocol(self.index)
            protocols.append(p)
            return p
    for i in range(count):
        reactor.connectTCP("127.0.0.1", ports[i % len(ports)], Factory(i))
    reactor.callLater(timeout, reactor.stop)
    reactor.run()


def load_summary(latencies: list[float], state: dict) -> dict:
    """{rate, p50, p99, seconds} of a load generator's run: C{state} holds the
    perf_counter times C{t0} (start) and C{t1} (last answer, if it came)."""
    import time
    lat = sorted(latencies)
    dt = state.get("t1", time.perf_counter()) - (state["t0"] or time.perf_counter())
    return dict(rate=len(lat) / dt if dt > 0 else 0.0, p50=percentile(lat, 50),
                p99=percentile(lat, 99), seconds=dt)


def parse_bench_args(ap):
    """C{ap.parse_args()} with the hidden options a channel benchmark passes to
    its own load-generator process: C{--generator}, C{--port}, C{--hrn-file}."""
    import argparse
    ap.add_argument("--generator", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--hrn-file", help=argparse.SUPPRESS)
    return ap.parse_args()
