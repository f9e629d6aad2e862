"""request inbox: idempotency keys and durable SMS replies

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('request_inbox',
    sa.Column('key', sa.LargeBinary(length=32), nullable=False),
    sa.Column('txn_id', sa.String(length=32), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('received_at', sa.BigInteger(), nullable=False),
    sa.Column('source', sa.String(length=128), nullable=True),
    sa.Column('reply_to', sa.Text(), nullable=True),
    sa.Column('language', sa.String(length=8), nullable=True),
    sa.Column('reply_state', sa.String(length=8), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('replied_at', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_request_inbox'))
    )
    with op.batch_alter_table('request_inbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_request_inbox_txn_id'), ['txn_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_request_inbox_reply_state_received_at'),
                              ['reply_state', 'received_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('request_inbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_request_inbox_reply_state_received_at'))
        batch_op.drop_index(batch_op.f('ix_request_inbox_txn_id'))
    op.drop_table('request_inbox')
