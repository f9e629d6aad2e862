"""PostgreSQL: one server-side function per activation (ivoms_activate)

On PostgreSQL an activation with the embedded ledger is one statement,
C{SELECT * FROM ivoms_activate(...)}: bar check, reservation, credit and
conclusion run inside the server, in the caller's transaction, so a unit of
work costs one round trip instead of one per statement.  The function only
writes when the voucher was reserved; any refusal (barred, unknown, used,
expired ...) writes nothing and answers C{refused}, and the caller then runs
the portable path (core.saga), which records the failure exactly as before.
C{ivoms_activate_many} runs a whole group of activations (the units of work
sharing one commit) in one statement.

SQLite has no server-side functions: there this migration does nothing.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# The final rows equal what core.saga.activate_in_one + billing.ledger.credit_unit
# write (tests/unit/test_db_activate.py compares both paths row by row).
ACTIVATE = r"""
CREATE OR REPLACE FUNCTION ivoms_activate(
    p_txn_id text, p_msisdn text, p_account text, p_bi bytea, p_channel text,
    p_channel_ref text, p_operator_user text, p_source text, p_now bigint,
    p_auto_create boolean, p_reset_on_success boolean,
    OUT o_status text, OUT o_serial bigint, OUT o_batch_id integer, OUT o_amount bigint,
    OUT o_currency text, OUT o_days integer, OUT o_type_code text, OUT o_loyalty text,
    OUT o_has_failures boolean, OUT o_balance bigint, OUT o_expires bigint, OUT o_code integer)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_barred bigint;
    v_until bigint;
    v_actor text := p_channel || ':' || p_msisdn;
BEGIN
    SELECT f.barred_until INTO v_barred FROM fraud_counter f
     WHERE f.subject = 'msisdn:' || p_msisdn;
    o_has_failures := FOUND;
    IF FOUND AND v_barred > p_now THEN
        o_status := 'refused';
        RETURN;
    END IF;
    -- straight to 'used': put back below if the ledger refuses the credit
    UPDATE voucher v SET state = 'used', txn_id = p_txn_id, used_by = p_msisdn, used_at = p_now
     WHERE v.blind_index = p_bi AND v.state = 'available' AND v.expires_at > p_now
    RETURNING v.serial, v.batch_id INTO o_serial, o_batch_id;
    IF NOT FOUND THEN
        o_status := 'refused';
        RETURN;
    END IF;
    SELECT b.face_value, b.currency, b.account_validity_days, b.type_code, b.loyalty
      INTO o_amount, o_currency, o_days, o_type_code, o_loyalty
      FROM batch b WHERE b.id = o_batch_id;
    v_until := p_now + o_days::bigint * 86400000;
    UPDATE ledger_account a SET balance = a.balance + o_amount,
           expires_at = CASE WHEN a.expires_at > v_until THEN a.expires_at ELSE v_until END,
           updated_at = p_now
     WHERE a.msisdn = p_account AND a.currency = o_currency
    RETURNING a.balance, a.expires_at INTO o_balance, o_expires;
    IF NOT FOUND AND p_auto_create THEN
        -- waits for a concurrent first credit of the same new account
        INSERT INTO ledger_account (msisdn, balance, currency, expires_at, created_at, updated_at)
        VALUES (p_account, o_amount, o_currency, v_until, p_now, p_now)
        ON CONFLICT DO NOTHING;
        IF FOUND THEN
            o_balance := o_amount;
            o_expires := v_until;
        ELSE
            UPDATE ledger_account a SET balance = a.balance + o_amount,
                   expires_at = CASE WHEN a.expires_at > v_until THEN a.expires_at ELSE v_until END,
                   updated_at = p_now
             WHERE a.msisdn = p_account AND a.currency = o_currency
            RETURNING a.balance, a.expires_at INTO o_balance, o_expires;
        END IF;
    END IF;
    IF o_balance IS NOT NULL THEN
        o_status := 'credited';
        o_code := 0;
        INSERT INTO ledger_entry (idempotency_key, msisdn, amount, currency, validity_days,
                                  outcome, result_code, at)
        VALUES (p_txn_id, p_account, o_amount, o_currency, o_days, 'credited', 0, p_now);
        INSERT INTO txn (id, kind, msisdn, account, channel, channel_ref, operator_user, source,
                         state, result_code, started_at, serial, amount, currency, validity_days,
                         reserved_at, finished_at, billing_ms, detail)
        VALUES (p_txn_id, 'activation', p_msisdn, p_account, p_channel, p_channel_ref,
                p_operator_user, p_source, 'success', 0, p_now, o_serial, o_amount, o_currency,
                o_days, p_now, p_now, 0,
                format('{"balance": %s, "new_expiry": %s}', o_balance, o_expires));
        INSERT INTO voucher_history (serial, at, actor, from_state, to_state, reason)
        VALUES (o_serial, p_now, v_actor, 'available', 'reserved', p_txn_id),
               (o_serial, p_now, v_actor, 'reserved', 'used', p_txn_id);
        IF p_reset_on_success AND o_has_failures THEN
            DELETE FROM fraud_counter f WHERE f.subject = 'msisdn:' || p_msisdn;
        END IF;
        RETURN;
    END IF;
    -- the ledger refuses: account in another currency, or unknown (no auto-create)
    o_status := 'rejected';
    IF EXISTS (SELECT 1 FROM ledger_account a WHERE a.msisdn = p_account) THEN
        o_code := 115;
    ELSE
        o_code := 102;
    END IF;
    UPDATE voucher v SET state = 'available', txn_id = NULL, used_by = NULL, used_at = NULL
     WHERE v.serial = o_serial;
    INSERT INTO ledger_entry (idempotency_key, msisdn, amount, currency, validity_days,
                              outcome, result_code, at)
    VALUES (p_txn_id, p_account, o_amount, o_currency, o_days, 'rejected', o_code, p_now);
    INSERT INTO txn (id, kind, msisdn, account, channel, channel_ref, operator_user, source,
                     state, result_code, started_at, serial, amount, currency, validity_days,
                     reserved_at, finished_at, billing_ms, detail)
    VALUES (p_txn_id, 'activation', p_msisdn, p_account, p_channel, p_channel_ref,
            p_operator_user, p_source, 'failed', o_code, p_now, o_serial, o_amount, o_currency,
            o_days, p_now, p_now, 0, 'ledger: rejected');
    INSERT INTO voucher_history (serial, at, actor, from_state, to_state, reason)
    VALUES (o_serial, p_now, v_actor, 'available', 'reserved', p_txn_id),
           (o_serial, p_now, v_actor, 'reserved', 'available', p_txn_id || ': ledger: rejected');
