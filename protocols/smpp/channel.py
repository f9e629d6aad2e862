"""The SMS channel logic shared by both modes: MO -> ActivationRequest -> MT reply (DESIGN §5).

An MO (submit_sm, deliver_sm or data_sm) is accepted at once; the
activation runs in the background and its result goes back to the
subscriber as one or more MT messages through the C{send} callable the
mode supplies (deliver_sm on a server-mode bind, submit_sm in ESME mode).
HRNs are never logged: the MSISDN and the message id are.

With an outbox (L{protocols.smpp.durable.SmsOutbox}) a recharge MO is
acknowledged only once durable: the status is a Deferred that fires when
the activation's first unit of work (which records the MO and its reply as
due, L{core.inbox}) has committed, or with a temporary error when it could
not be, so that the SMSC sends it again.  The reply then goes through the
outbox, which survives a crash.
"""

from __future__ import annotations

import itertools

from twisted.internet import defer
from twisted.logger import Logger

from core.requests import ActivationRequest, ActivationResult, Channel
from core.results import ResultCode

from protocols.common.results import result_code
from protocols.smpp.config import ChannelSettings
from protocols.smpp.errors import (
    ESME_RINVESMCLASS, ESME_ROK, ESME_RTHROTTLED, ESME_RX_P_APPN, ESME_RX_T_APPN)
from protocols.smpp.grammar import Grammar, Recharge
from protocols.smpp.pdus import DeliverSm
from protocols.smpp.reassembly import Reassembler
from protocols.smpp.replies import Replies
from protocols.smpp.text import (
    IEI_CONCAT_16, UdhError, UnsupportedCoding, decode_short_message,
    split_for_sms, user_message)

#: esm_class bits 2-5 (§5.2.12): anything but "default message type" is an
#: SMSC delivery receipt, an intermediate notification or an acknowledgement.
ESM_MESSAGE_TYPE_MASK = 0x3C


def is_receipt(pdu) -> bool:
    """True for a delivery receipt or other SMSC notification (not subscriber text)."""
    return bool(pdu.esm_class & ESM_MESSAGE_TYPE_MASK) or \
        pdu.tlv("receipted_message_id") is not None


