"""The credit: a CCR EVENT_REQUEST and its answer (RFC 4006 §3, §6.4, §8).

C{build_ccr} sends one refund/top-up of money to an E.164 subscriber, with
the idempotency key inside the Session-Id and the account-validity
extension as configured vendor AVPs.  C{build_cca} and C{read_credit_request}
are the server side, for the billing simulator and tests.

Session-Id scheme (RFC 6733 §8.8 C{<DiameterIdentity>;<high32>;<low32>;<opt>}):
C{<origin-host>;<high32>;<low32>;<key>} where high32/low32 are the first 8
bytes of SHA-256(key) as two decimal Unsigned32s.  The same key always gives
the same Session-Id, so a retry is recognisable by the server, and
C{key_from_session_id} recovers the key and checks the hash.
"""
from __future__ import annotations

import dataclasses
import datetime
import decimal
import hashlib

from diameter.message.avp import Avp

from billing.diameter.message import avps as _avps
from billing.diameter.message.constants import (
    APP_CREDIT_CONTROL, AVP_AUTH_APPLICATION_ID, AVP_CC_MONEY,
    AVP_CC_REQUEST_NUMBER, AVP_CC_REQUEST_TYPE, AVP_CURRENCY_CODE,
    AVP_DESTINATION_HOST, AVP_DESTINATION_REALM, AVP_EVENT_TIMESTAMP,
    AVP_EXPERIMENTAL_RESULT, AVP_EXPERIMENTAL_RESULT_CODE, AVP_EXPONENT,
    AVP_REQUESTED_ACTION, AVP_REQUESTED_SERVICE_UNIT, AVP_SERVICE_CONTEXT_ID,
    AVP_SESSION_ID, AVP_SUBSCRIPTION_ID, AVP_SUBSCRIPTION_ID_DATA,
    AVP_SUBSCRIPTION_ID_TYPE, AVP_UNIT_VALUE, AVP_VALUE_DIGITS, AVP_VENDOR_ID,
    CC_REQUEST_TYPE_EVENT, CMD_CREDIT_CONTROL, DIAMETER_MISSING_AVP,
    FLAG_PROXIABLE, FLAG_REQUEST, REQUESTED_ACTION_REFUND_ACCOUNT,
    SUBSCRIPTION_ID_E164)
from billing.diameter.message.errors import DiameterDecodeError, DiameterEncodeError
from billing.diameter.message.messages import (
    LocalIdentity, build_answer, encode_message)
from billing.diameter.message.parsing import DecodedMessage

_KEY_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - {";"}
MAX_KEY_LENGTH = 128
VALIDITY_TYPES = ("Unsigned32", "Integer32", "Time")


# --- Session-Id ------------------------------------------------------------

def _key_hash(key: str) -> tuple[int, int]:
    digest = hashlib.sha256(key.encode("ascii")).digest()
    return (int.from_bytes(digest[:4], "big"),
            int.from_bytes(digest[4:8], "big"))


def session_id_for(origin_host: str, key: str) -> str:
    """The Session-Id carrying idempotency C{key} (scheme in the module doc).

    @raise DiameterEncodeError: C{origin_host} is not a DiameterIdentity, or
        C{key} is empty, longer than 128 or has a character outside
        printable ASCII / is a ';'.
    """
    _avps.check_identity(origin_host, "origin_host")
    if (not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_LENGTH
            or not set(key) <= _KEY_CHARS):
        raise DiameterEncodeError(
            f"idempotency key {key!r} must be 1..{MAX_KEY_LENGTH} printable "
            "ASCII characters without spaces or ';'")
    high, low = _key_hash(key)
    return f"{origin_host};{high};{low};{key}"


def key_from_session_id(session_id: str) -> str | None:
    """The idempotency key inside a Session-Id of ours, else None."""
    parts = session_id.split(";", 3)
    if len(parts) != 4 or not parts[3] or not set(parts[3]) <= _KEY_CHARS:
        return None
    if (parts[1], parts[2]) != tuple(map(str, _key_hash(parts[3]))):
        return None
    return parts[3]


