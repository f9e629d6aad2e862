"""USSD dialogues: the direct C{*123*HRN#} code and the interactive recharge menu.

A L{DialogueManager} keeps one L{Session} per gateway dialogue id (each peer's ids
apart from the others': two gateways may use the same id), from the
subscriber's first string (begin) through the menu prompts (continue) to the result,
forgetting it when the dialogue ends, is released by the network, or waits longer than
the configured timeout on the injected clock. It knows texts, not wire formats: the
bridge (L{protocols.ussd.bridge}) turns each L{Reply} into MAP or TCAP.

Strings the subscriber can send at the start of a dialogue (C{123} is any configured
service code)::

    *123#                  the menu: 1 recharge my number, 2 another number, 3 help
    *123*1#  *123*2#  ...  a menu choice straight away
    *123*HRN#              recharge my number with voucher HRN
    *123*HRN*MSISDN#       recharge MSISDN (when other numbers are allowed)

Subscriber text is never logged: it may hold an HRN.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from twisted.internet import defer
from twisted.logger import Logger

from core.inbox import request_key
from core.normalise import normalise_hrn
from core.requests import ActivationRequest, ActivationResult, Channel
from core.results import ResultCode

#: HRN lengths accepted at a prompt when the voucher types are not known (DESIGN §3).
ANY_HRN_LENGTH = frozenset(range(8, 21))


class State(enum.Enum):
    """What a session waits for from the subscriber."""

    MENU = "menu"
    HRN_SELF = "hrn_self"
    NUMBER = "number"
    HRN_OTHER = "hrn_other"


@dataclass(frozen=True)
class Reply:
    """What to send the subscriber: C{text}, and whether the dialogue C{ends} with it.

    C{result} is the activation's result when one ran.
    """

    text: str
    ends: bool
    result: ActivationResult | None = None


class DialogueError(Exception):
    """A request that cannot be served in the dialogue's state."""


class UnknownDialogue(DialogueError):
    """No open dialogue has this id (never begun, ended, released or timed out)."""


class DialogueBusy(DialogueError):
    """The dialogue's previous answer is still being worked out (an activation runs)."""


class TooManyDialogues(DialogueError):
    """The configured number of open dialogues is reached (in total, or for one peer)."""


@dataclass(eq=False)
class Session:
    """One open dialogue.

    C{transport} belongs to the bridge (TCAP transaction ids, invoke ids); the
    manager only keeps it with the session.
    """

    dialogue_id: str
    msisdn: str
    language: str
    service_code: str
    source: str | None = None
    state: State = State.MENU
    beneficiary: str | None = None
    attempts: int = 0
    busy: bool = False
    timer: object = None
    transport: dict = field(default_factory=dict)


def parse_service_string(text: str):
    """Split C{*123*a*b#} into C{("123", ["a", "b"])}; C{None} if not of that form."""
    text = (text or "").strip()
    if len(text) < 3 or text[0] != "*" or text[-1] != "#":
        return None
    code, *args = text[1:-1].split("*")
    if not code.isdigit() or not code.isascii():
        return None
    return code, args


