"""The IVR channel: VoiceXML 2.1 documents over HTTP for recharge by DTMF (DESIGN §5).

L{protocols.ivr.resource.build_resource} makes the resource L{gateway.adapters}
mounts under C{/ivr}; settings are the C{[ivr]} table (L{protocols.ivr.config.IvrSettings}).
"""
