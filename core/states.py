"""Voucher states and the transitions between them (DESIGN §3)."""
import enum


class VoucherState(str, enum.Enum):
    """Life-cycle state of one voucher; the value is what the store holds."""

    GENERATED = "generated"
    AVAILABLE = "available"
    RESERVED = "reserved"
    USED = "used"
    BLOCKED = "blocked"
    EXPIRED = "expired"


S = VoucherState

#: Which states an administrative transition may leave, by target state.
#: C{reserved} and C{used} are only reached through activation; C{blocked}
#: is left only by unblocking, which returns to the state recorded at block
#: time.
ADMIN_SOURCES = {
    S.AVAILABLE: (S.GENERATED, S.EXPIRED),
    S.BLOCKED: (S.GENERATED, S.AVAILABLE, S.EXPIRED),
    S.EXPIRED: (S.GENERATED, S.AVAILABLE),
    S.GENERATED: (S.AVAILABLE,),
}

#: Target states an operator may ask for with C{set-state} (plus C{unblock}).
ADMIN_TARGETS = tuple(ADMIN_SOURCES) + ("unblock",)

#: Block reasons offered by the GUI and CLI; free text is allowed too.
BLOCK_REASONS = ("stolen", "damaged", "suspect")
