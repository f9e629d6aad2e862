"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', sa.BigInteger(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=256), nullable=True),
    sa.Column('origin', sa.String(length=128), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_actor_at'), ['actor', 'at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_at'), ['at'], unique=False)

    op.create_table('counter',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_counter'))
    )
    op.create_table('fraud_counter',
    sa.Column('subject', sa.String(length=160), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('window_start', sa.BigInteger(), nullable=False),
    sa.Column('barred_until', sa.BigInteger(), nullable=False),
    sa.Column('last_failure_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('subject', name=op.f('pk_fraud_counter'))
    )
    op.create_table('housekeeping_run',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('job', sa.String(length=64), nullable=False),
    sa.Column('node', sa.String(length=128), nullable=False),
    sa.Column('started_at', sa.BigInteger(), nullable=False),
    sa.Column('finished_at', sa.BigInteger(), nullable=True),
    sa.Column('rows', sa.BigInteger(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('message', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_housekeeping_run'))
    )
    with op.batch_alter_table('housekeeping_run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_housekeeping_run_job_started_at'), ['job', 'started_at'], unique=False)

    op.create_table('job_lease',
    sa.Column('job', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('job', name=op.f('pk_job_lease'))
    )
    op.create_table('ledger_account',
    sa.Column('msisdn', sa.String(length=20), nullable=False),
    sa.Column('balance', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('msisdn', name=op.f('pk_ledger_account'))
    )
    op.create_table('ledger_entry',
    sa.Column('idempotency_key', sa.String(length=64), nullable=False),
    sa.Column('msisdn', sa.String(length=20), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('validity_days', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=8), nullable=False),
    sa.Column('result_code', sa.Integer(), nullable=False),
    sa.Column('balance_after', sa.BigInteger(), nullable=True),
    sa.Column('expires_after', sa.BigInteger(), nullable=True),
    sa.Column('at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('idempotency_key', name=op.f('pk_ledger_entry'))
    )
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_entry_msisdn_at'), ['msisdn', 'at'], unique=False)

    op.create_table('loyalty_counter',
    sa.Column('msisdn', sa.String(length=20), nullable=False),
    sa.Column('plan_id', sa.String(length=64), nullable=False),
    sa.Column('period_key', sa.String(length=32), nullable=False),
    sa.Column('recharges', sa.BigInteger(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('rewarded_tiers', sa.String(length=256), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('msisdn', 'plan_id', 'period_key', name=op.f('pk_loyalty_counter'))
    )
    op.create_table('loyalty_event',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('msisdn', sa.String(length=20), nullable=False),
    sa.Column('plan_id', sa.String(length=64), nullable=False),
    sa.Column('txn_id', sa.String(length=32), nullable=False),
    sa.Column('at', sa.BigInteger(), nullable=False),
    sa.Column('weight', sa.BigInteger(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_event'))
    )
    with op.batch_alter_table('loyalty_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loyalty_event_msisdn_plan_id_at'), ['msisdn', 'plan_id', 'at'], unique=False)

    op.create_table('partner',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('certificate_pem', sa.Text(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partner')),
    sa.UniqueConstraint('name', name=op.f('uq_partner_name'))
    )
    op.create_table('txn',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('msisdn', sa.String(length=20), nullable=True),
    sa.Column('account', sa.String(length=20), nullable=True),
    sa.Column('serial', sa.BigInteger(), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('channel_ref', sa.String(length=128), nullable=True),
    sa.Column('operator_user', sa.String(length=64), nullable=True),
    sa.Column('source', sa.String(length=128), nullable=True),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('result_code', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('validity_days', sa.Integer(), nullable=True),
    sa.Column('parent_id', sa.String(length=32), nullable=True),
    sa.Column('plan_id', sa.String(length=64), nullable=True),
    sa.Column('started_at', sa.BigInteger(), nullable=False),
    sa.Column('reserved_at', sa.BigInteger(), nullable=True),
    sa.Column('finished_at', sa.BigInteger(), nullable=True),
    sa.Column('billing_ms', sa.Integer(), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_txn'))
    )
    with op.batch_alter_table('txn', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_txn_channel_ref'), ['channel_ref'], unique=False)
        batch_op.create_index(batch_op.f('ix_txn_msisdn_started_at'), ['msisdn', 'started_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_txn_serial'), ['serial'], unique=False)
        batch_op.create_index(batch_op.f('ix_txn_started_at'), ['started_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_txn_state_started_at'), ['state', 'started_at'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('password_hash', sa.String(length=256), nullable=False),
    sa.Column('enabled', sa.SmallInteger(), nullable=False),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('name', name=op.f('uq_users_name'))
    )
    op.create_table('voucher_history',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('serial', sa.BigInteger(), nullable=False),
    sa.Column('at', sa.BigInteger(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('from_state', sa.String(length=12), nullable=True),
    sa.Column('to_state', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_voucher_history'))
    )
    with op.batch_alter_table('voucher_history', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_voucher_history_serial'), ['serial'], unique=False)

    op.create_table('voucher_type',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('face_value', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('validity_days', sa.Integer(), nullable=False),
    sa.Column('account_validity_days', sa.Integer(), nullable=False),
    sa.Column('hrn_length', sa.SmallInteger(), nullable=False),
    sa.Column('loyalty', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_voucher_type'))
    )
    op.create_table('batch',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('type_code', sa.String(length=32), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.Column('first_serial', sa.BigInteger(), nullable=False),
    sa.Column('last_serial', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.Column('face_value', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('account_validity_days', sa.Integer(), nullable=False),
    sa.Column('loyalty', sa.Text(), nullable=False),
    sa.Column('hrn_length', sa.SmallInteger(), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('requested_by', sa.String(length=64), nullable=False),
    sa.Column('owner', sa.String(length=128), nullable=False),
    sa.Column('heartbeat_at', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('finished_at', sa.BigInteger(), nullable=True),
    sa.Column('generated', sa.BigInteger(), nullable=False),
    sa.Column('message', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['type_code'], ['voucher_type.code'], name=op.f('fk_batch_type_code_voucher_type')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_batch'))
    )
    with op.batch_alter_table('batch', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_batch_state'), ['state'], unique=False)

    op.create_table('export',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('partner_id', sa.Integer(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.Column('first_serial', sa.BigInteger(), nullable=True),
    sa.Column('last_serial', sa.BigInteger(), nullable=True),
    sa.Column('file_sha256', sa.String(length=64), nullable=False),
    sa.Column('at', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['partner.id'], name=op.f('fk_export_partner_id_partner')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_export'))
    )
    op.create_table('voucher',
    sa.Column('serial', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('hrn_ct', sa.LargeBinary(), nullable=False),
    sa.Column('blind_index', sa.LargeBinary(length=32), nullable=False),
    sa.Column('prev_state', sa.String(length=12), nullable=True),
    sa.Column('reason', sa.String(length=128), nullable=True),
    sa.Column('used_by', sa.String(length=20), nullable=True),
    sa.Column('used_at', sa.BigInteger(), nullable=True),
    sa.Column('txn_id', sa.String(length=32), nullable=True),
    sa.Column('exported', sa.SmallInteger(), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['batch.id'], name=op.f('fk_voucher_batch_id_batch')),
    sa.PrimaryKeyConstraint('serial', name=op.f('pk_voucher'))
    )
    with op.batch_alter_table('voucher', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_voucher_blind_index'), ['blind_index'], unique=True)
        batch_op.create_index(batch_op.f('ix_voucher_state_expires_at'), ['state', 'expires_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('voucher', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_voucher_state_expires_at'))
        batch_op.drop_index(batch_op.f('ix_voucher_blind_index'))

    op.drop_table('voucher')
    op.drop_table('export')
    with op.batch_alter_table('batch', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_batch_state'))

    op.drop_table('batch')
    op.drop_table('voucher_type')
    with op.batch_alter_table('voucher_history', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_voucher_history_serial'))

    op.drop_table('voucher_history')
    op.drop_table('users')
    with op.batch_alter_table('txn', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_txn_state_started_at'))
        batch_op.drop_index(batch_op.f('ix_txn_started_at'))
        batch_op.drop_index(batch_op.f('ix_txn_serial'))
        batch_op.drop_index(batch_op.f('ix_txn_msisdn_started_at'))
        batch_op.drop_index(batch_op.f('ix_txn_channel_ref'))

    op.drop_table('txn')
    op.drop_table('partner')
    with op.batch_alter_table('loyalty_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loyalty_event_msisdn_plan_id_at'))

    op.drop_table('loyalty_event')
    op.drop_table('loyalty_counter')
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_entry_msisdn_at'))

    op.drop_table('ledger_entry')
    op.drop_table('ledger_account')
    op.drop_table('job_lease')
    with op.batch_alter_table('housekeeping_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_housekeeping_run_job_started_at'))

    op.drop_table('housekeeping_run')
    op.drop_table('fraud_counter')
    op.drop_table('counter')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_at'))
        batch_op.drop_index(batch_op.f('ix_audit_log_actor_at'))

    op.drop_table('audit_log')
