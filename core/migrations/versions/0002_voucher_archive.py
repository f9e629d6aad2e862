"""voucher archive tables for the housekeeping purge job

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('voucher_archive',
    sa.Column('serial', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('blind_index', sa.LargeBinary(length=32), nullable=False),
    sa.Column('prev_state', sa.String(length=12), nullable=True),
    sa.Column('reason', sa.String(length=128), nullable=True),
    sa.Column('used_by', sa.String(length=20), nullable=True),
    sa.Column('used_at', sa.BigInteger(), nullable=True),
    sa.Column('txn_id', sa.String(length=32), nullable=True),
    sa.Column('exported', sa.SmallInteger(), nullable=False),
    sa.Column('archived_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('serial', name=op.f('pk_voucher_archive'))
    )
    with op.batch_alter_table('voucher_archive', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_voucher_archive_archived_at'), ['archived_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_voucher_archive_blind_index'), ['blind_index'], unique=False)
        batch_op.create_index(batch_op.f('ix_voucher_archive_used_by'), ['used_by'], unique=False)

    op.create_table('voucher_history_archive',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('serial', sa.BigInteger(), nullable=False),
    sa.Column('at', sa.BigInteger(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('from_state', sa.String(length=12), nullable=True),
    sa.Column('to_state', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_voucher_history_archive'))
    )
    with op.batch_alter_table('voucher_history_archive', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_voucher_history_archive_serial'), ['serial'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('voucher_history_archive', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_voucher_history_archive_serial'))

    op.drop_table('voucher_history_archive')
    with op.batch_alter_table('voucher_archive', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_voucher_archive_used_by'))
        batch_op.drop_index(batch_op.f('ix_voucher_archive_blind_index'))
        batch_op.drop_index(batch_op.f('ix_voucher_archive_archived_at'))

    op.drop_table('voucher_archive')
