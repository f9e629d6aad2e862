"""UCIP C{responseCode} -> iVOMS outcome (the table in docs/billing.md)."""
from __future__ import annotations

from billing.ucip.codec import parse_timestamp, UcipSyntaxError
from billing.ucip.config import UcipCodes
from core.billing import BillingUnavailable, CreditOutcome
from core.results import ResultCode

#: Names of the refusals operators see most, for the outcome's detail.
NAMES = {
    100: "other error", 102: "subscriber not found", 104: "temporary blocked",
    105: "dedicated account not allowed", 106: "dedicated account negative",
    123: "max credit limit exceeded", 124: "below minimum balance",
    126: "account not active", 136: "date adjustment error",
}


def outcome(answer: dict, codes: UcipCodes) -> CreditOutcome:
    """The outcome of one UpdateBalanceAndDate answer struct.

    @param answer: from L{billing.ucip.codec.decode_response}.
    @raise BillingUnavailable: a code of C{codes.unknown} (sent=True).
    """
    if "fault" in answer:
        # An XML-RPC fault: the AIR did not execute the method.
        return CreditOutcome(False, ResultCode.BILLING_REJECTED,
                             detail="UCIP fault %d" % answer["fault"])
    code = answer["responseCode"]
    detail = "UCIP %d%s" % (code, " " + NAMES[code] if code in NAMES else "")
    if code in codes.success or code in codes.duplicate:
        balance = answer.get("accountValue1")
        expiry = answer.get("supervisionExpiryDate")
        try:
            new_expiry = parse_timestamp(expiry) if expiry is not None else None
        except UcipSyntaxError:
            new_expiry = None
        bal = int(balance) if isinstance(balance, str) and balance.lstrip("-").isdigit() else None
        return CreditOutcome(True, ResultCode.SUCCESS, bal, new_expiry, detail=detail)
    if code in codes.unknown_subscriber:
        return CreditOutcome(False, ResultCode.SUBSCRIBER_UNKNOWN, detail=detail)
    if code in codes.unknown:
        raise BillingUnavailable(detail + ": outcome unknown", sent=True)
    return CreditOutcome(False, ResultCode.BILLING_REJECTED, detail=detail)
