"""webhook_delivery: an index for claiming one endpoint's due deliveries, oldest due first

Revision ID: 0016
Revises: 0012
"""

from alembic import op

revision = "0016"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_webhook_delivery_lane", "webhook_delivery", ["endpoint_id", "state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_delivery_lane", table_name="webhook_delivery")
