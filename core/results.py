"""The one result-code table every channel answers from (DESIGN §4).

Codes below 150 mean what the same numbers mean in Ericsson UCIP, so
operators' support staff can read them; 150 and up are iVOMS's own.
"""
import enum


class ResultCode(enum.IntEnum):
    """Outcome of an activation, shared by every channel."""

    SUCCESS = 0
    SYSTEM_ERROR = 100
    SUBSCRIBER_UNKNOWN = 102
    SUBSCRIBER_BARRED = 103
    VOUCHER_ALREADY_USED_BY_YOU = 107
    VOUCHER_USED_BY_OTHER = 108
    VOUCHER_NOT_AVAILABLE = 109
    VOUCHER_EXPIRED = 110
    VOUCHER_BLOCKED = 111
    VOUCHER_PENDING = 113
    BILLING_REJECTED = 115
    INVALID_HRN = 119
    INVALID_MSISDN = 150
    BILLING_UNAVAILABLE = 151
    DATABASE_UNAVAILABLE = 152
    SOURCE_THROTTLED = 153


#: Results that count as a failed attempt for fraud control: they are what a
#: subscriber guessing HRNs produces.  Used-by-you, pending, billing and
#: system outcomes are not the subscriber's doing and are not counted.
FRAUD_COUNTED = frozenset({
    ResultCode.INVALID_HRN,
    ResultCode.VOUCHER_USED_BY_OTHER,
    ResultCode.VOUCHER_NOT_AVAILABLE,
    ResultCode.VOUCHER_EXPIRED,
    ResultCode.VOUCHER_BLOCKED,
})

#: Default English texts; channels localise from their own templates.
DEFAULT_TEXT = {
    ResultCode.SUCCESS: "Your account was credited.",
    ResultCode.SYSTEM_ERROR: "System error, please try again later.",
    ResultCode.SUBSCRIBER_UNKNOWN: "Unknown subscriber.",
    ResultCode.SUBSCRIBER_BARRED: "Too many failed attempts; recharge is barred for now.",
    ResultCode.VOUCHER_ALREADY_USED_BY_YOU: "You have already used this voucher.",
    ResultCode.VOUCHER_USED_BY_OTHER: "This voucher has already been used.",
    ResultCode.VOUCHER_NOT_AVAILABLE: "This voucher is not yet available.",
    ResultCode.VOUCHER_EXPIRED: "This voucher has expired.",
    ResultCode.VOUCHER_BLOCKED: "This voucher is blocked.",
    ResultCode.VOUCHER_PENDING: "This voucher is being processed, please wait.",
    ResultCode.BILLING_REJECTED: "The recharge was not accepted.",
    ResultCode.INVALID_HRN: "Invalid voucher number.",
    ResultCode.INVALID_MSISDN: "Invalid phone number.",
    ResultCode.BILLING_UNAVAILABLE: "Recharge service temporarily unavailable, please try again later.",
    ResultCode.DATABASE_UNAVAILABLE: "Recharge service temporarily unavailable, please try again later.",
    ResultCode.SOURCE_THROTTLED: "Too many failed attempts from this channel; please try again later.",
}

#: Outcome classes of a result, as screens colour them: C{success}; C{temporary}
#: (the same request may succeed later: the system, the billing peer or the
#: store was unavailable, the voucher is in flight, the subscriber or the source
#: is barred for a while); C{failure} (this request will never succeed).
SUCCESS, TEMPORARY, FAILURE = "success", "temporary", "failure"
OUTCOMES = (SUCCESS, TEMPORARY, FAILURE)

TEMPORARY_CODES = frozenset({
    ResultCode.SYSTEM_ERROR,
    ResultCode.SUBSCRIBER_BARRED,
    ResultCode.VOUCHER_PENDING,
    ResultCode.BILLING_UNAVAILABLE,
    ResultCode.DATABASE_UNAVAILABLE,
    ResultCode.SOURCE_THROTTLED,
})


def outcome(code: int) -> str:
    """The outcome class of result C{code}: L{SUCCESS} for 0, L{TEMPORARY} for a
    code in L{TEMPORARY_CODES}, L{FAILURE} for any other (an unknown code too).

    @param code: a numeric result code.
    """
    if code == ResultCode.SUCCESS:
        return SUCCESS
    return TEMPORARY if code in TEMPORARY_CODES else FAILURE
