"""state several nodes share: GUI sessions, nonces, throttle counters, USSD dialogues

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('shared_session',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('csrf', sa.String(length=64), nullable=False),
    sa.Column('created', sa.BigInteger(), nullable=False),
    sa.Column('last_seen', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=64), nullable=True),
    sa.Column('role', sa.String(length=32), nullable=True),
    sa.Column('flashes', sa.LargeBinary(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shared_session'))
    )
    op.create_index(op.f('ix_shared_session_user_id'), 'shared_session', ['user_id'])
    op.create_index(op.f('ix_shared_session_expires_at'), 'shared_session', ['expires_at'])
    op.create_table('shared_nonce',
    sa.Column('key', sa.LargeBinary(length=32), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_shared_nonce'))
    )
    op.create_index(op.f('ix_shared_nonce_expires_at'), 'shared_nonce', ['expires_at'])
    op.create_table('shared_counter',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('window_start', sa.BigInteger(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key', 'window_start', name=op.f('pk_shared_counter'))
    )
    op.create_table('ussd_dialogue',
    sa.Column('dialogue_id', sa.String(length=64), nullable=False),
    sa.Column('state', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('held_until', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('dialogue_id', name=op.f('pk_ussd_dialogue'))
    )
    op.create_index(op.f('ix_ussd_dialogue_expires_at'), 'ussd_dialogue', ['expires_at'])


def downgrade() -> None:
    op.drop_index(op.f('ix_ussd_dialogue_expires_at'), table_name='ussd_dialogue')
    op.drop_table('ussd_dialogue')
    op.drop_table('shared_counter')
    op.drop_index(op.f('ix_shared_nonce_expires_at'), table_name='shared_nonce')
    op.drop_table('shared_nonce')
    op.drop_index(op.f('ix_shared_session_expires_at'), table_name='shared_session')
    op.drop_index(op.f('ix_shared_session_user_id'), table_name='shared_session')
    op.drop_table('shared_session')
