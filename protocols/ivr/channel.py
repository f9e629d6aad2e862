"""The IVR channel: renders the dialogue's documents and turns an activation POST
into an L{core.requests.ActivationRequest} and its result into a result document."""
from __future__ import annotations

from twisted.internet import defer
from twisted.logger import Logger

from core.inbox import request_key
from core.requests import ActivationRequest, Channel
from core.timeutil import now_ms

from protocols.ivr.collect import collect_document
from protocols.ivr.config import IvrSettings
from protocols.ivr.context import Context, Urls
from protocols.ivr.entry import entry_document
from protocols.ivr.page import error_document
from protocols.ivr.params import parse_activate, parse_page
from protocols.ivr.result import result_document
from protocols.ivr.vxml import serialise


class IvrChannel:
    """Documents of the VoiceXML dialogue, and activation through the core.

    Every method returns a serialised VoiceXML 2.1 document; the HTTP layer
    (L{protocols.ivr.resource}) only moves bytes.
    """

    log = Logger()

    def __init__(self, activation, settings: IvrSettings, hrn_lengths, *, clock) -> None:
        """
        @param activation: the core's activation service (C{activate(req)} returning
            a Deferred firing with an L{core.requests.ActivationResult}).
        @param hrn_lengths: HRN lengths of the configured voucher types.
        @param clock: an C{IReactorTime} (for "try again in N minutes").
        @raise ValueError: C{hrn_lengths} is empty.
        """
        self.activation = activation
        self.settings = settings
        self.ctx = Context.build(settings, hrn_lengths)
        self.clock = clock

    def entry(self, urls: Urls) -> bytes:
        """The entry document (language menu, or collection in the only language)."""
        return serialise(entry_document(self.ctx, urls))

    def collect(self, urls: Urls, args: dict) -> bytes:
        """The collection document for C{?lang=..&attempt=..}.

        @raise L{protocols.ivr.errors.BadRequest}: malformed parameters.
        """
        page = parse_page(args, self.settings.max_param_chars)
        lang = self.settings.language(page.lang)
        attempt = min(page.attempt, self.settings.max_attempts)
        return serialise(collect_document(self.ctx, lang, urls, attempt))

    def error(self, urls: Urls, reason: str, lang: str | None = None) -> bytes:
        """The error document (spoken apology) for a bad request."""
        return serialise(error_document(self.ctx, self.settings.language(lang), reason))

    def activate(self, urls: Urls, args: dict, source: str | None) -> defer.Deferred:
        """Activate the voucher the POST carries.

        @param source: where the request came from (C{"ivr:<address>"}).
        @raise L{protocols.ivr.errors.BadRequest}: before anything reaches the core.
        @return: a Deferred firing with C{(result, document bytes)}.
        """
        s = self.settings
        p = parse_activate(args, ani_parameter=s.ani_parameter, lengths=self.ctx.lengths,
                           max_chars=s.max_param_chars)
        lang = s.language(p.lang)
        req = ActivationRequest(msisdn=p.msisdn, hrn=p.hrn, channel=Channel.IVR,
                                channel_ref=p.call_ref, source=source,
                                idempotency_key=request_key("ivr", p.call_ref, source, p.msisdn,
                                                            p.hrn))
        d = self.activation.activate(req)

        def answered(result):
            self.log.info("IVR call {ref} from {msisdn}: {result} (txn {txn_id}, voucher {attempt})",
                          ref=p.call_ref or "-", msisdn=result.msisdn or p.msisdn,
                          result=result.name, txn_id=result.txn_id or "-", attempt=p.attempt)
            doc = result_document(self.ctx, lang, urls, result, attempt=p.attempt,
                                  now_ms=now_ms(self.clock))
            return result, serialise(doc)
        d.addCallback(answered)
        return d
