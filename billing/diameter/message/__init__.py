"""Pure Diameter message layer of the credit-control connector (RFC 6733/4006).

No reactor and no I/O: builders return wire bytes, C{decode_message} turns
wire bytes into a C{DecodedMessage}, C{split_frames} cuts a TCP stream, and
C{credit_outcome} maps a Credit-Control-Answer to an iVOMS result.  Only
C{DiameterDecodeError} (and its C{DiameterFramingError}) escapes decoding;
builders raise C{DiameterEncodeError} (a C{ValueError}).
"""
from billing.diameter.message.credit import (
    CreditRequest, CreditSettings, ReceivedCredit, ValidityAvp, build_cca,
    build_ccr, key_from_session_id, money_digits, read_credit_request,
    session_id_for)
from billing.diameter.message.errors import (
    DiameterDecodeError, DiameterEncodeError, DiameterError,
    DiameterFramingError)
from billing.diameter.message.framing import (
    DEFAULT_MAX_MESSAGE_LENGTH, decode_message, split_frame, split_frames)
from billing.diameter.message.header import (
    DiameterHeader, mark_retransmission, read_header, set_identifiers)
from billing.diameter.message.messages import (
    LocalIdentity, build_answer, build_cea, build_cer, build_dpa, build_dpr,
    build_dwa, build_dwr, build_error_answer)
from billing.diameter.message.parsing import (
    DecodedMessage, ExperimentalResult, PeerCapabilities, parse_capabilities)
from billing.diameter.message.results import (
    CreditOutcome, Outcome, credit_outcome, map_result)

__all__ = [
    "CreditOutcome", "CreditRequest", "CreditSettings", "DecodedMessage",
    "DEFAULT_MAX_MESSAGE_LENGTH", "DiameterDecodeError",
    "DiameterEncodeError", "DiameterError", "DiameterFramingError",
    "DiameterHeader", "ExperimentalResult", "LocalIdentity", "Outcome",
    "PeerCapabilities", "ReceivedCredit", "ValidityAvp", "build_answer",
    "build_cca", "build_ccr", "build_cea", "build_cer", "build_dpa",
    "build_dpr", "build_dwa", "build_dwr", "build_error_answer",
    "credit_outcome", "decode_message", "key_from_session_id",
    "map_result", "mark_retransmission", "money_digits", "parse_capabilities",
    "read_credit_request", "read_header", "session_id_for",
    "set_identifiers", "split_frame", "split_frames",
]
