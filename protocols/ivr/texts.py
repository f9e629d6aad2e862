"""The IVR channel's prompt keys, their English TTS texts and the fields a text may use.

A prompt text is a C{str.format} template over L{FIELDS}.  Keys are the
dialogue prompts below plus one per result code (L{core.results.ResultCode}
names, DESIGN §4).  Operators override any text per language in
C{[[ivr.languages]] prompts}, and may give a recorded-audio URL per key in
C{audio} (the text is then the fallback the platform speaks when the
recording cannot be fetched).
"""
from __future__ import annotations

from core.results import ResultCode

#: Placeholders a prompt text may use (see L{protocols.ivr.prompts}).
FIELDS = frozenset({
    "amount", "currency", "expiry", "unbar_time", "unbar_minutes", "validity_days",
    "lengths", "key", "language",
})

#: English defaults of every prompt key.
ENGLISH = {
    # language menu: each language's own line, spoken in that language
    "language_choice": "For English, press {key}.",
    # HRN collection
    "welcome": "Welcome to the recharge service.",
    "enter_hrn": ("Please enter the {lengths} digit recharge number from your voucher, "
                  "then press the hash key. To start again, press the star key."),
    "or": "or",
    "restart": "Starting again.",
    "noinput": "Sorry, I did not hear anything.",
    "nomatch": "Sorry, that is not a valid recharge number.",
    # confirmation
    "you_entered": "You entered",
    "confirm": "To confirm, press 1. To enter it again, press 2.",
    "confirm_nomatch": "Please press 1 to confirm, or 2 to enter the number again.",
    "reenter": "Let us enter the number again.",
    "please_wait": "Please wait while we recharge your account.",
    # after a result
    "try_again": "Please try another recharge number.",
    "goodbye": "Thank you for calling. Goodbye.",
    # customer care and errors
    "transfer": "Please hold while we transfer you to customer care.",
    "care_unavailable": "Customer care cannot take your call right now. Please call again later.",
    "error": ("We are sorry, the recharge service cannot handle your call right now. "
              "Please try again later."),
    # result codes (DESIGN §4)
    "SUCCESS": "Your account has been credited with {amount} {currency}.",
    "SUCCESS_EXPIRY": "Your account is now valid until {expiry}.",
    "SYSTEM_ERROR": "We are sorry, a system error occurred. Your voucher was not used. "
                    "Please try again later.",
    "SUBSCRIBER_UNKNOWN": "We could not find a prepaid account for your phone number.",
    "SUBSCRIBER_BARRED": ("There were too many wrong attempts from your number. You can try "
                          "again in {unbar_minutes} minutes, after {unbar_time}."),
    "VOUCHER_ALREADY_USED_BY_YOU": "You have already used this voucher.",
    "VOUCHER_USED_BY_OTHER": "This voucher has already been used.",
    "VOUCHER_NOT_AVAILABLE": "This voucher cannot be used yet.",
    "VOUCHER_EXPIRED": "This voucher has expired.",
    "VOUCHER_BLOCKED": "This voucher is blocked.",
    "VOUCHER_PENDING": "This voucher is already being processed. Please call again in a few minutes.",
    "BILLING_REJECTED": "The recharge was not accepted for your account.",
    "INVALID_HRN": "The recharge number you entered is not valid.",
    "INVALID_MSISDN": ("We could not recognise your phone number. Please call from your "
                       "prepaid phone with your number shown."),
    "BILLING_UNAVAILABLE": ("The recharge service is temporarily unavailable. Please try "
                            "again later."),
    "DATABASE_UNAVAILABLE": ("The recharge service is temporarily unavailable. Please try "
                             "again later."),
    "SOURCE_THROTTLED": ("There were too many failed recharge attempts. Please try again "
                         "in a minute."),
}

#: Every prompt key.
KEYS = frozenset(ENGLISH)

assert {c.name for c in ResultCode} <= KEYS, "a result code has no prompt"
