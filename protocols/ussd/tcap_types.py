"""pyasn1 types of TCAP messages, components and dialogue PDUs (ITU-T Q.773 §4.2, §4.3).

Only what a USSD bridge needs: Begin, Continue, End, Abort (and Unidirectional on
receipt), the Invoke / ReturnResult / ReturnError / Reject components with the operation
parameter kept as opaque BER (C{ANY}), and the dialogue-as-id AARQ / AARE / ABRT PDUs
carried in an EXTERNAL. Two views of each message exist: C{TC_MESSAGE} (everything
typed, used to encode) and C{TC_MESSAGE_SHELL} (dialogue and component portions kept
as opaque content, used to check the transaction portion on its own).
"""

from pyasn1.type import constraint, namedtype, tag, tagmap, univ, useful

#: dialogue-as-id: the abstract syntax of the structured dialogue PDUs (Q.773 §4.3).
DIALOGUE_AS_ID = (0, 0, 17, 773, 1, 1, 1)


def _app(number, constructed=True):
    fmt = tag.tagFormatConstructed if constructed else tag.tagFormatSimple
    return tag.Tag(tag.tagClassApplication, fmt, number)


def _ctx(number, constructed=False):
    fmt = tag.tagFormatConstructed if constructed else tag.tagFormatSimple
    return tag.Tag(tag.tagClassContext, fmt, number)


def _seq(*named, implicit=None):
    """Build an anonymous SEQUENCE value spec, optionally [implicit]-tagged."""
    spec = univ.Sequence(componentType=namedtype.NamedTypes(*named))
    if implicit is not None:
        spec = spec.subtype(implicitTag=implicit)
    return spec


def _choice(*named, explicit=None):
    spec = univ.Choice(componentType=namedtype.NamedTypes(*named))
    if explicit is not None:
        spec = spec.subtype(explicitTag=explicit)
    return spec


NT = namedtype.NamedType
OPT = namedtype.OptionalNamedType


class Opaque(univ.Any):
    """A tagged ANY whose value is its content octets.

    Unlike C{univ.Any} it matches only its own tag, so two of them may stand side by
    side as optional SEQUENCE components without pyasn1 finding the choice ambiguous.
    """

    @property
    def tagMap(self):
        return tagmap.TagMap({self.tagSet: self})


# --- EXTERNAL (X.680 §37.5, 1990 form used by TCAP) -------------------------------------

EXTERNAL = _seq(
    OPT("direct-reference", univ.ObjectIdentifier()),
    OPT("indirect-reference", univ.Integer()),
    OPT("data-value-descriptor", useful.ObjectDescriptor()),
    NT("encoding", _choice(
        NT("single-ASN1-type", Opaque().subtype(explicitTag=_ctx(0, True))),
        NT("octet-aligned", univ.OctetString().subtype(implicitTag=_ctx(1))),
        NT("arbitrary", univ.BitString().subtype(implicitTag=_ctx(2))),
    )),
    implicit=tag.Tag(tag.tagClassUniversal, tag.tagFormatConstructed, 8),
)

# DialoguePortion ::= [APPLICATION 11] EXPLICIT EXTERNAL
DIALOGUE_PORTION = EXTERNAL.subtype(explicitTag=_app(11))
DIALOGUE_PORTION_OPAQUE = Opaque().subtype(implicitTag=_app(11))

# --- Dialogue PDUs (Q.773 §4.3.1 DialoguePDUs, EXPLICIT TAGS) ---------------------------

# [30] IMPLICIT SEQUENCE OF EXTERNAL, kept opaque: its content is a run of EXTERNALs.
USER_INFORMATION = Opaque().subtype(implicitTag=_ctx(30, True))
PROTOCOL_VERSION = univ.BitString().subtype(implicitTag=_ctx(0))
APPLICATION_CONTEXT_NAME = univ.ObjectIdentifier().subtype(explicitTag=_ctx(1, True))

AARQ_APDU = _seq(
    OPT("protocol-version", PROTOCOL_VERSION),
    NT("application-context-name", APPLICATION_CONTEXT_NAME),
    OPT("user-information", USER_INFORMATION),
    implicit=_app(0),
)

ASSOCIATE_SOURCE_DIAGNOSTIC = _choice(
    NT("dialogue-service-user", univ.Integer().subtype(explicitTag=_ctx(1, True))),
    NT("dialogue-service-provider", univ.Integer().subtype(explicitTag=_ctx(2, True))),
    explicit=_ctx(3, True),
)

AARE_APDU = _seq(
    OPT("protocol-version", PROTOCOL_VERSION),
    NT("application-context-name", APPLICATION_CONTEXT_NAME),
    NT("result", univ.Integer().subtype(explicitTag=_ctx(2, True))),
    NT("result-source-diagnostic", ASSOCIATE_SOURCE_DIAGNOSTIC),
    OPT("user-information", USER_INFORMATION),
    implicit=_app(1),
)

