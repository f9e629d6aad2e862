"""request inbox: replies are marked sent by their key; the txn_id index goes

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('request_inbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_request_inbox_txn_id'))


def downgrade() -> None:
    with op.batch_alter_table('request_inbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_request_inbox_txn_id'), ['txn_id'], unique=False)
