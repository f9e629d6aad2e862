"""What a channel hands the core (ActivationRequest) and gets back (ActivationResult)."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

from core.results import DEFAULT_TEXT, ResultCode


class Channel(str, enum.Enum):
    """Where an activation came from; stored on its transaction row."""

    SMS = "sms"
    USSD = "ussd"
    IVR = "ivr"
    WEB = "web"
    WAP = "wap"
    SOAP = "soap"
    CUSTOMER_CARE = "customer_care"
    CLI = "cli"


@dataclass(frozen=True)
class ActivationRequest:
    """One subscriber's request to consume a voucher.

    @ivar msisdn: the requesting subscriber's number as the channel got it.
    @ivar hrn: the Hidden Recharge Number as typed (spaces and dashes allowed).
    @ivar channel: a L{Channel} value.
    @ivar channel_ref: the channel's own reference (SMPP message id, USSD
        dialogue id, SOAP client reference...), for customer care.
    @ivar operator_user: the customer-care agent acting for the subscriber.
    @ivar beneficiary: another MSISDN to credit, when enabled.
    @ivar source: where the request entered (SMPP bind, HTTP client address),
        for per-source failure counters.
    @ivar idempotency_key: the channel's key for "this same request again"
        (see L{core.inbox}); a repeat within the replay window gets the
        original answer.  May contain the HRN: never logged, stored hashed.
    @ivar reply: for a channel that replies later (SMS): C{{"to": addresses,
        "language": ..., "source": route}}, kept with the key until the
        reply is confirmed.
    """

    msisdn: str
    hrn: str
    channel: Channel | str
    channel_ref: str | None = None
    operator_user: str | None = None
    beneficiary: str | None = None
    source: str | None = None
    idempotency_key: str | None = None
    reply: dict | None = None

    def __repr__(self) -> str:  # never show the HRN
        return ("ActivationRequest(msisdn=%r, hrn=<%d chars>, channel=%r, channel_ref=%r)"
                % (self.msisdn, len(self.hrn or ""), str(self.channel), self.channel_ref))


@dataclass(frozen=True)
class ActivationResult:
    """The core's answer; each channel renders it in its own terms.

    @ivar code: a L{ResultCode}.
    @ivar amount: credited amount in minor units (on success, or the voucher's
        value when known).
    @ivar validity_days: account validity the voucher grants.
    @ivar new_expiry: the account's expiry (epoch ms) when billing told it.
    @ivar unbar_at: when a barred MSISDN may try again (epoch ms).
    @ivar rewards: loyalty rewards granted by this activation.
    @ivar replay: C{""} for a new activation; C{"answered"} when this is the
        original answer to a repeated request (same idempotency key);
        C{"pending"} when the repeated request's first attempt is not
        concluded yet (its own answer is still to come).
    """

    code: ResultCode
    txn_id: str | None = None
    msisdn: str | None = None
    account: str | None = None
    serial: int | None = None
    amount: int | None = None
    currency: str | None = None
    validity_days: int | None = None
    new_expiry: int | None = None
    balance: int | None = None
    unbar_at: int | None = None
    rewards: tuple = field(default_factory=tuple)
    replay: str = ""

    @property
    def ok(self) -> bool:
        return self.code == ResultCode.SUCCESS

    @property
    def name(self) -> str:
        return ResultCode(self.code).name

    @property
    def text(self) -> str:
        """The default English text for the code (channels localise their own)."""
        return DEFAULT_TEXT[ResultCode(self.code)]
