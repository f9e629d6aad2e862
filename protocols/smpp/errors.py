"""SMPP command_status values and codec errors (SMPP v3.4 issue 1.2 §5.1.3).

Every decoding failure is a L{DecodeError} that carries the command_status to
answer with, what is known of the offending header, and whether the
connection can go on after it (see L{DecodeError.fatal}).
"""

from __future__ import annotations

ESME_ROK = 0x00000000
ESME_RINVMSGLEN = 0x00000001
ESME_RINVCMDLEN = 0x00000002
ESME_RINVCMDID = 0x00000003
ESME_RINVBNDSTS = 0x00000004
ESME_RALYBND = 0x00000005
ESME_RINVPRTFLG = 0x00000006
ESME_RINVREGDLVFLG = 0x00000007
ESME_RSYSERR = 0x00000008
ESME_RINVSRCADR = 0x0000000A
ESME_RINVDSTADR = 0x0000000B
ESME_RINVMSGID = 0x0000000C
ESME_RBINDFAIL = 0x0000000D
ESME_RINVPASWD = 0x0000000E
ESME_RINVSYSID = 0x0000000F
ESME_RCANCELFAIL = 0x00000011
ESME_RREPLACEFAIL = 0x00000013
ESME_RMSGQFUL = 0x00000014
ESME_RINVSERTYP = 0x00000015
ESME_RINVNUMDESTS = 0x00000033
ESME_RINVDLNAME = 0x00000034
ESME_RINVDESTFLAG = 0x00000040
ESME_RINVSUBREP = 0x00000042
ESME_RINVESMCLASS = 0x00000043
ESME_RCNTSUBDL = 0x00000044
ESME_RSUBMITFAIL = 0x00000045
ESME_RINVSRCTON = 0x00000048
ESME_RINVSRCNPI = 0x00000049
ESME_RINVDSTTON = 0x00000050
ESME_RINVDSTNPI = 0x00000051
ESME_RINVSYSTYP = 0x00000053
ESME_RINVREPFLAG = 0x00000054
ESME_RINVNUMMSGS = 0x00000055
ESME_RTHROTTLED = 0x00000058
ESME_RINVSCHED = 0x00000061
ESME_RINVEXPIRY = 0x00000062
ESME_RINVDFTMSGID = 0x00000063
ESME_RX_T_APPN = 0x00000064
ESME_RX_P_APPN = 0x00000065
ESME_RX_R_APPN = 0x00000066
ESME_RQUERYFAIL = 0x00000067
ESME_RINVOPTPARSTREAM = 0x000000C0
ESME_ROPTPARNOTALLWD = 0x000000C1
ESME_RINVPARLEN = 0x000000C2
ESME_RMISSINGOPTPARAM = 0x000000C3
ESME_RINVOPTPARAMVAL = 0x000000C4
ESME_RDELIVERYFAILURE = 0x000000FE
ESME_RUNKNOWNERR = 0x000000FF

