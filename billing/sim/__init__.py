"""The standalone billing simulator (``ivoms billing-sim``): Diameter and CAI server roles.

In-memory prepaid accounts (`ledger.SimLedger`), injected faults
(`faults.FaultPlan`), a Diameter credit-control server (`diameter`) and a
CAI line server (`cai`), assembled and started by `server.start`.
"""
