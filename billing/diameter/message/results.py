"""Credit-Control-Answer results as iVOMS codes (RFC 6733 §7.1, RFC 4006 §9).

One table, applied once: a CCA is a definite success, a definite rejection
(with the product code to report), or unknown — the credit may or may not
have been applied, so the transaction stays pending for reconciliation.

| Diameter                                             | outcome  | code |
| ---------------------------------------------------- | -------- | ---- |
| 2001 DIAMETER_SUCCESS                                | success  | 0    |
| 5030 DIAMETER_USER_UNKNOWN (also as Experimental)    | rejected | 102  |
| 4010, 4012, 5003, 5031 and any other 4xxx/5xxx       | rejected | 115  |
| 3002, 3004, 5012 and any other 3xxx                  | unknown  | 151  |
| 1xxx, other 2xxx, other values, no result at all     | unknown  | 151  |

5012 DIAMETER_UNABLE_TO_COMPLY is unknown, not rejected: servers use it
for internal failures after which the account may have been touched.
With both Result-Code and Experimental-Result present, any rejection wins,
then unknown; success needs every present result to be a success.
"""
from __future__ import annotations

import dataclasses
import enum

from core.results import ResultCode

from billing.diameter.message.constants import (
    CMD_CREDIT_CONTROL, DIAMETER_SUCCESS, DIAMETER_UNABLE_TO_COMPLY,
    DIAMETER_USER_UNKNOWN)
from billing.diameter.message.errors import DiameterDecodeError
from billing.diameter.message.parsing import DecodedMessage


class Outcome(enum.Enum):
    SUCCESS = "success"
    REJECTED = "rejected"
    UNKNOWN = "unknown"


@dataclasses.dataclass(frozen=True)
class CreditOutcome:
    """How a credit ended, as far as billing told us.

    C{result} is the product code (C{core.results.ResultCode});
    C{diameter_code}/C{vendor_id} say which Diameter result decided it
    (vendor_id 0 for a Result-Code); C{reason} is for logs.
    """

    outcome: Outcome
    result: ResultCode
    diameter_code: int | None = None
    vendor_id: int = 0
    reason: str = ""

    @property
    def is_success(self) -> bool:
        return self.outcome is Outcome.SUCCESS

    @property
    def is_rejected(self) -> bool:
        return self.outcome is Outcome.REJECTED

    @property
    def is_unknown(self) -> bool:
        """True when retrying/reconciling is needed (the credit may exist)."""
        return self.outcome is Outcome.UNKNOWN


def unknown(reason: str, diameter_code: int | None = None,
            vendor_id: int = 0) -> CreditOutcome:
    """An UNKNOWN outcome (151 BILLING_UNAVAILABLE) with a reason."""
    return CreditOutcome(Outcome.UNKNOWN, ResultCode.BILLING_UNAVAILABLE,
                         diameter_code, vendor_id, reason)


def map_result(code: int, vendor_id: int = 0) -> CreditOutcome:
    """Map one Result-Code (vendor_id 0) or Experimental-Result-Code."""
    what = f"Experimental-Result {vendor_id}/{code}" if vendor_id else \
        f"Result-Code {code}"
    if code == DIAMETER_SUCCESS:
        return CreditOutcome(Outcome.SUCCESS, ResultCode.SUCCESS, code,
                             vendor_id, what)
    if code == DIAMETER_USER_UNKNOWN:
        return CreditOutcome(Outcome.REJECTED, ResultCode.SUBSCRIBER_UNKNOWN,
                             code, vendor_id, what)
    if code == DIAMETER_UNABLE_TO_COMPLY or 3000 <= code < 4000:
        return unknown(f"{what}: transient or protocol error", code, vendor_id)
    if 4000 <= code < 6000:
        return CreditOutcome(Outcome.REJECTED, ResultCode.BILLING_REJECTED,
                             code, vendor_id, what)
    return unknown(f"{what}: not a definite answer", code, vendor_id)


def credit_outcome(answer: DecodedMessage,
                   session_id: str | None = None) -> CreditOutcome:
    """Judge a Credit-Control-Answer; never raises for a bad answer.

    A malformed answer, a request, another command, a Session-Id other than
    C{session_id} (when given), or an answer with no result is UNKNOWN.
    """
    h = answer.header
    if h.is_request or h.command_code != CMD_CREDIT_CONTROL:
        return unknown(f"not a Credit-Control-Answer (command "
                       f"{h.command_code}, flags {h.flags:#04x})")
    try:
        if session_id is not None and answer.session_id != session_id:
            return unknown(f"Session-Id {answer.session_id!r} does not "
                           f"match {session_id!r}")
        found = []
        if (code := answer.result_code) is not None:
            found.append(map_result(code))
        if (exp := answer.experimental_result) is not None:
            found.append(map_result(exp.code, exp.vendor_id))
    except DiameterDecodeError as e:
        return unknown(f"malformed answer: {e.reason}")
    if not found:
        return unknown("answer has no Result-Code nor Experimental-Result")
    rejected = [o for o in found if o.is_rejected]
    if rejected:
        return rejected[-1]  # the Experimental-Result is the more specific
    unknowns = [o for o in found if o.is_unknown]
    return unknowns[0] if unknowns else found[0]