#: command_status value -> (name, description), as in the §5.1.3 table.
STATUS_TABLE: dict[int, tuple[str, str]] = {
    ESME_ROK: ("ESME_ROK", "No Error"),
    ESME_RINVMSGLEN: ("ESME_RINVMSGLEN", "Message Length is invalid"),
    ESME_RINVCMDLEN: ("ESME_RINVCMDLEN", "Command Length is invalid"),
    ESME_RINVCMDID: ("ESME_RINVCMDID", "Invalid Command ID"),
    ESME_RINVBNDSTS: ("ESME_RINVBNDSTS", "Incorrect BIND Status for given command"),
    ESME_RALYBND: ("ESME_RALYBND", "ESME Already in Bound State"),
    ESME_RINVPRTFLG: ("ESME_RINVPRTFLG", "Invalid Priority Flag"),
    ESME_RINVREGDLVFLG: ("ESME_RINVREGDLVFLG", "Invalid Registered Delivery Flag"),
    ESME_RSYSERR: ("ESME_RSYSERR", "System Error"),
    ESME_RINVSRCADR: ("ESME_RINVSRCADR", "Invalid Source Address"),
    ESME_RINVDSTADR: ("ESME_RINVDSTADR", "Invalid Dest Addr"),
    ESME_RINVMSGID: ("ESME_RINVMSGID", "Message ID is invalid"),
    ESME_RBINDFAIL: ("ESME_RBINDFAIL", "Bind Failed"),
    ESME_RINVPASWD: ("ESME_RINVPASWD", "Invalid Password"),
    ESME_RINVSYSID: ("ESME_RINVSYSID", "Invalid System ID"),
    ESME_RCANCELFAIL: ("ESME_RCANCELFAIL", "Cancel SM Failed"),
    ESME_RREPLACEFAIL: ("ESME_RREPLACEFAIL", "Replace SM Failed"),
    ESME_RMSGQFUL: ("ESME_RMSGQFUL", "Message Queue Full"),
    ESME_RINVSERTYP: ("ESME_RINVSERTYP", "Invalid Service Type"),
    ESME_RINVNUMDESTS: ("ESME_RINVNUMDESTS", "Invalid number of destinations"),
    ESME_RINVDLNAME: ("ESME_RINVDLNAME", "Invalid Distribution List name"),
    ESME_RINVDESTFLAG: ("ESME_RINVDESTFLAG", "Destination flag is invalid (submit_multi)"),
    ESME_RINVSUBREP: ("ESME_RINVSUBREP", "Invalid 'submit with replace' request"),
    ESME_RINVESMCLASS: ("ESME_RINVESMCLASS", "Invalid esm_class field data"),
    ESME_RCNTSUBDL: ("ESME_RCNTSUBDL", "Cannot Submit to Distribution List"),
    ESME_RSUBMITFAIL: ("ESME_RSUBMITFAIL", "submit_sm or submit_multi failed"),
    ESME_RINVSRCTON: ("ESME_RINVSRCTON", "Invalid Source address TON"),
    ESME_RINVSRCNPI: ("ESME_RINVSRCNPI", "Invalid Source address NPI"),
    ESME_RINVDSTTON: ("ESME_RINVDSTTON", "Invalid Destination address TON"),
    ESME_RINVDSTNPI: ("ESME_RINVDSTNPI", "Invalid Destination address NPI"),
    ESME_RINVSYSTYP: ("ESME_RINVSYSTYP", "Invalid system_type field"),
    ESME_RINVREPFLAG: ("ESME_RINVREPFLAG", "Invalid replace_if_present flag"),
    ESME_RINVNUMMSGS: ("ESME_RINVNUMMSGS", "Invalid number of messages"),
    ESME_RTHROTTLED: ("ESME_RTHROTTLED",
                      "Throttling error (ESME has exceeded allowed message limits)"),
    ESME_RINVSCHED: ("ESME_RINVSCHED", "Invalid Scheduled Delivery Time"),
    ESME_RINVEXPIRY: ("ESME_RINVEXPIRY", "Invalid message validity period (Expiry time)"),
    ESME_RINVDFTMSGID: ("ESME_RINVDFTMSGID", "Predefined Message Invalid or Not Found"),
    ESME_RX_T_APPN: ("ESME_RX_T_APPN", "ESME Receiver Temporary App Error Code"),
    ESME_RX_P_APPN: ("ESME_RX_P_APPN", "ESME Receiver Permanent App Error Code"),
    ESME_RX_R_APPN: ("ESME_RX_R_APPN", "ESME Receiver Reject Message Error Code"),
    ESME_RQUERYFAIL: ("ESME_RQUERYFAIL", "query_sm request failed"),
    ESME_RINVOPTPARSTREAM: ("ESME_RINVOPTPARSTREAM", "Error in the optional part of the PDU Body"),
    ESME_ROPTPARNOTALLWD: ("ESME_ROPTPARNOTALLWD", "Optional Parameter not allowed"),
    ESME_RINVPARLEN: ("ESME_RINVPARLEN", "Invalid Parameter Length"),
    ESME_RMISSINGOPTPARAM: ("ESME_RMISSINGOPTPARAM", "Expected Optional Parameter missing"),
    ESME_RINVOPTPARAMVAL: ("ESME_RINVOPTPARAMVAL", "Invalid Optional Parameter Value"),
    ESME_RDELIVERYFAILURE: ("ESME_RDELIVERYFAILURE", "Delivery Failure (used for data_sm_resp)"),
    ESME_RUNKNOWNERR: ("ESME_RUNKNOWNERR", "Unknown Error"),
}


def status_name(status: int) -> str:
    """Return the symbolic name of a command_status value.

    Never raises: values outside the table (reserved, or the SMSC-vendor
    range 0x400-0x4FF) come back as C{"0x%08X"}.
    """
    entry = STATUS_TABLE.get(status)
    if entry is not None:
        return entry[0]
    return "0x%08X" % (status,)


class DecodeError(Exception):
    """Bytes that are not a valid SMPP 3.4 PDU.

    @ivar status: the command_status to answer with (an C{ESME_R*} value).
    @ivar command_id: the offending PDU's command_id, or C{None} if the header
        was too short to hold it.
    @ivar sequence_number: the offending PDU's sequence_number, or C{None}
        if the header was too short to hold it.
    @ivar fatal: C{True} when framing is lost (a bad command_length or a
        truncated header): the stream cannot be resynchronised and the
        connection must be closed after answering.  C{False} when the PDU
        was framed correctly, so the peer can be answered (generic_nack or
        the matching response with C{status}) and the stream goes on.
    """

    def __init__(self, status: int, message: str, *,
                 command_id: int | None = None,
                 sequence_number: int | None = None,
                 fatal: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.command_id = command_id
        self.sequence_number = sequence_number
        self.fatal = fatal

    def __str__(self) -> str:
        parts = [status_name(self.status), self.message]
        if self.command_id is not None:
            parts.append("command_id=0x%08X" % (self.command_id,))
        if self.sequence_number is not None:
            parts.append("sequence_number=%d" % (self.sequence_number,))
        if self.fatal:
            parts.append("fatal")
        return ": ".join(parts[:2]) + "".join(" " + p for p in parts[2:])

    def __repr__(self) -> str:
        return "DecodeError(%s, %r, command_id=%r, sequence_number=%r, fatal=%r)" % (
            status_name(self.status), self.message, self.command_id,
            self.sequence_number, self.fatal)


class EncodeError(ValueError):
    """A PDU object whose fields cannot be put on the wire.

    Raised by the encoder for a field value out of range, a C-Octet string
    that is too long, not Latin-1 or holds a NUL, a short_message over 254
    octets, or a TLV value that does not fit its definition.
    """
