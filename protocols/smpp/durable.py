"""The SMS reply outbox: replies confirmed durably, and those due after a crash sent again.

An MO recharge is acknowledged only once its first unit of work committed
(L{core.inbox}): from then on its reply is I{due} in the database.  A reply
confirmed by the SMSC (deliver_sm_resp / submit_sm_resp ESME_ROK) is marked
sent.  A sweep every C{reply_retry_seconds} sends the replies still due that
no one in this process is sending (after a restart: all of them) once their
activation has concluded; each gets at most C{reply_max_attempts} tries, and
one older than C{reply_expiry_seconds} is dropped with a log line and
counted.
"""

from __future__ import annotations

from twisted.internet import defer, task
from twisted.logger import Logger

from core import inbox
from core.timeutil import now_ms
from protocols.smpp.pdus import DeliverSm
from protocols.smpp.protocol import send_all


class NoRouteYet(Exception):
    """No bind is up to carry a due reply now (retried without counting a try)."""


class SmsOutbox:
    """Tracks the replies under way and sweeps the ones due in the database.

    @ivar in_flight: transaction ids whose reply is being sent by this process.
    @ivar counters: C{sent}, C{resent} (by the sweep), C{retries}, C{expired}, C{given_up}.
    @ivar route: C{route(source) -> send or None}: how to reach the SMSC an
        MO came from (set by L{protocols.smpp.service.make_smpp_service}).
    """

    log = Logger()

    def __init__(self, runner, clock, *, retry_seconds: float = 5.0, max_attempts: int = 5,
                 expiry_seconds: float = 3600.0, render=None, busy=None,
                 mark_delay: float = 0.1) -> None:
        """
        @param runner: the L{core.units.UnitRunner} of the store.
        @param mark_delay: seconds the confirmations gather before one unit of
            work marks them sent (fewer commits under load; a crash in between
            only means those replies are sent once more, as after any crash).
        @param busy: C{busy(txn_id)}: whether that activation is still under
            way here (its own reply will follow; reconciliation may have
            concluded it meanwhile).  Default: never.
        @param render: C{render(result, language) -> parts}: the reply's PDU
            fields without addresses (the channel's templates and splitter).
        """
        self.runner = runner
        self.clock = clock
        self.retry_ms = int(retry_seconds * 1000)
        self.retry_seconds = retry_seconds
        self.max_attempts = max_attempts
        self.expiry_ms = int(expiry_seconds * 1000)
        self.render = render
        self.busy = busy or (lambda txn_id: False)
        self.mark_delay = mark_delay
        self._recent: dict[str, float] = {}    # confirmed here lately (mark may be in flight)
        self.route = lambda source: None
        self.in_flight: set[str] = set()
        self.counters = {"sent": 0, "resent": 0, "retries": 0, "expired": 0, "given_up": 0}
        self._loop: task.LoopingCall | None = None
        self._sweeping = False
        self._confirmed: list[str] = []     # marks waiting for the next unit of work

    # -- replies of this process ------------------------------------------

    def send(self, txn_id: str, key: bytes, parts: list[dict], send) -> defer.Deferred:
        """Send a due reply; on confirmation mark it sent in the database.

        @param key: the request's inbox key (L{core.inbox.Entry.key}): the mark
            finds the reply by it.
        @return: a Deferred firing when the SMSC confirmed every part (the
            mark is written in the background), or failing as C{send} did
            (the reply stays due for the sweep).
        """
        self.in_flight.add(txn_id)
        try:
            d = send(parts)
        except Exception:  # noqa: BLE001 - failed like a refused send: stays due
            d = defer.fail()

        def confirmed(_):
            self.in_flight.discard(txn_id)
            self.counters["sent"] += 1
            self._recent[txn_id] = self.clock.seconds()
            if not self._confirmed:
                self.clock.callLater(self.mark_delay, self._mark)
            self._confirmed.append(key)

        def failed(failure):
            self.in_flight.discard(txn_id)
            return failure
        d.addCallbacks(confirmed, failed)
        return d

    def _mark(self) -> None:
        """Mark the replies confirmed since the last turn sent, in one unit of work."""
        keys, self._confirmed = self._confirmed, []
        m = self.runner.submit(inbox.mark_sent, keys, now_ms(self.clock))
        m.addErrback(lambda f: self.log.failure(
            "{n} confirmed replies not marked sent; they may be sent again", f, n=len(keys)))

    # -- the sweep ----------------------------------------------------------

    def start(self) -> None:
        """Sweep now and every C{retry_seconds}."""
        if self._loop is None:
            self._loop = task.LoopingCall(self.sweep)
            self._loop.clock = self.clock
            self._loop.start(self.retry_seconds, now=True).addErrback(
                lambda f: self.log.failure("reply sweep stopped", f))

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def sweep(self) -> defer.Deferred:
        """Send (or drop) the replies due for longer than C{retry_seconds}.

        @return: a Deferred firing with how many were sent when all are done.
        """
        if self._sweeping:
            return defer.succeed(0)
        self._sweeping = True
        now = now_ms(self.clock)
        d = self.runner.submit(inbox.due_replies, now - self.retry_ms)
        d.addCallback(self._sweep_rows, now)

        def done(r):
            self._sweeping = False
            return r
        d.addBoth(done)
        d.addErrback(lambda f: (self.log.failure("reply sweep failed", f), 0)[1])
        return d

    def _sweep_rows(self, rows, now) -> defer.Deferred:
        work = []
        horizon = self.clock.seconds() - 2 * self.retry_seconds - 5
        self._recent = {t: at for t, at in self._recent.items() if at > horizon}
        for due in rows:
            if due.txn_id in self.in_flight or due.pending or due.txn_id in self._recent \
                    or self.busy(due.txn_id):
                continue
            if now - due.received_at > self.expiry_ms:
                self.counters["expired"] += 1
                self.log.warn("reply of transaction {txn_id} to {msisdn} dropped: due since "
                              "{age}s, past the expiry", txn_id=due.txn_id,
                              msisdn=due.result.msisdn, age=(now - due.received_at) // 1000)
                work.append(self.runner.submit(inbox.give_up, due.key, now))
                continue
            if due.attempts >= self.max_attempts:
                self.counters["given_up"] += 1
                self.log.warn("reply of transaction {txn_id} to {msisdn} dropped after "
                              "{n} attempts", txn_id=due.txn_id, msisdn=due.result.msisdn,
                              n=due.attempts)
                work.append(self.runner.submit(inbox.give_up, due.key, now))
                continue
            work.append(self._resend(due))
        d = defer.DeferredList(work, consumeErrors=True)
        d.addCallback(lambda results: sum(1 for ok, v in results if ok and v is True))
        return d

    def _resend(self, due: inbox.DueReply) -> defer.Deferred:
        send = self.route(due.source or "")
        if send is None:
            return defer.succeed(False)
        parts = [dict(due.reply_to, **p) for p in self.render(due.result, due.language)]
        d = self.send(due.txn_id, due.key, parts, send)

        def sent(_):
            self.counters["resent"] += 1
            return True

        def failed(failure):
            self.counters["retries"] += 1
            self.log.warn("due reply of transaction {txn_id} not delivered ({why}); "
                          "will retry", txn_id=due.txn_id, why=failure.getErrorMessage())
            c = self.runner.submit(inbox.count_attempt, due.key)
            c.addCallback(lambda _: False)
            return c
        d.addCallbacks(sent, failed)
        return d


def make_route(server_factory, connectors):
    """C{route(source)}: the send callable for replies to MOs from C{source}.

    C{"smpp:<system_id>"}: a receiver bind of that account of the listener;
    C{"smsc:<name>"}: that SMSC connector.  None when nothing is bound now.
    """
    def route(source: str):
        kind, _, name = source.partition(":")
        if kind == "smpp" and server_factory is not None:
            account = server_factory.accounts.get(name)
            target = account.receiver() if account is not None else None
            if target is None:
                return None
            return lambda parts: send_all(target, [DeliverSm.build(**f) for f in parts],
                                          "deliver_sm")
        if kind == "smsc":
            connector = connectors.get(name)
            if connector is None or not any(s.can_send_mt for s in connector.sessions):
                return None
            return connector.send_reply
        return None
    return route
