"""Wiring of the SMS channel: one MultiService from the C{[smpp]} settings.

C{make_smpp_service(settings, activation, reactor)} builds the channel
(grammar, replies, reassembly), the server-mode listener when enabled and
one L{protocols.smpp.client.SmscConnector} per configured SMSC.
"""

from __future__ import annotations

from twisted.application import service

from protocols.smpp.channel import SmsChannel
from protocols.smpp.client import SmscConnector
from protocols.smpp.durable import SmsOutbox, make_route
from protocols.smpp.grammar import Grammar
from protocols.smpp.replies import Replies
from protocols.smpp.server import SmppServerFactory, SmppServerService


class SmppService(service.MultiService):
    """The SMS channel: its listener and SMSC binds, and the channel they share.

    @ivar channel: the L{SmsChannel}.
    @ivar server: the L{SmppServerService}, or C{None} when disabled.
    @ivar connectors: the L{SmscConnector}s, by SMSC name.
    """

    name = "smpp"

    def __init__(self, channel: SmsChannel) -> None:
        super().__init__()
        self.channel = channel
        self.server: SmppServerService | None = None
        self.connectors: dict[str, SmscConnector] = {}

    def startService(self):
        super().startService()
        if self.channel.outbox is not None:
            self.channel.outbox.start()

    def stopService(self):
        if self.channel.outbox is not None:
            self.channel.outbox.stop()
        d = super().stopService()
        d.addBoth(lambda r: (self.channel.stop(), r)[1])
        return d


def make_smpp_service(settings, activation, reactor, *, hrn_lengths=(), clock=None,
                      runner=None) -> SmppService:
    """Build the SMS channel's services.

    @param settings: a L{protocols.smpp.config.SmppSettings}.
    @param activation: provides L{core.interfaces.IActivationService}.
    @param hrn_lengths: HRN lengths of the configured voucher types (used
        when C{[smpp.grammar] hrn_lengths} is empty).
    @param clock: timers (default: C{reactor}).
    @param runner: the store's L{core.units.UnitRunner}: with it (and
        C{[smpp.channel] durable}), MOs are acknowledged once durable and
        replies go through a L{protocols.smpp.durable.SmsOutbox}.
    """
    clock = clock or reactor
    grammar = Grammar.from_settings(settings.grammar, settings.replies.default_language,
                                    hrn_lengths)
    replies = Replies.from_settings(settings.replies)
    c = settings.channel
    outbox = None
    if runner is not None and c.durable:
        outbox = SmsOutbox(runner, clock, retry_seconds=c.reply_retry_seconds,
                           max_attempts=c.reply_max_attempts,
                           expiry_seconds=c.reply_expiry_seconds,
                           busy=lambda txn_id: txn_id in activation.running)
    channel = SmsChannel(activation, grammar, replies, clock=clock, settings=c, outbox=outbox)
    top = SmppService(channel)
    if settings.server.enabled:
        factory = SmppServerFactory(settings.server, settings.session, channel, clock=clock)
        top.server = SmppServerService(factory, settings.server.endpoint, reactor,
                                        tls=settings.server)
        top.server.setServiceParent(top)
    for smsc in settings.smsc:
        connector = SmscConnector(smsc, settings.session, channel, reactor=reactor, clock=clock)
        connector.setServiceParent(top)
        top.connectors[smsc.name] = connector
    if outbox is not None:
        outbox.render = channel.render_parts
        outbox.route = make_route(top.server.factory if top.server else None, top.connectors)
    return top
