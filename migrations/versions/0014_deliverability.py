"""deliverability: why a campaign paused itself, and complaints per delivery

Revision ID: 0014
Revises: 0013

"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

import crm.db

revision = '0014'
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paused_reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('complained_at', crm.db.UTCDateTime(timezone=True), nullable=True))
        # The 30-day complaint rate counts sent and complained deliveries in a time range.
        batch_op.create_index('ix_delivery_sent_at', ['sent_at'], unique=False)
        batch_op.create_index('ix_delivery_complained_at', ['complained_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_complained_at')
        batch_op.drop_index('ix_delivery_sent_at')
        batch_op.drop_column('complained_at')
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.drop_column('paused_reason')