END
$fn$
"""

# A group of activations in one statement, in order; it stops after the first
# refusal (which wrote nothing), so the caller can decide that one on the
# portable path and go on with the rest: the order of effects is the order of
# the units, as if each had been called alone.
ACTIVATE_MANY = r"""
CREATE OR REPLACE FUNCTION ivoms_activate_many(
    p_txn_ids text[], p_msisdns text[], p_accounts text[], p_bis bytea[], p_channels text[],
    p_channel_refs text[], p_operator_users text[], p_sources text[], p_nows bigint[],
    p_auto_create boolean[], p_reset_on_success boolean[])
RETURNS TABLE (o_status text, o_serial bigint, o_batch_id integer, o_amount bigint,
               o_currency text, o_days integer, o_type_code text, o_loyalty text,
               o_has_failures boolean, o_balance bigint, o_expires bigint, o_code integer)
LANGUAGE plpgsql AS $fn$
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_txn_ids, 1), 0) LOOP
        SELECT * INTO o_status, o_serial, o_batch_id, o_amount, o_currency, o_days, o_type_code,
                      o_loyalty, o_has_failures, o_balance, o_expires, o_code
          FROM ivoms_activate(p_txn_ids[i], p_msisdns[i], p_accounts[i], p_bis[i], p_channels[i],
                              p_channel_refs[i], p_operator_users[i], p_sources[i], p_nows[i],
                              p_auto_create[i], p_reset_on_success[i]);
        RETURN NEXT;
        EXIT WHEN o_status = 'refused';
    END LOOP;
END
$fn$
"""

DROP = ("DROP FUNCTION IF EXISTS ivoms_activate(text, text, text, bytea, text, text, text, text, "
        "bigint, boolean, boolean)")
DROP_MANY = ("DROP FUNCTION IF EXISTS ivoms_activate_many(text[], text[], text[], bytea[], text[], "
             "text[], text[], text[], bigint[], boolean[], boolean[])")


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(ACTIVATE)
        op.execute(ACTIVATE_MANY)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(DROP_MANY)
        op.execute(DROP)
