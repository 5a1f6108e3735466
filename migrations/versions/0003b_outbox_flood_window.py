"""outbox: an index for the per-address flood window (at most one email of a kind per 10 minutes)

Revision ID: 0003b
Revises: 0002
"""

from alembic import op

revision = "0003b"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_to_template_created", "outbox_message", ["to_address", "template", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_to_template_created", table_name="outbox_message")
