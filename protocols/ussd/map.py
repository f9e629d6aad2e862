"""MAP USSD arguments and results to and from plain objects (3GPP TS 29.002 §7.6.7, §17.7.4;
ISDN-AddressString per §17.7.8 MAP-CommonDataTypes).

The bridge hands the BER parameter of an Invoke to L{decode_map_argument} and
answers with L{encode_ussd_res} (a ReturnResultLast) or
L{encode_ussd_request_arg} (a new unstructuredSS-Request Invoke). Any failure is a
L{protocols.ussd.errors.UssdDecodeError}; L{error_component} turns it into the
TCAP component to send back.
"""

from dataclasses import dataclass

from pyasn1.codec.ber import encoder as ber_encoder

from protocols.ussd import gsm7
from protocols.ussd.ber import BerError, decode_tolerant
from protocols.ussd.errors import (GeneralProblem, InvokeProblem, MapError, ProblemType,
                                   UssdDecodeError, UssdEncodeError, mistyped_parameter)
from protocols.ussd.map_types import (ARGUMENT_TYPES, MAX_ISDN_ADDRESS_LENGTH,
                                      NETWORK_UNSTRUCTURED_SS_CONTEXT_V2, Operation,
                                      USSDArg, USSDRes)
from protocols.ussd.tcap import Dialogue, Reject, ReturnError

# Nature of address and numbering plan of an AddressString (TS 29.002 §17.7.8).
NATURE_UNKNOWN = 0
NATURE_INTERNATIONAL = 1
NATURE_NATIONAL = 2
PLAN_UNKNOWN = 0
PLAN_E164 = 1

_TBCD_DIGITS = "0123456789*#abc"


@dataclass(frozen=True)
class IsdnAddress:
    """An ISDN-AddressString: TBCD C{digits} with nature of address and numbering plan.

    C{str()} gives the digits, prefixed with C{+} when the nature is international.
    """

    digits: str
    nature: int = NATURE_INTERNATIONAL
    numbering_plan: int = PLAN_E164

    def __str__(self):
        prefix = "+" if self.nature == NATURE_INTERNATIONAL else ""
        return prefix + self.digits


@dataclass(frozen=True)
class UssdRequest:
    """A decoded USSD-Arg: the text, the DCS it came in, and the optional extras."""

    opcode: int
    dcs: int
    text: str
    msisdn: IsdnAddress | None = None
    language: str | None = None
    alerting_pattern: int | None = None


@dataclass(frozen=True)
class UssdResponse:
    """A decoded USSD-Res."""

    dcs: int
    text: str
    language: str | None = None


def _bad_value(reason):
    return UssdDecodeError(reason, map_error=MapError.UNEXPECTED_DATA_VALUE)


def decode_isdn_address(octets):
    """Decode an ISDN-AddressString (first octet ext/TON/NPI, then TBCD digits).

    @raise UssdDecodeError: (C{map_error=unexpectedDataValue}) for a length outside
        1..9, an extension bit of 0, or a filler nibble anywhere but the last position.
    """
    octets = bytes(octets)
    if not 1 <= len(octets) <= MAX_ISDN_ADDRESS_LENGTH:
        raise _bad_value("ISDN-AddressString of %d octets" % len(octets))
    first = octets[0]
    if not first & 0x80:
        raise _bad_value("ISDN-AddressString with an extended first octet")
    digits = []
    nibbles = [n for octet in octets[1:] for n in (octet & 0x0F, octet >> 4)]
    for position, nibble in enumerate(nibbles):
        if nibble == 0x0F:
            if position != len(nibbles) - 1:
                raise _bad_value("TBCD filler before the last digit")
            break
        digits.append(_TBCD_DIGITS[nibble])
    return IsdnAddress("".join(digits), (first >> 4) & 0x07, first & 0x0F)


