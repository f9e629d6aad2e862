"""pyasn1 types of the MAP USSD operations (3GPP TS 29.002 §7.6.7, §17.7.4).

The module MAP-SS-DataTypes is C{DEFINITIONS IMPLICIT TAGS}. The C{...} of the
extensible SEQUENCEs is honoured by L{protocols.ussd.ber.decode_tolerant}, not by
these classes.

    USSD-Arg ::= SEQUENCE {
        ussd-DataCodingScheme  USSD-DataCodingScheme,
        ussd-String            USSD-String,
        ... ,
        alertingPattern        AlertingPattern        OPTIONAL,
        msisdn             [0] ISDN-AddressString     OPTIONAL }

    USSD-Res ::= SEQUENCE {
        ussd-DataCodingScheme  USSD-DataCodingScheme,
        ussd-String            USSD-String,
        ... }
"""

from enum import IntEnum

from pyasn1.type import constraint, namedtype, tag, univ

#: maxUSSD-StringLength (TS 29.002 MAP-SS-DataTypes).
MAX_USSD_STRING_LENGTH = 160
#: maxISDN-AddressLength (TS 29.002 MAP-CommonDataTypes).
MAX_ISDN_ADDRESS_LENGTH = 9
#: maxAddressLength (TS 29.002 MAP-CommonDataTypes).
MAX_ADDRESS_LENGTH = 20

#: networkUnstructuredSsContext-v2 (TS 29.002 §17.3.2): map-ac networkUnstructuredSs(19)
#: version2(2).
NETWORK_UNSTRUCTURED_SS_CONTEXT_V2 = (0, 4, 0, 0, 1, 0, 19, 2)


class Operation(IntEnum):
    """Local operation codes of the USSD operations (TS 29.002 §17.5 MAP-Protocol)."""

    PROCESS_UNSTRUCTURED_SS_REQUEST = 59
    UNSTRUCTURED_SS_REQUEST = 60
    UNSTRUCTURED_SS_NOTIFY = 61


class USSDDataCodingScheme(univ.OctetString):
    """USSD-DataCodingScheme ::= OCTET STRING (SIZE (1)) -- TS 23.038 CBS coding."""

    subtypeSpec = constraint.ValueSizeConstraint(1, 1)


class USSDString(univ.OctetString):
    """USSD-String ::= OCTET STRING (SIZE (1..maxUSSD-StringLength))."""

    subtypeSpec = constraint.ValueSizeConstraint(1, MAX_USSD_STRING_LENGTH)


class AlertingPattern(univ.OctetString):
    """AlertingPattern ::= OCTET STRING (SIZE (1)) (TS 29.002 MAP-CommonDataTypes)."""

    subtypeSpec = constraint.ValueSizeConstraint(1, 1)


class AddressString(univ.OctetString):
    """AddressString ::= OCTET STRING (SIZE (1..maxAddressLength))."""

    subtypeSpec = constraint.ValueSizeConstraint(1, MAX_ADDRESS_LENGTH)


class ISDNAddressString(univ.OctetString):
    """ISDN-AddressString ::= AddressString (SIZE (1..maxISDN-AddressLength))."""

    subtypeSpec = constraint.ValueSizeConstraint(1, MAX_ISDN_ADDRESS_LENGTH)


class USSDArg(univ.Sequence):
    """USSD-Arg (TS 29.002 MAP-SS-DataTypes); msisdn is C{[0] IMPLICIT}."""

    componentType = namedtype.NamedTypes(
        namedtype.NamedType("ussd-DataCodingScheme", USSDDataCodingScheme()),
        namedtype.NamedType("ussd-String", USSDString()),
        namedtype.OptionalNamedType("alertingPattern", AlertingPattern()),
        namedtype.OptionalNamedType(
            "msisdn", ISDNAddressString().subtype(
                implicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatSimple, 0))),
    )


class USSDRes(univ.Sequence):
    """USSD-Res (TS 29.002 MAP-SS-DataTypes)."""

    componentType = namedtype.NamedTypes(
        namedtype.NamedType("ussd-DataCodingScheme", USSDDataCodingScheme()),
        namedtype.NamedType("ussd-String", USSDString()),
    )


#: Argument type of each USSD operation; every one takes a USSD-Arg.
ARGUMENT_TYPES = {
    Operation.PROCESS_UNSTRUCTURED_SS_REQUEST: USSDArg,
    Operation.UNSTRUCTURED_SS_REQUEST: USSDArg,
    Operation.UNSTRUCTURED_SS_NOTIFY: USSDArg,
}

#: Result type of each USSD operation; unstructuredSS-Notify has none.
RESULT_TYPES = {
    Operation.PROCESS_UNSTRUCTURED_SS_REQUEST: USSDRes,
    Operation.UNSTRUCTURED_SS_REQUEST: USSDRes,
    Operation.UNSTRUCTURED_SS_NOTIFY: None,
}
