"""USSD dialogues that any node of a cluster can continue (docs/cluster.md).

With an L{core.interfaces.IDialogueStore} in the database, each request of a
dialogue is one step: the node claims the dialogue (the store refuses a
second claim while a step runs, on any node), loads its state into the
L{protocols.ussd.dialogue.DialogueManager}, lets the bridge serve the
request, and stores the new state (or deletes the dialogue when it ended)
with the version it claimed.  Between steps no node holds the dialogue in
memory, so consecutive requests may reach different nodes.
"""
from __future__ import annotations

import hashlib

from twisted.internet import defer
from twisted.logger import Logger

from core.shared_state import DialogueHeld
from protocols.ussd.dialogue import DialogueBusy, Session, State


def encode_state(session: Session) -> dict:
    """The JSON state of C{session} (TCAP transaction ids as hex)."""
    return {"msisdn": session.msisdn, "language": session.language,
            "service_code": session.service_code, "source": session.source,
            "state": session.state.value, "beneficiary": session.beneficiary,
            "attempts": session.attempts, "busy": session.busy,
            "transport": {k: {"hex": v.hex()} if isinstance(v, bytes) else v
                          for k, v in session.transport.items()}}


def decode_state(dialogue_id: str, state: dict) -> Session:
    """The L{Session} L{encode_state} described."""
    transport = {k: bytes.fromhex(v["hex"]) if isinstance(v, dict) else v
                 for k, v in state["transport"].items()}
    return Session(dialogue_id=dialogue_id, msisdn=state["msisdn"], language=state["language"],
                   service_code=state["service_code"], source=state["source"],
                   state=State(state["state"]), beneficiary=state["beneficiary"],
                   attempts=state["attempts"], busy=state["busy"], transport=transport)


def store_key(source: str | None, dialogue_id: str) -> str:
    """The dialogue's key in the shared store: one peer's dialogue ids are apart from
    another's, as in L{protocols.ussd.dialogue.DialogueManager} (64 hex digits)."""
    return hashlib.sha256(("%s\0%s" % (source or "", dialogue_id)).encode("utf-8")).hexdigest()


class SharedDialogues:
    """Runs each request of a dialogue as a step claimed in an L{IDialogueStore}."""

    log = Logger()

    def __init__(self, dialogues, store, clock):
        """
        @param dialogues: the L{protocols.ussd.dialogue.DialogueManager}.
        @param store: the L{core.interfaces.IDialogueStore}.
        @param clock: an C{IReactorTime}.
        """
        self.dialogues = dialogues
        self.store = store
        self.clock = clock

    def step(self, dialogue_id, operation, serve, envelope) -> defer.Deferred:
        """Serve C{envelope} with C{serve(envelope)} as one step of dialogue C{dialogue_id}.

        @return: a Deferred firing with what C{serve} gave, or failing with
            L{DialogueBusy} when another request holds the dialogue.
        """
        if not dialogue_id:          # a TCAP dialogue the gateway gave no id: this node's
            return defer.maybeDeferred(serve, envelope)
        source = envelope.source
        if operation in ("begin", "end", "abort"):
            d = defer.maybeDeferred(serve, envelope)
            return d.addBoth(self._store, dialogue_id, source, None)
        now = self.clock.seconds()
        d = self.store.claim(store_key(source, dialogue_id), now, now + self.dialogues.timeout)

        def claimed(row):
            self.dialogues.detach(dialogue_id, source)
            version = None
            if row is not None:
                state, version = row
                self.dialogues.attach(decode_state(dialogue_id, state))
            d = defer.maybeDeferred(serve, envelope)
            return d.addBoth(self._store, dialogue_id, source, version)

        def held(failure):
            failure.trap(DialogueHeld)
            raise DialogueBusy(dialogue_id)
        return d.addCallbacks(claimed, held)

    def _store(self, result, dialogue_id, source, version):
        session = self.dialogues.detach(dialogue_id, source)
        state = encode_state(session) if session is not None else None
        d = self.store.release(store_key(source, dialogue_id), state, version,
                               self.clock.seconds() + self.dialogues.timeout)

        def stored(ok):
            if not ok:
                self.log.warn("USSD dialogue {dialogue_id} was taken over by another request; "
                              "its state wins", dialogue_id=dialogue_id)
            return result

        def failed(f):
            self.log.failure("USSD dialogue {dialogue_id}: state not stored", f,
                             dialogue_id=dialogue_id)
            return result
        return d.addCallbacks(stored, failed)
