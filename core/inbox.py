"""The request inbox: idempotency keys and the durable record of replies still due.

A channel may give an L{core.requests.ActivationRequest} an idempotency key
(its own words for "the same request again": an SMS's subscriber and text,
a SOAP client reference, a USSD dialogue or IVR call id) and, when it
answers later (SMS), where the reply goes.  The key is checked and written
in the activation's FIRST unit of work, so once that unit has committed the
request is durable: its transaction row exists and, for SMS, so does the
promise of a reply (C{reply_state = 'due'}), which survives a crash.

A request whose key is already there:

 - its transaction succeeded within the replay window: the original
   result is answered again (L{Replay}), nothing is activated;
 - its transaction is still pending: answered "pending" (L{Replay} with
   C{pending}), nothing is activated, the first request's reply will come;
 - otherwise (failed, or succeeded too long ago): it is a new activation
   and the key now points to the new transaction.

Keys are stored as an HMAC under the blind-index key: an SMS key contains
the HRN as typed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import and_, bindparam, func, select, update

from core.lock_order import delegated
from core.requests import ActivationResult
from core.results import ResultCode as R
from core.schema import request_inbox as inbox, txn

#: reply_state values: no deferred reply (the channel answered in its own
#: response), reply due, reply confirmed, reply given up (too old / retries spent).
NONE, DUE, SENT, EXPIRED = "none", "due", "sent", "expired"


@dataclass(frozen=True)
class Replay:
    """A request already seen: answer C{result} and activate nothing.

    @ivar pending: the first request's transaction is not concluded yet
        (its own reply is still to come).
    """

    result: ActivationResult
    pending: bool = False


class Entry(NamedTuple):
    """The inbox row a keyed request writes (hashed key, deferred-reply route).

    A named tuple: one is made per keyed request, on the reactor thread.
    """

    key: bytes
    channel: str
    source: str | None
    reply_to: str | None          # JSON, only for a channel that replies later
    language: str | None


def request_key(channel: str, ref, *parts) -> str | None:
    """A channel's idempotency key: its reference (client reference, dialogue or
    call id) and what the request says; None when the channel gave no reference."""
    if not ref:
        return None
    return "\0".join((channel, str(ref)) + tuple(str(p or "") for p in parts))


def entry_for(cipher, req, channel: str) -> Entry | None:
    """The inbox entry of C{req}, or None when it carries no idempotency key.

    @param cipher: a L{core.crypto.VoucherCipher} (its index key hashes the key).
    """
    key = getattr(req, "idempotency_key", None)
    if not key:
        return None
    reply = getattr(req, "reply", None) or {}
    to = reply.get("to")
    return Entry(cipher.request_digest(key), channel, reply.get("source") or req.source,
                 _encode_sorted(to) if to else None, reply.get("language"))


#: json.dumps(..., sort_keys=True) without building an encoder per call
_encode_sorted = json.JSONEncoder(sort_keys=True).encode


_TXN_COLS = (txn.c.id, txn.c.state, txn.c.result_code, txn.c.msisdn, txn.c.account, txn.c.serial,
             txn.c.amount, txn.c.currency, txn.c.validity_days, txn.c.finished_at, txn.c.detail)

_FIND = select(inbox.c.txn_id).where(inbox.c.key == bindparam("key"))
_TXN = select(*_TXN_COLS).where(txn.c.id == bindparam("id"))
_REUSE = update(inbox).where(inbox.c.key == bindparam("key")).values(
    txn_id=bindparam("txn_id"), received_at=bindparam("now"), source=bindparam("source"),
    reply_to=bindparam("reply_to"), language=bindparam("language"),
    reply_state=bindparam("reply_state"), attempts=0, replied_at=None)
_DUE_AGAIN = update(inbox).where(and_(inbox.c.key == bindparam("key"),
                                      inbox.c.reply_state != DUE)) \
    .values(reply_state=DUE, attempts=0, received_at=bindparam("now"))


def result_of(row) -> ActivationResult:
    """The L{ActivationResult} a transaction row (in L{_TXN_COLS} order) stands for."""
    (txn_id, state, code, msisdn, account, serial, amount, currency, days, _fin, detail) = row
    extra = {}
    if detail and state == "success":
        try:
            d = json.loads(detail)
            extra = {"balance": d.get("balance"), "new_expiry": d.get("new_expiry")}
        except (ValueError, AttributeError):
            extra = {}
    return ActivationResult(R(code) if state != "pending" else R.VOUCHER_PENDING, txn_id=txn_id,
                            msisdn=msisdn, account=account, serial=serial, amount=amount,
                            currency=currency, validity_days=days, **extra)


def keyed(tx, entry: Entry, txn_id: str, now: int, window_ms: int, unit, *args):
    """Run the activation's first C{unit(tx, *args)} unless C{entry}'s key was seen.

    One unit of work: records the key for C{txn_id} (with the deferred reply
    due, when the entry has a reply route) and runs C{unit}; or, when the key
    is already there, answers a L{Replay} or takes the key over for a new
    activation.

    @return: a L{Replay}, or what C{unit} returned.
    """
    state = DUE if entry.reply_to else NONE
    record = {"key": entry.key, "txn_id": txn_id, "channel": entry.channel, "received_at": now,
              "source": entry.source, "reply_to": entry.reply_to, "language": entry.language,
              "reply_state": state, "attempts": 0, "replied_at": None}
    if tx.insert_ignore(inbox, record):
        return unit(tx, *args)                      # a new key: the usual case, one statement
    prev = tx.execute(_FIND, {"key": entry.key}).first()
    if prev is None:                                # forgotten meanwhile by the housekeeping job
        tx.insert(inbox, record)
        return unit(tx, *args)
    row = tx.execute(_TXN, {"id": prev[0]}).first()
    if row is not None:
        t_state, finished = row[1], row[9]
        if t_state == "pending" or (t_state == "success" and finished is not None
                                    and now - finished <= window_ms):
            if entry.reply_to:
                tx.execute(_DUE_AGAIN, {"key": entry.key, "now": now}, wait=False)
            return Replay(result_of(row), pending=t_state == "pending")
    tx.execute(_REUSE, {"key": entry.key, "txn_id": txn_id, "now": now,
                        "source": entry.source, "reply_to": entry.reply_to,
                        "language": entry.language, "reply_state": state}, wait=False)
    return unit(tx, *args)


_SENT = update(inbox).where(and_(inbox.c.key == bindparam("key"), inbox.c.reply_state == DUE)) \
    .values(reply_state=SENT, replied_at=bindparam("now"))


def mark_sent(tx, keys: list, now: int) -> int:
    """The replies of the requests with these (hashed) keys were confirmed by the SMSC.

    By key, the table's primary key: no other index is needed to find them.
    @return: how many due replies this closed.
    """
    return tx.execute_each(_SENT, "key", keys, now=now)


_DUE = select(inbox.c.key, inbox.c.txn_id, inbox.c.source, inbox.c.reply_to, inbox.c.language,
              inbox.c.attempts, inbox.c.received_at, *_TXN_COLS[1:]) \
    .select_from(inbox.join(txn, txn.c.id == inbox.c.txn_id)) \
    .where(and_(inbox.c.reply_state == DUE, inbox.c.received_at < bindparam("before"))) \
    .order_by(inbox.c.received_at).limit(bindparam("limit"))


@dataclass(frozen=True)
class DueReply:
    """A reply promised and not confirmed: where it goes and the result it renders."""

    key: bytes
    txn_id: str
    source: str | None
    reply_to: dict
    language: str | None
    attempts: int
    received_at: int
    result: ActivationResult
    pending: bool


def due_replies(tx, before: int, limit: int = 200) -> list[DueReply]:
    """Replies due for requests received before C{before} (oldest first)."""
    out = []
    for r in tx.execute(_DUE, {"before": before, "limit": limit}).rows:
        key, txn_id, source, reply_to, language, attempts, received = r[:7]
        row = (txn_id,) + tuple(r[7:])
        out.append(DueReply(key, txn_id, source, json.loads(reply_to) if reply_to else {},
                            language, attempts, received, result_of(row), row[1] == "pending"))
    return out


_ATTEMPT = update(inbox).where(and_(inbox.c.key == bindparam("key"), inbox.c.reply_state == DUE)) \
    .values(attempts=inbox.c.attempts + 1)
_GIVE_UP = update(inbox).where(and_(inbox.c.key == bindparam("key"), inbox.c.reply_state == DUE)) \
    .values(reply_state=EXPIRED, replied_at=bindparam("now"))


def count_attempt(tx, key: bytes) -> None:
    """One more failed attempt at a due reply."""
    tx.execute(_ATTEMPT, {"key": key})


def give_up(tx, key: bytes, now: int) -> None:
    """A due reply is dropped (too old, or its retries are spent)."""
    tx.execute(_GIVE_UP, {"key": key, "now": now})


_FORGETTABLE = and_(inbox.c.reply_state != DUE, inbox.c.received_at < bindparam("before"))
_PURGE = inbox.delete().where(inbox.c.key.in_(
    select(inbox.c.key).where(_FORGETTABLE).limit(bindparam("limit")).scalar_subquery()))
_PURGE_COUNT = select(func.count()).select_from(inbox).where(_FORGETTABLE)


def purge(tx, before: int, limit: int) -> int:
    """Forget at most C{limit} keys received before C{before} whose reply is not due.

    A key whose reply is still due is kept whatever its age: the outbox owns it
    until the reply is confirmed or given up (then its state is no longer due).
    @return: how many keys were forgotten.
    """
    return tx.execute(_PURGE, {"before": before, "limit": limit}).rowcount


def count_purgeable(tx, before: int) -> int:
    """How many keys L{purge} would forget, without a limit."""
    return int(tx.execute(_PURGE_COUNT, {"before": before}).scalar())


keyed.lock_key = delegated(4)      # the activation's unit, after entry, txn id, now, window
