"""What the dialogue does after each result code: the IVR channel's one mapping table.

The spoken text is the prompt named after the code (L{protocols.ivr.texts});
this table says what follows it: end the call, let the caller try another
voucher (until C{max_attempts}), or transfer to customer care.
"""
from __future__ import annotations

import enum

from core.results import ResultCode as R


class Next(enum.Enum):
    END = "end"        # goodbye, end of call
    RETRY = "retry"    # collect another HRN
    CARE = "care"      # transfer to customer care (or goodbye when none is configured)


#: Result code -> what follows its prompt.
NEXT = {
    R.SUCCESS: Next.END,
    R.SYSTEM_ERROR: Next.END,
    R.SUBSCRIBER_UNKNOWN: Next.CARE,
    R.SUBSCRIBER_BARRED: Next.END,
    R.VOUCHER_ALREADY_USED_BY_YOU: Next.RETRY,
    R.VOUCHER_USED_BY_OTHER: Next.RETRY,
    R.VOUCHER_NOT_AVAILABLE: Next.RETRY,
    R.VOUCHER_EXPIRED: Next.RETRY,
    R.VOUCHER_BLOCKED: Next.RETRY,
    R.VOUCHER_PENDING: Next.END,
    R.BILLING_REJECTED: Next.CARE,
    R.INVALID_HRN: Next.RETRY,
    R.INVALID_MSISDN: Next.CARE,
    R.BILLING_UNAVAILABLE: Next.END,
    R.DATABASE_UNAVAILABLE: Next.END,
    R.SOURCE_THROTTLED: Next.END,
}


def next_step(code, attempt: int, max_attempts: int) -> Next:
    """What follows result C{code} on the caller's C{attempt}-th voucher.

    An unknown code ends the call; a retry past C{max_attempts} failed
    vouchers goes to customer care instead.
    """
    try:
        step = NEXT[R(code)]
    except ValueError:
        return Next.END
    if step is Next.RETRY and attempt >= max_attempts:
        return Next.CARE
    return step