def encode_isdn_address(address, nature=None, numbering_plan=PLAN_E164):
    """Encode an ISDN-AddressString.

    @param address: an L{IsdnAddress}, or a digit string (C{0-9 * # a b c}); a
        leading C{+} sets the international nature.
    @param nature: nature of address for a string (default international).
    @return: the octets, TBCD-packed with an 0xF filler for an odd digit count.
    @raise UssdEncodeError: for an empty, non-TBCD or over-long (> 16 digits) number.
    """
    if isinstance(address, IsdnAddress):
        digits, nature, numbering_plan = address.digits, address.nature, \
            address.numbering_plan
    else:
        digits = str(address)
        if digits.startswith("+"):
            digits, nature = digits[1:], NATURE_INTERNATIONAL
        if nature is None:
            nature = NATURE_INTERNATIONAL
    if not digits or any(d not in _TBCD_DIGITS for d in digits):
        raise UssdEncodeError("address %r is not a TBCD digit string" % (digits,))
    if len(digits) > 2 * (MAX_ISDN_ADDRESS_LENGTH - 1):
        raise UssdEncodeError("address has %d digits, more than %d"
                              % (len(digits), 2 * (MAX_ISDN_ADDRESS_LENGTH - 1)))
    if not (0 <= nature <= 7 and 0 <= numbering_plan <= 15):
        raise UssdEncodeError("nature %r / numbering plan %r out of range"
                              % (nature, numbering_plan))
    nibbles = [_TBCD_DIGITS.index(d) for d in digits]
    if len(nibbles) % 2:
        nibbles.append(0x0F)
    body = bytes(lo | (hi << 4) for lo, hi in zip(nibbles[::2], nibbles[1::2]))
    return bytes((0x80 | nature << 4 | numbering_plan,)) + body


def _decode_sequence(ber, spec, what):
    if ber is None or len(ber) == 0:
        raise UssdDecodeError("%s is missing" % what, map_error=MapError.DATA_MISSING)
    try:
        return decode_tolerant(ber, spec)
    except BerError as exc:
        raise mistyped_parameter("bad %s: %s" % (what, exc)) from None


def decode_map_argument(opcode, ber):
    """Decode the USSD-Arg parameter of a USSD operation's Invoke.

    @param opcode: local operation code (59, 60 or 61).
    @param ber: the parameter octets (C{None} when the Invoke had none).
    @return: a L{UssdRequest}.
    @raise UssdDecodeError: Reject unrecognizedOperation for another opcode; Reject
        mistypedParameter for malformed BER, wrong tags, missing mandatory elements or
        size violations (DCS not one octet, string not 1..160 octets, MSISDN not 1..9);
        ReturnError dataMissing when there is no parameter; ReturnError unknownAlphabet
        for an unsupported DCS; ReturnError unexpectedDataValue for bad text or digits.
    """
    try:
        operation = Operation(opcode)
    except ValueError:
        raise UssdDecodeError(
            "operation %r is not a USSD operation" % (opcode,),
            reject=(ProblemType.INVOKE, InvokeProblem.UNRECOGNIZED_OPERATION)) from None
    arg = _decode_sequence(ber, ARGUMENT_TYPES[operation](), "USSD-Arg")
    dcs = bytes(arg["ussd-DataCodingScheme"])[0]
    text, language = gsm7.decode_ussd_with_language(dcs, bytes(arg["ussd-String"]))
    msisdn = arg["msisdn"]
    pattern = arg["alertingPattern"]
    return UssdRequest(
        opcode=int(operation), dcs=dcs, text=text, language=language,
        msisdn=decode_isdn_address(bytes(msisdn)) if msisdn.isValue else None,
        alerting_pattern=bytes(pattern)[0] if pattern.isValue else None)


def decode_ussd_res(ber):
    """Decode a USSD-Res (the result of processUnstructuredSS-Request or
    unstructuredSS-Request).

    @raise UssdDecodeError: as L{decode_map_argument}.
    """
    res = _decode_sequence(ber, USSDRes(), "USSD-Res")
    dcs = bytes(res["ussd-DataCodingScheme"])[0]
    text, language = gsm7.decode_ussd_with_language(dcs, bytes(res["ussd-String"]))
    return UssdResponse(dcs, text, language)


