"""The standalone billing simulator (C{ivoms billing-sim}): Diameter and CAI server roles.

In-memory prepaid accounts (C{ledger.SimLedger}), injected faults
(C{faults.FaultPlan}), a Diameter credit-control server (C{diameter}) and a
CAI line server (C{cai}), assembled and started by C{server.start}.
"""