# --- settings and request ---------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ValidityAvp:
    """One configured account-validity AVP, valued from the days to add.

    Unsigned32/Integer32 carry the number of days; Time carries
    Event-Timestamp + days (the new expiry).  C{vendor_id} 0 sends no
    Vendor-ID field.
    """

    vendor_id: int
    code: int
    avp_type: str = "Unsigned32"
    mandatory: bool = False

    def __post_init__(self):
        if self.avp_type not in VALIDITY_TYPES:
            raise DiameterEncodeError(
                f"validity AVP type {self.avp_type!r} not in {VALIDITY_TYPES}")
        _avps.make_avp(self.code, b"", mandatory=False,
                       vendor_id=self.vendor_id)

    def encode(self, days: int, event_time: datetime.datetime) -> Avp:
        """The AVP for C{days}. Raises DiameterEncodeError out of range."""
        kw = dict(mandatory=self.mandatory, vendor_id=self.vendor_id)
        if self.avp_type == "Unsigned32":
            return _avps.unsigned32(self.code, days, **kw)
        if self.avp_type == "Integer32":
            return _avps.integer32(self.code, days, **kw)
        expiry = event_time + datetime.timedelta(days=days)
        return _avps.time_value(self.code, expiry, **kw)

    def decode(self, avp: Avp) -> int | datetime.datetime:
        """Read a received AVP of this spec. Raises DiameterDecodeError."""
        return {"Unsigned32": _avps.read_unsigned32,
                "Integer32": _avps.read_integer32,
                "Time": _avps.read_time}[self.avp_type](avp)


@dataclasses.dataclass(frozen=True)
class CreditSettings:
    """Per-connector CCR settings (validated on construction).

    C{requested_action} defaults to REFUND_ACCOUNT (1, RFC 4006 §8.41); a
    vendor's top-up action is any Integer32.  C{exponent}, when set, fixes
    the Unit-Value Exponent (e.g. -2 for cents).
    """

    destination_realm: str
    service_context_id: str
    destination_host: str | None = None
    requested_action: int = REQUESTED_ACTION_REFUND_ACCOUNT
    validity_avps: tuple[ValidityAvp, ...] = ()
    exponent: int | None = None

    def __post_init__(self):
        _avps.check_identity(self.destination_realm, "destination_realm")
        if self.destination_host is not None:
            _avps.check_identity(self.destination_host, "destination_host")
        if not self.service_context_id:
            raise DiameterEncodeError("service_context_id is empty")
        _avps.utf8_string(AVP_SERVICE_CONTEXT_ID, self.service_context_id)
        _avps.integer32(AVP_REQUESTED_ACTION, self.requested_action)
        if self.exponent is not None:
            _avps.integer32(AVP_EXPONENT, self.exponent)


@dataclasses.dataclass(frozen=True)
class CreditRequest:
    """One credit: who, how much, and the idempotency key.

    C{amount} is a Decimal or int in currency units (never a float);
    C{currency_code} is ISO 4217 numeric; C{event_time} must be aware.
    """

    key: str
    msisdn: str
    amount: decimal.Decimal | int
    currency_code: int
    event_time: datetime.datetime
    validity_days: int | None = None


def money_digits(amount: decimal.Decimal | int,
                 exponent: int | None = None) -> tuple[int, int]:
    """(Value-Digits, Exponent) with Value-Digits * 10**Exponent == amount.

    Keeps the amount's own exponent (Decimal("12.50") -> (1250, -2))
    unless C{exponent} is given.

    @raise DiameterEncodeError: float, negative, non-finite, not exact at
        C{exponent}, or out of the Integer64/Integer32 ranges.
    """
    if isinstance(amount, bool) or not isinstance(
            amount, (int, decimal.Decimal)):
        raise DiameterEncodeError(f"amount {amount!r} must be Decimal or int")
    amount = decimal.Decimal(amount)
    if not amount.is_finite() or amount < 0:
        raise DiameterEncodeError(f"amount {amount} must be finite and >= 0")
    if exponent is None:
        exponent = min(amount.as_tuple().exponent, 0)
    scaled = amount.scaleb(-exponent, decimal.Context(prec=60))
    if scaled != scaled.to_integral_value():
        raise DiameterEncodeError(
            f"amount {amount} is not exact at 10^{exponent}")
    digits = int(scaled)
    if digits >= 2 ** 63 or not -2 ** 31 <= exponent < 2 ** 31:
        raise DiameterEncodeError(f"amount {amount} does not fit Unit-Value")
    return digits, exponent


def _check_msisdn(msisdn: str) -> str:
    if not (isinstance(msisdn, str) and msisdn.isascii() and msisdn.isdigit()
            and 1 <= len(msisdn) <= 15):
        raise DiameterEncodeError(f"MSISDN {msisdn!r} is not E.164 digits")
    return msisdn


