"""USSD codec errors and the answers they call for (3GPP TS 29.002 §17.6.6, ITU-T Q.773).

Every failure to decode a USSD string, a MAP argument or a TCAP message is raised as
L{UssdDecodeError}; no C{pyasn1} exception, C{ValueError} or C{IndexError} leaves
the codecs. The error says what the bridge should send back, exactly one of:

* C{abort_cause} -- a TCAP P-Abort cause: the transaction portion itself is unusable;
* C{reject} -- a TCAP Reject problem C{(problem_type, code)}: the transaction is fine
  but a component (or the MAP argument inside an Invoke) is malformed;
* C{map_error} -- a MAP ReturnError code: the argument parsed but its value is not usable
  (unknown alphabet, bad digits, missing data).

Encoding failures (text too long, a message missing its transaction id) are caller
mistakes and raise L{UssdEncodeError}.
"""

from enum import IntEnum


class MapError(IntEnum):
    """MAP error codes used by the USSD operations (3GPP TS 29.002 §17.6.6)."""

    SYSTEM_FAILURE = 34
    DATA_MISSING = 35
    UNEXPECTED_DATA_VALUE = 36
    UNKNOWN_ALPHABET = 71
    USSD_BUSY = 72


class PAbortCause(IntEnum):
    """TCAP P-AbortCause (ITU-T Q.773 §4.2.1)."""

    UNRECOGNIZED_MESSAGE_TYPE = 0
    UNRECOGNIZED_TRANSACTION_ID = 1
    BADLY_FORMATTED_TRANSACTION_PORTION = 2
    INCORRECT_TRANSACTION_PORTION = 3
    RESOURCE_LIMITATION = 4


class ProblemType(IntEnum):
    """Which problem CHOICE of a TCAP Reject component (ITU-T Q.773 §4.2.2.1)."""

    GENERAL = 0
    INVOKE = 1
    RETURN_RESULT = 2
    RETURN_ERROR = 3


class GeneralProblem(IntEnum):
    """TCAP GeneralProblem values (ITU-T Q.773)."""

    UNRECOGNIZED_COMPONENT = 0
    MISTYPED_COMPONENT = 1
    BADLY_STRUCTURED_COMPONENT = 2


class InvokeProblem(IntEnum):
    """TCAP InvokeProblem values (ITU-T Q.773)."""

    DUPLICATE_INVOKE_ID = 0
    UNRECOGNIZED_OPERATION = 1
    MISTYPED_PARAMETER = 2
    RESOURCE_LIMITATION = 3
    INITIATING_RELEASE = 4
    UNRECOGNIZED_LINKED_ID = 5
    LINKED_RESPONSE_UNEXPECTED = 6
    UNEXPECTED_LINKED_OPERATION = 7


class UssdCodecError(ValueError):
    """Base class of every error raised by the C{protocols.ussd} codecs."""


class UssdDecodeError(UssdCodecError):
    """Input bytes could not be turned into a USSD object.

    @param reason: human-readable cause, safe to log (never contains subscriber text).
    @param map_error: L{MapError} to answer with in a ReturnError, or C{None}.
    @param reject: C{(ProblemType, code)} to answer with in a TCAP Reject, or C{None}.
    @param abort_cause: L{PAbortCause} to answer with in a TCAP Abort, or C{None}.
    @param otid: the peer's originating transaction id when it could be read, so that
        an Abort or Reject can be addressed to it.
    @param invoke_id: the invoke id of the faulty component when it could be read.
    """

    def __init__(self, reason, *, map_error=None, reject=None, abort_cause=None,
                 otid=None, invoke_id=None):
        super().__init__(reason)
        self.reason = reason
        self.map_error = MapError(map_error) if map_error is not None else None
        self.reject = reject
        self.abort_cause = (PAbortCause(abort_cause)
                            if abort_cause is not None else None)
        self.otid = otid
        self.invoke_id = invoke_id

    def with_context(self, *, otid=None, invoke_id=None):
        """Return this error with the transaction/invoke ids filled in where unknown."""
        if self.otid is None:
            self.otid = otid
        if self.invoke_id is None:
            self.invoke_id = invoke_id
        return self

    def __repr__(self):
        return ('UssdDecodeError(%r, map_error=%r, reject=%r, abort_cause=%r)'
                % (self.reason, self.map_error, self.reject, self.abort_cause))


class UssdEncodeError(UssdCodecError):
    """The values given cannot be encoded (e.g. text longer than a USSD string)."""


def mistyped_parameter(reason):
    """Build the error for a MAP argument that does not match its ASN.1 type."""
    return UssdDecodeError(
        reason, reject=(ProblemType.INVOKE, InvokeProblem.MISTYPED_PARAMETER))


def badly_structured_component(reason):
    """Build the error for a TCAP component that is not valid BER or not a Component."""
    return UssdDecodeError(
        reason, reject=(ProblemType.GENERAL, GeneralProblem.BADLY_STRUCTURED_COMPONENT))
