"""PostgreSQL: ivoms_activate checks the fraud counter the attempt is scoped to

Failures on a self-asserted channel (Web/WAP, SOAP) bar the MSISDN only for
that source: their counter's subject is C{msisdn:<e164>@<channel>:<source>}
(core.fraud.bar_scope) instead of C{msisdn:<e164>}.  The fraud_counter table
needs no change (the subject is its key); the one-statement activation of
migration 0004 must check, and reset on success, the attempt's own counter:
it takes the counter's subject as a twelfth argument (p_fraud_subject), and a
bar of the MSISDN everywhere still refuses every attempt.  The functions are
those of 0004 with these three changes, derived from its text so that both
revisions stay in step.

SQLite has no server-side functions: there this migration does nothing.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""
import importlib.util
import os

from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def _previous():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "0004_pg_activate_function.py")
    spec = importlib.util.spec_from_file_location("ivoms_migration_0004", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _changed(text: str, changes) -> str:
    for old, new in changes:
        if text.count(old) != 1:
            raise RuntimeError("migration 0005: 0004's function text changed (%r)" % (old[:40],))
        text = text.replace(old, new)
    return text


_ACTIVATE_CHANGES = (
    ("p_auto_create boolean, p_reset_on_success boolean,\n    OUT o_status",
     "p_auto_create boolean, p_reset_on_success boolean, p_fraud_subject text,\n    OUT o_status"),
    ("""    SELECT f.barred_until INTO v_barred FROM fraud_counter f
     WHERE f.subject = 'msisdn:' || p_msisdn;
    o_has_failures := FOUND;
    IF FOUND AND v_barred > p_now THEN""",
     """    -- the MSISDN's bar everywhere, and the counter this attempt is scoped to
    SELECT max(f.barred_until), coalesce(bool_or(f.subject = p_fraud_subject), false)
      INTO v_barred, o_has_failures FROM fraud_counter f
     WHERE f.subject IN ('msisdn:' || p_msisdn, p_fraud_subject);
    IF v_barred > p_now THEN"""),
    ("DELETE FROM fraud_counter f WHERE f.subject = 'msisdn:' || p_msisdn;",
     "DELETE FROM fraud_counter f WHERE f.subject = p_fraud_subject;"),
)

_MANY_CHANGES = (
    ("p_auto_create boolean[], p_reset_on_success boolean[])",
     "p_auto_create boolean[], p_reset_on_success boolean[], p_fraud_subjects text[])"),
    ("p_auto_create[i], p_reset_on_success[i]);",
     "p_auto_create[i], p_reset_on_success[i], p_fraud_subjects[i]);"),
)

DROP = ("DROP FUNCTION IF EXISTS ivoms_activate(text, text, text, bytea, text, text, text, text, "
        "bigint, boolean, boolean, text)")
DROP_MANY = ("DROP FUNCTION IF EXISTS ivoms_activate_many(text[], text[], text[], bytea[], text[], "
             "text[], text[], text[], bigint[], boolean[], boolean[], text[])")


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    old = _previous()
    op.execute(old.DROP_MANY)
    op.execute(old.DROP)
    op.execute(_changed(old.ACTIVATE, _ACTIVATE_CHANGES))
    op.execute(_changed(old.ACTIVATE_MANY, _MANY_CHANGES))


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    old = _previous()
    op.execute(DROP_MANY)
    op.execute(DROP)
    op.execute(old.ACTIVATE)
    op.execute(old.ACTIVATE_MANY)