def build_ccr(local: LocalIdentity, settings: CreditSettings,
              request: CreditRequest, *, hop_by_hop: int = 0,
              end_to_end: int = 0, session_host: str | None = None) -> bytes:
    """Credit-Control-Request EVENT_REQUEST for one credit (RFC 4006 §6.4).

    Header: command 272, flags R+P, Application-Id 4.  AVPs in CCF order:
    Session-Id, Origin-Host, Origin-Realm, Destination-Realm,
    Auth-Application-Id 4, Service-Context-Id, CC-Request-Type 4,
    CC-Request-Number 0, [Destination-Host], Event-Timestamp,
    Subscription-Id {END_USER_E164, msisdn}, Requested-Service-Unit
    {CC-Money {Unit-Value {Value-Digits, Exponent}, Currency-Code}},
    Requested-Action, then the validity AVPs when C{validity_days} is set.
    C{session_host} (default: our Origin-Host) is the DiameterIdentity the
    Session-Id starts with; nodes sharing one store set the same value so
    any node can re-send another node's credit with the same Session-Id.

    @raise DiameterEncodeError: any value out of range or malformed.
    """
    digits, exponent = money_digits(request.amount, settings.exponent)
    if not isinstance(request.currency_code, int) or not (
            0 <= request.currency_code <= 999):
        raise DiameterEncodeError(
            f"currency code {request.currency_code!r} is not ISO 4217 numeric")
    u32, i32 = _avps.unsigned32, _avps.integer32
    out = [_avps.utf8_string(AVP_SESSION_ID,
                             session_id_for(session_host or local.origin_host,
                                            request.key))]
    out += local.origin_avps()
    out += [_avps.identity(AVP_DESTINATION_REALM, settings.destination_realm),
            u32(AVP_AUTH_APPLICATION_ID, APP_CREDIT_CONTROL),
            _avps.utf8_string(AVP_SERVICE_CONTEXT_ID,
                              settings.service_context_id),
            i32(AVP_CC_REQUEST_TYPE, CC_REQUEST_TYPE_EVENT),
            u32(AVP_CC_REQUEST_NUMBER, 0)]
    if settings.destination_host is not None:
        out.append(_avps.identity(AVP_DESTINATION_HOST,
                                  settings.destination_host))
    out.append(_avps.time_value(AVP_EVENT_TIMESTAMP, request.event_time))
    out.append(_avps.grouped(AVP_SUBSCRIPTION_ID, [
        i32(AVP_SUBSCRIPTION_ID_TYPE, SUBSCRIPTION_ID_E164),
        _avps.utf8_string(AVP_SUBSCRIPTION_ID_DATA,
                          _check_msisdn(request.msisdn))]))
    out.append(_avps.grouped(AVP_REQUESTED_SERVICE_UNIT, [
        _avps.grouped(AVP_CC_MONEY, [
            _avps.grouped(AVP_UNIT_VALUE, [
                _avps.integer64(AVP_VALUE_DIGITS, digits),
                i32(AVP_EXPONENT, exponent)]),
            u32(AVP_CURRENCY_CODE, request.currency_code)])]))
    out.append(i32(AVP_REQUESTED_ACTION, settings.requested_action))
    if request.validity_days is not None:
        if isinstance(request.validity_days, bool) or not isinstance(
                request.validity_days, int) or request.validity_days < 0:
            raise DiameterEncodeError(
                f"validity_days {request.validity_days!r} must be an int >= 0")
        out += [spec.encode(request.validity_days, request.event_time)
                for spec in settings.validity_avps]
    return encode_message(CMD_CREDIT_CONTROL, FLAG_REQUEST | FLAG_PROXIABLE,
                          APP_CREDIT_CONTROL, out, hop_by_hop=hop_by_hop,
                          end_to_end=end_to_end)


# --- server side -------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ReceivedCredit:
    """What a billing server reads from one of our CCRs."""

    session_id: str
    key: str | None
    msisdn: str | None
    amount: decimal.Decimal | None
    currency_code: int | None
    requested_action: int | None
    cc_request_type: int | None
    cc_request_number: int | None
    event_time: datetime.datetime | None
    validity: tuple[int | datetime.datetime, ...]


