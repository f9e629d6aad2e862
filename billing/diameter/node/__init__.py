"""Diameter peer and transport layer: peer state machine, client service, billing connector.

This layer owns the reactor; the wire format lives in L{billing.diameter.message}.
"""