ABRT_APDU = _seq(
    NT("abort-source", univ.Integer().subtype(implicitTag=_ctx(0))),
    OPT("user-information", USER_INFORMATION),
    implicit=_app(4),
)

DIALOGUE_PDU = _choice(
    NT("dialogueRequest", AARQ_APDU),
    NT("dialogueResponse", AARE_APDU),
    NT("dialogueAbort", ABRT_APDU),
)

# --- Components (Q.773 §4.2.2) ----------------------------------------------------------

INVOKE_ID = univ.Integer().subtype(subtypeSpec=constraint.ValueRangeConstraint(-128, 127))

OPERATION_CODE = _choice(
    NT("localValue", univ.Integer()),
    NT("globalValue", univ.ObjectIdentifier()),
)
ERROR_CODE = OPERATION_CODE.clone()

INVOKE = _seq(
    NT("invokeID", INVOKE_ID),
    OPT("linkedID", INVOKE_ID.subtype(implicitTag=_ctx(0))),
    NT("opCode", OPERATION_CODE),
    OPT("parameter", univ.Any()),
    implicit=_ctx(1, True),
)


def _return_result(number):
    return _seq(
        NT("invokeID", INVOKE_ID),
        OPT("result", _seq(
            NT("opCode", OPERATION_CODE),
            NT("parameter", univ.Any()),
        )),
        implicit=_ctx(number, True),
    )


RETURN_RESULT_LAST = _return_result(2)
RETURN_RESULT_NOT_LAST = _return_result(7)

RETURN_ERROR = _seq(
    NT("invokeID", INVOKE_ID),
    NT("errorCode", ERROR_CODE),
    OPT("parameter", univ.Any()),
    implicit=_ctx(3, True),
)

REJECT = _seq(
    NT("invokeID", _choice(
        NT("derivable", INVOKE_ID),
        NT("not-derivable", univ.Null()),
    )),
    NT("problem", _choice(
        NT("generalProblem", univ.Integer().subtype(implicitTag=_ctx(0))),
        NT("invokeProblem", univ.Integer().subtype(implicitTag=_ctx(1))),
        NT("returnResultProblem", univ.Integer().subtype(implicitTag=_ctx(2))),
        NT("returnErrorProblem", univ.Integer().subtype(implicitTag=_ctx(3))),
    )),
    implicit=_ctx(4, True),
)

COMPONENT = _choice(
    NT("invoke", INVOKE),
    NT("returnResultLast", RETURN_RESULT_LAST),
    NT("returnError", RETURN_ERROR),
    NT("reject", REJECT),
    NT("returnResultNotLast", RETURN_RESULT_NOT_LAST),
)

COMPONENT_PORTION = univ.SequenceOf(
    componentType=COMPONENT,
    subtypeSpec=constraint.ValueSizeConstraint(1, 64),
).subtype(implicitTag=_app(12))
COMPONENT_PORTION_OPAQUE = Opaque().subtype(implicitTag=_app(12))

# --- Messages (Q.773 §4.2.1) ------------------------------------------------------------

TRANSACTION_ID = univ.OctetString().subtype(
    subtypeSpec=constraint.ValueSizeConstraint(1, 4))
OTID = TRANSACTION_ID.subtype(implicitTag=_app(8, False))
DTID = TRANSACTION_ID.subtype(implicitTag=_app(9, False))
P_ABORT_CAUSE = univ.Integer().subtype(implicitTag=_app(10, False))


def _tc_message(dialogue, components):
    """TCMessage with the given dialogue-portion and component-portion types."""
    return _choice(
        NT("unidirectional", _seq(
            OPT("dialoguePortion", dialogue),
            NT("components", components),
            implicit=_app(1))),
        NT("begin", _seq(
            NT("otid", OTID),
            OPT("dialoguePortion", dialogue),
            OPT("components", components),
            implicit=_app(2))),
        NT("end", _seq(
            NT("dtid", DTID),
            OPT("dialoguePortion", dialogue),
            OPT("components", components),
            implicit=_app(4))),
        NT("continue", _seq(
            NT("otid", OTID),
            NT("dtid", DTID),
            OPT("dialoguePortion", dialogue),
            OPT("components", components),
            implicit=_app(5))),
        NT("abort", _seq(
            NT("dtid", DTID),
            OPT("reason", _choice(
                NT("p-abortCause", P_ABORT_CAUSE),
                NT("u-abortCause", dialogue),
            )),
            implicit=_app(7))),
    )


TC_MESSAGE = _tc_message(DIALOGUE_PORTION, COMPONENT_PORTION)
TC_MESSAGE_SHELL = _tc_message(DIALOGUE_PORTION_OPAQUE, COMPONENT_PORTION_OPAQUE)