def read_credit_request(msg: DecodedMessage,
                        validity_avps: tuple[ValidityAvp, ...] = ()
                        ) -> ReceivedCredit:
    """Read a CCR (as the billing simulator does).

    @raise DiameterDecodeError: not a CCR, no Session-Id (5005), or an AVP is
        malformed.
    """
    h = msg.header
    if h.command_code != CMD_CREDIT_CONTROL or not h.is_request:
        raise DiameterDecodeError("not a Credit-Control-Request", header=h)
    session_id = msg.session_id
    if session_id is None:
        raise DiameterDecodeError("CCR without Session-Id", header=h,
                                  result_code=DIAMETER_MISSING_AVP)
    try:
        msisdn = None
        for sub in msg.find_all(AVP_SUBSCRIPTION_ID):
            kids = _avps.read_grouped(sub)
            types = _avps.find_avps(kids, AVP_SUBSCRIPTION_ID_TYPE)
            data = _avps.find_avps(kids, AVP_SUBSCRIPTION_ID_DATA)
            if types and data and _avps.read_integer32(
                    types[0]) == SUBSCRIPTION_ID_E164:
                msisdn = _avps.read_utf8(data[0])
                break
        amount = currency = None
        money = msg.find_path(AVP_REQUESTED_SERVICE_UNIT, AVP_CC_MONEY)
        if money:
            kids = _avps.read_grouped(money[0])
            digits = [d for uv in _avps.find_avps(kids, AVP_UNIT_VALUE)
                      for d in _avps.read_grouped(uv)]
            value = _avps.find_avps(digits, AVP_VALUE_DIGITS)
            exp = _avps.find_avps(digits, AVP_EXPONENT)
            if value:
                # exact for any Integer32 exponent (scaleb would hit Emax)
                amount = decimal.Decimal(
                    f"{_avps.read_integer64(value[0])}E"
                    f"{_avps.read_integer32(exp[0]) if exp else 0}")
            cur = _avps.find_avps(kids, AVP_CURRENCY_CODE)
            currency = _avps.read_unsigned32(cur[0]) if cur else None
        validity = tuple(spec.decode(a) for spec in validity_avps
                         for a in msg.find_all(spec.code, spec.vendor_id))
        return ReceivedCredit(
            session_id=session_id, key=key_from_session_id(session_id),
            msisdn=msisdn, amount=amount, currency_code=currency,
            requested_action=msg.get_integer32(AVP_REQUESTED_ACTION),
            cc_request_type=msg.get_integer32(AVP_CC_REQUEST_TYPE),
            cc_request_number=msg.get_unsigned32(AVP_CC_REQUEST_NUMBER),
            event_time=msg.get_time(AVP_EVENT_TIMESTAMP), validity=validity)
    except DiameterDecodeError as e:
        e.header = h
        raise


def build_cca(request: DecodedMessage, local: LocalIdentity,
              result_code: int | None, *,
              experimental: tuple[int, int] | None = None,
              body: tuple[Avp, ...] = ()) -> bytes:
    """Credit-Control-Answer to C{request} (RFC 4006 §3.2), Session-Id copied.

    Echoes Auth-Application-Id 4, CC-Request-Type and CC-Request-Number.
    C{experimental} is (vendor id, code) for an Experimental-Result; with
    C{result_code} None only the Experimental-Result is sent (as 3GPP does).
    C{body} holds extra AVPs appended after them (e.g. a balance report).

    @raise DiameterEncodeError: neither result given, or a value out of range.
    @raise DiameterDecodeError: an echoed AVP in C{request} is malformed.
    """
    if result_code is None and experimental is None:
        raise DiameterEncodeError(
            "a CCA needs a Result-Code or an Experimental-Result")
    extra = list(body)
    body = [_avps.unsigned32(AVP_AUTH_APPLICATION_ID, APP_CREDIT_CONTROL)]
    req_type = request.get_integer32(AVP_CC_REQUEST_TYPE)
    req_number = request.get_unsigned32(AVP_CC_REQUEST_NUMBER)
    if req_type is None:
        req_type = CC_REQUEST_TYPE_EVENT
    body.append(_avps.integer32(AVP_CC_REQUEST_TYPE, req_type))
    body.append(_avps.unsigned32(AVP_CC_REQUEST_NUMBER, req_number or 0))
    if experimental is not None:
        body.append(_avps.grouped(AVP_EXPERIMENTAL_RESULT, [
            _avps.unsigned32(AVP_VENDOR_ID, experimental[0]),
            _avps.unsigned32(AVP_EXPERIMENTAL_RESULT_CODE, experimental[1])]))
    body += extra
    return build_answer(request.header, local, result_code,
                        session_id=request.session_id, body=body)