def _encode(value, text, extra=()):
    """Fill the USSD-Arg/USSD-Res C{value} with C{text} and C{extra} and encode it."""
    dcs, octets = gsm7.encode_ussd(text)
    try:
        value["ussd-DataCodingScheme"] = bytes((dcs,))
        value["ussd-String"] = octets
        for name, item in extra:
            value[name] = item
        return ber_encoder.encode(value)
    except Exception as exc:  # pyasn1 constraint errors; the checks above prevent them
        raise UssdEncodeError("cannot encode %s: %s" % (type(value).__name__, exc)) \
            from None


def encode_ussd_res(text):
    """Encode a USSD-Res carrying C{text} (GSM 7-bit if possible, else UCS-2).

    @raise UssdEncodeError: for empty text or text over 160 octets once encoded.
    """
    return _encode(USSDRes(), text)


def encode_ussd_arg(text, msisdn=None, alerting_pattern=None):
    """Encode a USSD-Arg carrying C{text} and optionally an MSISDN and alerting pattern.

    @param msisdn: an L{IsdnAddress} or digit string, or C{None}.
    @param alerting_pattern: one octet value (TS 29.002 AlertingPattern) or C{None}.
    @raise UssdEncodeError: for empty or oversize text, or a bad MSISDN or pattern.
    """
    extra = []
    if alerting_pattern is not None:
        if not 0 <= alerting_pattern <= 0xFF:
            raise UssdEncodeError("alerting pattern must be one octet")
        extra.append(("alertingPattern", bytes((alerting_pattern,))))
    if msisdn is not None:
        extra.append(("msisdn", encode_isdn_address(msisdn)))
    return _encode(USSDArg(), text, extra)


def encode_ussd_request_arg(text, msisdn=None):
    """Encode the USSD-Arg of an unstructuredSS-Request (a menu sent to the subscriber).

    @raise UssdEncodeError: as L{encode_ussd_arg}.
    """
    return encode_ussd_arg(text, msisdn=msisdn)


def encode_ussd_notify_arg(text, msisdn=None):
    """Encode the USSD-Arg of an unstructuredSS-Notify (a message needing no answer).

    @raise UssdEncodeError: as L{encode_ussd_arg}.
    """
    return encode_ussd_arg(text, msisdn=msisdn)


def answer_dialogue(request, supported=(NETWORK_UNSTRUCTURED_SS_CONTEXT_V2,)):
    """The AARE answering a dialogue request (ITU-T Q.773 §4.3; TS 29.002 §12.1).

    @param request: the L{protocols.ussd.tcap.Dialogue} of a Begin, or C{None}
        (a MAP v1 peer opens without a dialogue portion and gets none back).
    @param supported: application contexts this gateway serves.
    @return: an accepted response echoing the requested context when it is supported;
        otherwise reject-permanent with "application-context-name-not-supported",
        proposing the first supported context; C{None} when C{request} is C{None}.
    """
    if request is None:
        return None
    if request.kind == "request" and request.application_context in supported:
        return Dialogue("response", application_context=request.application_context,
                        result=0, diagnostic=("user", 0))
    return Dialogue("response", application_context=supported[0], result=1,
                    diagnostic=("user", 2))


def error_component(error, invoke_id):
    """The TCAP component answering a L{UssdDecodeError} raised for an Invoke.

    @param error: the error raised by L{decode_map_argument} or the TCAP decoder.
    @param invoke_id: the Invoke's id (C{None} if it could not be read).
    @return: a L{protocols.ussd.tcap.ReturnError} for a MAP error, a
        L{protocols.ussd.tcap.Reject} for a reject problem, or C{None} when the
        error calls for a TCAP Abort instead (see C{error.abort_cause}).
    """
    if invoke_id is None:
        invoke_id = error.invoke_id
    if error.map_error is not None:
        if invoke_id is None:
            return Reject(None, ProblemType.GENERAL, GeneralProblem.MISTYPED_COMPONENT)
        return ReturnError(invoke_id, int(error.map_error))
    if error.reject is not None:
        problem_type, code = error.reject
        return Reject(invoke_id, ProblemType(problem_type), int(code))
    return None