class SmsChannel:
    """Turns MO messages into activations and activation results into replies."""

    log = Logger()

    def __init__(self, activation, grammar: Grammar, replies: Replies, *, clock,
                 settings: ChannelSettings = ChannelSettings(), outbox=None) -> None:
        """
        @param activation: an object with C{activate(ActivationRequest)}
            returning a Deferred L{ActivationResult} (the core's
            L{core.activation.ActivationService}).
        @param clock: an C{IReactorTime} for reassembly timeouts.
        @param outbox: a L{protocols.smpp.durable.SmsOutbox}: acknowledge
            recharges once durable and send their replies through it.
        """
        self.activation = activation
        self.grammar = grammar
        self.replies = replies
        self.clock = clock
        self.settings = settings
        self.outbox = outbox
        self.reassembler = Reassembler(clock, timeout=settings.reassembly_timeout,
                                       max_pending=settings.max_pending_parts)
        self.in_flight = 0
        self._concat_refs = itertools.count(1)
        self._busy = 0                  # activations and replies under way
        self._drained: list[defer.Deferred] = []
        self.counters = {"mo": 0, "receipts": 0, "help": 0, "activations": 0,
                         "replies": 0, "reply_failures": 0, "refused": 0}

    def accept(self, pdu, *, origin, ref: str, source: str, send):
        """Take one MO message PDU.

        @param origin: identifies the sender for reassembly (the account or
            SMSC name): parts of one message may come on different binds.
        @param ref: the message id, for the transaction row and the logs.
        @param source: where it entered (e.g. C{"smpp:<system_id>"}).
        @param send: C{send(parts) -> Deferred}; C{parts} is a list of dicts
            of message-PDU fields (addresses, esm_class, data_coding,
            short_message), one per MT part.
        @return: C{(command_status, follow_up)}: answer the MO with the
            status now; then call C{follow_up()} if it is not C{None} (it
            starts the activation, so that the response goes out before any
            reply).
        """
        if is_receipt(pdu):
            self.counters["receipts"] += 1
            self.log.debug("delivery receipt {ref} ignored", ref=ref)
            return ESME_ROK, None
        if self.in_flight >= self.settings.max_in_flight:
            self.counters["refused"] += 1
            return self._temporary(pdu), None
        msisdn = _msisdn(pdu)
        try:
            um = user_message(pdu)
        except UdhError as e:
            self.log.warn("MO {ref} from {msisdn}: bad user data header ({why})",
                          ref=ref, msisdn=msisdn, why=str(e))
            return (ESME_RX_P_APPN if isinstance(pdu, DeliverSm) else ESME_RINVESMCLASS), None
        data_coding, payload = um.data_coding, um.payload
        if um.concat is not None and um.concat.total > 1:
            try:
                whole = self.reassembler.add((origin, pdu.source_addr, pdu.destination_addr),
                                             _concat_kind(um), um.concat, data_coding, payload)
            except OverflowError:
                self.counters["refused"] += 1
                return self._temporary(pdu), None
            if whole is None:
                return ESME_ROK, None
            data_coding, payload = whole.data_coding, whole.payload
        try:
            text = decode_short_message(data_coding, payload,
                                        default_alphabet=self.settings.default_alphabet)
        except UnsupportedCoding:
            self.log.info("MO {ref} from {msisdn}: data_coding 0x{dc:02X} is not text; ignored",
                          ref=ref, msisdn=msisdn, dc=data_coding)
            return ESME_ROK, None
        if not pdu.source_addr:
            self.log.warn("MO {ref} has no source address; nobody to answer", ref=ref)
            return ESME_ROK, None
        self.counters["mo"] += 1
        reply_to = self._reply_address(pdu)
        command = self.grammar.parse(text)
        if isinstance(command, Recharge):
            if self.outbox is not None:
                return self._accept_durably(pdu, msisdn, command, text, ref, source, reply_to,
                                            send)
            req = ActivationRequest(msisdn=msisdn, hrn=command.hrn, channel=Channel.SMS,
                                    channel_ref=ref, beneficiary=command.beneficiary,
                                    source=source)
            return ESME_ROK, lambda: self._activate(req, command.language, reply_to, send)
        self.counters["help"] += 1
        self.log.info("MO {ref} from {msisdn}: not understood; sending help",
                      ref=ref, msisdn=msisdn)
        help_text = self.replies.help(command.language,
                                      self.grammar.keywords_for(command.language))
        return ESME_ROK, lambda: self._reply(help_text, reply_to, send, ref, msisdn)

    def _accept_durably(self, pdu, msisdn: str, command: Recharge, text: str, ref: str,
                        source: str, reply_to: dict, send):
        """Start the activation now; answer the MO when it is durable (see module doc)."""
        key = "sms\0%s\0%s" % (msisdn, text.strip())
        language = command.language
        req = ActivationRequest(msisdn=msisdn, hrn=command.hrn, channel=Channel.SMS,
                                channel_ref=ref, beneficiary=command.beneficiary, source=source,
                                idempotency_key=key,
                                reply={"to": reply_to, "language": language, "source": source})
        status = defer.Deferred()
        gate = _Gate()                     # opens once the response is written
        kept = []

        def durable(ok):
            kept.append(ok)
            status.callback(ESME_ROK if ok else self._temporary(pdu))
        self._activate(req, language, reply_to, send, durable=durable,
                       gate=gate, kept=kept)
        return status, gate.open

    @staticmethod
    def _temporary(pdu) -> int:
        """The 'busy, retry later' status for this PDU's direction."""
        return ESME_RX_T_APPN if isinstance(pdu, DeliverSm) else ESME_RTHROTTLED

    def _reply_address(self, pdu) -> dict:
        s = self.settings
        return {
            "source_addr": s.reply_source_addr or pdu.destination_addr,
            "source_addr_ton": s.reply_source_ton if s.reply_source_ton >= 0 else pdu.dest_addr_ton,
            "source_addr_npi": s.reply_source_npi if s.reply_source_npi >= 0 else pdu.dest_addr_npi,
            "destination_addr": pdu.source_addr,
            "dest_addr_ton": pdu.source_addr_ton,
            "dest_addr_npi": pdu.source_addr_npi,
        }

    def _activate(self, req: ActivationRequest, language: str, reply_to: dict, send, *,
                  durable=None, gate=None, kept=None) -> None:
        self.in_flight += 1
        self.counters["activations"] += 1
        self._busy += 1
        try:
            d = (self.activation.activate(req) if durable is None
                 else self.activation.activate(req, durable=durable))
        except Exception:  # noqa: BLE001 - answered as a system error below
            d = defer.fail()

        def failed(failure):
            self.log.failure("activation of MO {ref} from {msisdn} failed", failure,
                             ref=req.channel_ref, msisdn=req.msisdn)
            answered(ActivationResult(ResultCode.SYSTEM_ERROR))

        def answered(result):
            self.in_flight -= 1
            try:
                if result.code != ResultCode.SUCCESS:
                    # a success is a transaction row (channel_ref = the MO's
                    # message id); one log line per MO would swamp the log
                    self.log.info("MO {ref} from {msisdn}: {result} (txn {txn_id})",
                                  ref=req.channel_ref, msisdn=req.msisdn,
                                  result=result_code(result.code).name, txn_id=result.txn_id)
                text = self.replies.render(result, language, msisdn=req.msisdn)
                if gate is None:
                    self._reply(text, reply_to, send, req.channel_ref, req.msisdn)
                elif kept and kept[0] and result.replay != "pending" \
                        and result.txn_id not in self.outbox.in_flight:
                    # after the MO's response; a pending repeat's reply comes from its first
                    self._busy += 1
                    gate.then(self._reply_due, text, reply_to, send, req, result)
            except Exception:  # noqa: BLE001 - a bug must not leave the MO counted as busy
                self.log.failure("reply to MO {ref} from {msisdn} not sent",
                                 ref=req.channel_ref, msisdn=req.msisdn)
                self.counters["reply_failures"] += 1
            finally:
                self._done()
        d.addCallbacks(answered, failed)

    def parts(self, text: str) -> list[dict]:
        """The MT parts (PDU fields but the addresses) that carry C{text}."""
        ref_byte = next(self._concat_refs) % 256
        return [dict(esm_class=esm_class, data_coding=coding, short_message=sm)
                for esm_class, sm, coding in split_for_sms(text, ref_byte)]

    def render_parts(self, result, language: str | None) -> list[dict]:
        """The MT parts of the reply to C{result} (the outbox's renderer)."""
        language = language or self.replies.default_language
        return self.parts(self.replies.render(result, language, msisdn=result.msisdn or ""))

    def _reply_due(self, text, reply_to, send, req, result) -> None:
        """Send a durable reply through the outbox (busy counted by the caller)."""
        self._busy -= 1
        key = self.activation.request_key(req.idempotency_key)
        self._reply(text, reply_to,
                    lambda parts: self.outbox.send(result.txn_id, key, parts, send),
                    req.channel_ref, req.msisdn)

    def _reply(self, text: str, reply_to: dict, send, ref: str, msisdn: str) -> None:
        """Send C{text} to the subscriber in the background (counted until answered)."""
        parts = [dict(reply_to, **p) for p in self.parts(text)]
        self._busy += 1
        try:
            d = send(parts)
        except Exception:  # noqa: BLE001 - counted and logged as not delivered
            d = defer.fail()

        def sent(_):
            self.counters["replies"] += 1
            self._done()

        def not_sent(failure):
            self.counters["reply_failures"] += 1
            self.log.warn("reply to MO {ref} for {msisdn} not delivered: {why}",
                          ref=ref, msisdn=msisdn, why=failure.getErrorMessage())
            self._done()
        d.addCallbacks(sent, not_sent)

    def _done(self) -> None:
        self._busy -= 1
        if not self._busy and self._drained:
            waiters, self._drained = self._drained, []
            for w in waiters:
                w.callback(None)

    def drain(self) -> defer.Deferred:
        """A Deferred firing when every activation and reply under way is done."""
        if not self._busy:
            return defer.succeed(None)
        d = defer.Deferred()
        self._drained.append(d)
        return d

    def stop(self) -> None:
        """Drop reassembly state and its timers."""
        self.reassembler.clear()


class _Gate:
    """Holds back a durable MO's reply until the MO's response is written."""

    __slots__ = ("opened", "_waiting")

    def __init__(self) -> None:
        self.opened = False
        self._waiting = None

    def then(self, fn, *args) -> None:
        """Call C{fn(*args)} now if the gate is open, else once it opens."""
        if self.opened:
            fn(*args)
        else:
            self._waiting = (fn, args)

    def open(self) -> None:
        self.opened = True
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            waiting[0](*waiting[1])


def _msisdn(pdu) -> str:
    """The subscriber number as the core should see it: '+' for an international TON."""
    addr = pdu.source_addr
    if pdu.source_addr_ton == 1 and addr and not addr.startswith("+"):
        return "+" + addr
    return addr


def _concat_kind(um) -> str:
    if um.udh is not None and um.udh.concat is not None:
        return "udh16" if any(iei == IEI_CONCAT_16 for iei, _ in um.udh.elements) else "udh8"
    return "sar"
