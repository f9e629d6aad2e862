"""HTTP statuses of the recharge pages: one per result code (DESIGN §4), and refusals.

Every answer is a full page with the localised text; the status tells
proxies, monitoring and scripted clients what happened.
"""

from __future__ import annotations

from core.results import ResultCode as R

#: result code -> HTTP status of the result page
RESULT_STATUS = {
    R.SUCCESS: 200,
    R.SYSTEM_ERROR: 500,
    R.SUBSCRIBER_UNKNOWN: 422,
    R.SUBSCRIBER_BARRED: 403,
    R.VOUCHER_ALREADY_USED_BY_YOU: 409,
    R.VOUCHER_USED_BY_OTHER: 409,
    R.VOUCHER_NOT_AVAILABLE: 409,
    R.VOUCHER_EXPIRED: 409,
    R.VOUCHER_BLOCKED: 409,
    R.VOUCHER_PENDING: 409,
    R.BILLING_REJECTED: 409,
    R.INVALID_HRN: 422,
    R.INVALID_MSISDN: 422,
    R.BILLING_UNAVAILABLE: 503,
    R.DATABASE_UNAVAILABLE: 503,
    R.SOURCE_THROTTLED: 429,
}

#: the page's own refusals: reason -> (HTTP status, text key)
REFUSALS = {
    "csrf": (403, "csrf"),
    "rate_limited": (429, "rate_limited"),
    "missing": (400, "missing"),
    "too_large": (413, "too_large"),
}


def status_for(code) -> int:
    """The HTTP status for a result code (500 for an unknown one)."""
    try:
        return RESULT_STATUS[R(code)]
    except (ValueError, KeyError):
        return 500
