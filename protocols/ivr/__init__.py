"""The IVR channel: VoiceXML 2.1 documents over HTTP for recharge by DTMF (DESIGN §5).

C{resource.make_resource(node)} is mounted under C{/ivr} by L{gateway.http};
settings are the C{[ivr]} table (L{protocols.ivr.config.IvrSettings}).
"""