class DialogueManager:
    """Runs USSD dialogues against the activation service.

    C{begin} and C{continue_} raise L{DialogueError} subclasses synchronously
    when the request cannot be served at all; otherwise they return a Deferred that
    fires with a L{Reply} and never fails.
    """

    log = Logger()

    def __init__(self, activation, *, clock, texts, service_codes=None, timeout=120.0,
                 max_sessions=10000, max_sessions_per_peer=0, max_attempts=3,
                 allow_other_number=True, hrn_lengths=None, msisdn_check=None):
        """
        @param activation: an object with C{activate(ActivationRequest) ->
            Deferred[ActivationResult]} (the core's ActivationService).
        @param clock: an C{IReactorTime} for the dialogue timeout.
        @param texts: a L{protocols.ussd.replies.Texts}.
        @param service_codes: service code -> language (C{""}: not fixed).
        @param max_sessions_per_peer: open dialogues one source (a USSD
            gateway peer) may hold at once; 0: C{max_sessions}.
        @param hrn_lengths: digits an HRN may have (the voucher types' lengths);
            C{None}: any length 8..20.
        @param msisdn_check: C{f(number) -> bool} telling whether a number typed at
            the "another number" prompt is acceptable; C{None}: 6..15 digits.
        """
        self.activation = activation
        self.clock = clock
        self.texts = texts
        self.service_codes = dict(service_codes or {"123": ""})
        self.timeout = timeout
        self.max_sessions = max_sessions
        self.max_sessions_per_peer = max_sessions_per_peer or max_sessions
        self.max_attempts = max_attempts
        self.allow_other_number = allow_other_number
        self.hrn_lengths = frozenset(hrn_lengths or ANY_HRN_LENGTH)
        self.msisdn_check = msisdn_check or _plain_number
        #: (source, dialogue id) -> its open session
        self.sessions: dict[tuple, Session] = {}
        #: source -> open dialogues it holds (a source with none has no key)
        self.open_by_source: dict[str | None, int] = {}
        self._full_logged: set = set()

    @classmethod
    def from_settings(cls, activation, settings, *, clock, texts, hrn_lengths=None,
                      msisdn_check=None) -> "DialogueManager":
        """Build from L{protocols.ussd.config.UssdSettings}."""
        d = settings.dialogue
        return cls(activation, clock=clock, texts=texts,
                   service_codes=settings.service_codes, timeout=d.timeout,
                   max_sessions=d.max_sessions,
                   max_sessions_per_peer=d.per_peer_limit(len(settings.peer_list())),
                   max_attempts=d.max_attempts,
                   allow_other_number=d.allow_other_number, hrn_lengths=hrn_lengths,
                   msisdn_check=msisdn_check)

    # -- the dialogue operations --------------------------------------------------

    def get(self, dialogue_id: str, source=None) -> Session | None:
        """The open session C{dialogue_id} of C{source}, or C{None}."""
        return self.sessions.get((source, dialogue_id))

    def begin(self, dialogue_id: str, msisdn: str, text: str, *, language=None,
              dcs_language=None, source=None, transport=None) -> defer.Deferred:
        """Start a dialogue with the subscriber's first string (e.g. C{*123#}).

        @param msisdn: the subscriber's number as the network gave it.
        @param language: language the gateway asks for, if any; it wins over the
            service code's language, which wins over C{dcs_language} (the one the
            USSD string's data coding announces), then the default.
        @param source: where the request came from, for the core's counters.
        @param transport: the bridge's state to keep with the session.
        @return: Deferred firing with a L{Reply}.
        @raise TooManyDialogues: when the open dialogues are at the limit, in
            total or for C{source}.
        """
        old = self.sessions.get((source, dialogue_id))
        if old is not None:
            self.log.warn("USSD dialogue {dialogue_id} begun again; the old one is dropped",
                          dialogue_id=dialogue_id)
            self._forget(old)
        if len(self.sessions) >= self.max_sessions:
            raise TooManyDialogues("%d dialogues open" % len(self.sessions))
        if self.open_by_source.get(source, 0) >= self.max_sessions_per_peer:
            self._peer_full(source)
            raise TooManyDialogues("%d dialogues open for %s" % (
                self.max_sessions_per_peer, source))
        parsed = parse_service_string(text)
        code = parsed[0] if parsed else None
        fixed = self.service_codes.get(code, "") if code else ""
        session = Session(
            dialogue_id=dialogue_id, msisdn=msisdn,
            language=self.texts.choose_language(language, fixed, dcs_language),
            service_code=code if code in self.service_codes else self._first_code(),
            source=source, transport=transport if transport is not None else {})
        if parsed is None:
            return defer.succeed(self._end(session, "BAD_REQUEST"))
        if code not in self.service_codes:
            return defer.succeed(self._end(session, "UNKNOWN_SERVICE"))
        args = parsed[1]
        if not args:
            return defer.succeed(self._ask(session, State.MENU, self._menu_key()))
        if any(not a.strip() for a in args) or len(args) > 2:
            return defer.succeed(self._end(session, "BAD_REQUEST"))
        if len(args) == 1 and len(args[0].strip()) <= 2:
            self._open(session)
            return self._menu_choice(session, args[0].strip(), retry=False)
        if len(args) == 2:
            if not self.allow_other_number:
                return defer.succeed(self._end(session, "OTHER_NUMBER_DISABLED"))
            session.beneficiary = args[1].strip()
        return self._activate(session, args[0].strip())

    def continue_(self, dialogue_id: str, text: str, source=None) -> defer.Deferred:
        """Feed the subscriber's answer to the open dialogue C{dialogue_id} of C{source}.

        @return: Deferred firing with a L{Reply}.
        @raise UnknownDialogue: no such open dialogue (e.g. it timed out).
        @raise DialogueBusy: the previous answer is still being worked out.
        """
        session = self.sessions.get((source, dialogue_id))
        if session is None:
            raise UnknownDialogue(dialogue_id)
        if session.busy:
            raise DialogueBusy(dialogue_id)
        self._cancel_timer(session)
        answer = (text or "").strip()
        if session.state is State.MENU:
            return self._menu_choice(session, answer, retry=True)
        if session.state is State.NUMBER:
            if not self.msisdn_check(answer):
                return defer.succeed(self._retry(session, "INVALID_NUMBER_INPUT",
                                                 "PROMPT_BENEFICIARY"))
            session.beneficiary = answer
            return defer.succeed(self._ask(session, State.HRN_OTHER, "PROMPT_HRN_OTHER"))
        prompt = "PROMPT_HRN" if session.state is State.HRN_SELF else "PROMPT_HRN_OTHER"
        if normalise_hrn(answer, self.hrn_lengths) is None:
            return defer.succeed(self._retry(session, "INVALID_HRN_INPUT", prompt))
        return self._activate(session, answer)

    def release(self, dialogue_id: str, why: str = "released", source=None) -> bool:
        """Forget C{source}'s C{dialogue_id} because the network ended or aborted it.

        An activation already running completes (the core consumes a voucher exactly
        once whatever happens here); only its text can no longer be shown.

        @return: whether such a dialogue was open.
        """
        session = self.sessions.get((source, dialogue_id))
        if session is None:
            return False
        self.log.info("USSD dialogue {dialogue_id} {why} by the network",
                      dialogue_id=dialogue_id, why=why)
        self._forget(session)
        return True

    def attach(self, session: Session) -> None:
        """Hold C{session} (loaded from a shared store) as an open dialogue, replacing any."""
        self.detach(session.dialogue_id, session.source)
        self._open(session)

    def detach(self, dialogue_id: str, source=None) -> Session | None:
        """Let go of C{source}'s open dialogue C{dialogue_id} (its state goes to a shared store).

        @return: its session, or None when none is open.
        """
        session = self.sessions.get((source, dialogue_id))
        if session is not None:
            self._forget(session)
        return session

    def expired_text(self, language=None) -> str:
        """The text answering a continue for a dialogue that is no longer open."""
        return self.texts.text("SESSION_EXPIRED", self.texts.choose_language(language),
                               service_code=self._first_code())

    def stop(self) -> None:
        """Forget every open dialogue and cancel their timers (service stop)."""
        for session in list(self.sessions.values()):
            self._forget(session)

    # -- steps --------------------------------------------------------------------

    def _menu_choice(self, session, choice, *, retry):
        if choice == "1":
            return defer.succeed(self._ask(session, State.HRN_SELF, "PROMPT_HRN"))
        if choice == "2" and self.allow_other_number:
            return defer.succeed(self._ask(session, State.NUMBER, "PROMPT_BENEFICIARY"))
        if choice == "3":
            return defer.succeed(self._end(session, "HELP"))
        if not retry:
            return defer.succeed(self._end(session, "BAD_REQUEST"))
        return defer.succeed(self._retry(session, "INVALID_CHOICE", self._menu_key()))

    def _activate(self, session, hrn):
        self._open(session)
        session.busy = True
        request = ActivationRequest(
            msisdn=session.msisdn, hrn=hrn, channel=Channel.USSD,
            channel_ref=session.dialogue_id, beneficiary=session.beneficiary,
            source=session.source,
            idempotency_key=request_key("ussd", session.dialogue_id, session.source, session.msisdn,
                                        hrn))
        d = defer.maybeDeferred(self.activation.activate, request)
        d.addErrback(self._activation_failed, session)
        d.addCallback(self._activated, session)
        return d

    def _activation_failed(self, failure, session):
        self.log.failure("USSD dialogue {dialogue_id}: activation failed", failure,
                         dialogue_id=session.dialogue_id)
        return ActivationResult(ResultCode.SYSTEM_ERROR)

    def _activated(self, result, session):
        self.log.info("USSD dialogue {dialogue_id}: msisdn {msisdn} result {code}",
                      dialogue_id=session.dialogue_id, msisdn=session.msisdn,
                      code=int(result.code))
        text = self.texts.result(result, session.language,
                                 beneficiary=session.beneficiary or "",
                                 service_code=session.service_code)
        if self.sessions.get(_key(session)) is session:
            self._forget(session)
        return Reply(text, True, result)

    # -- session bookkeeping ------------------------------------------------------

    def _fields(self, session):
        return {"service_code": session.service_code, "msisdn": session.msisdn,
                "beneficiary": session.beneficiary or "", "hrn_digits": self._hrn_digits()}

    def _ask(self, session, state, key):
        if session.state is not state:
            session.attempts = 0
        session.state = state
        self._open(session)
        self._arm(session)
        return Reply(self.texts.text(key, session.language, **self._fields(session)), False)

    def _retry(self, session, note, prompt):
        session.attempts += 1
        if session.attempts >= self.max_attempts:
            return self._end(session, "TOO_MANY_ATTEMPTS")
        self._arm(session)
        text = self.texts.joined(note, prompt, session.language, **self._fields(session))
        return Reply(text, False)

    def _end(self, session, key):
        text = self.texts.text(key, session.language, **self._fields(session))
        if self.sessions.get(_key(session)) is session:
            self._forget(session)
        return Reply(text, True)

    def _open(self, session):
        if self.sessions.get(_key(session)) is not session:
            self.sessions[_key(session)] = session
            self.open_by_source[session.source] = self.open_by_source.get(session.source, 0) + 1

    def _drop(self, session):
        """Remove the open C{session} from the table and its source's count."""
        del self.sessions[_key(session)]
        left = self.open_by_source.get(session.source, 1) - 1
        if left > 0:
            self.open_by_source[session.source] = left
        else:
            self.open_by_source.pop(session.source, None)
        self._full_logged.discard(session.source)

    def _peer_full(self, source):
        """Log, once per filling, that C{source} holds its whole share of dialogues."""
        if source not in self._full_logged:
            self._full_logged.add(source)
            self.log.warn("USSD peer {source} holds {count} open dialogues, its limit: "
                          "its new dialogues are refused with ussd-Busy", source=source,
                          count=self.max_sessions_per_peer)

    def _arm(self, session):
        self._cancel_timer(session)
        session.timer = self.clock.callLater(self.timeout, self._expire, session)

    def _expire(self, session):
        session.timer = None
        if self.sessions.get(_key(session)) is session and not session.busy:
            self.log.info("USSD dialogue {dialogue_id} timed out after {timeout}s",
                          dialogue_id=session.dialogue_id, timeout=self.timeout)
            self._drop(session)

    def _forget(self, session):
        self._cancel_timer(session)
        if self.sessions.get(_key(session)) is session:
            self._drop(session)

    @staticmethod
    def _cancel_timer(session):
        if session.timer is not None and session.timer.active():
            session.timer.cancel()
        session.timer = None

    def _menu_key(self):
        return "MENU" if self.allow_other_number else "MENU_SELF_ONLY"

    def _first_code(self):
        return next(iter(self.service_codes))

    def _hrn_digits(self):
        lengths = sorted(self.hrn_lengths)
        if len(lengths) <= 3:
            return "/".join(str(n) for n in lengths)
        return "%d-%d" % (lengths[0], lengths[-1])


def _key(session: Session) -> tuple:
    """Where C{session} is kept: its peer's dialogue ids are apart from the others'."""
    return session.source, session.dialogue_id


def _plain_number(text: str) -> bool:
    digits = text[1:] if text.startswith("+") else text
    return digits.isdigit() and digits.isascii() and 6 <= len(digits) <= 15
