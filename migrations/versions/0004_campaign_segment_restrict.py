"""campaign.segment_id references segment ON DELETE RESTRICT (a used segment cannot be deleted)

Revision ID: 0004
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Campaigns pointing at a segment already gone keep their audience rules nowhere: unlink them
    # so the constraint can be added (the old code refused such deletes, so this finds nothing).
    op.execute(sa.text("UPDATE campaign SET segment_id = NULL WHERE segment_id IS NOT NULL "
                       "AND segment_id NOT IN (SELECT id FROM segment)"))
    if op.get_bind().dialect.name == "sqlite":
        # Adding a constraint on SQLite recreates the table, and dropping the old `campaign` with
        # foreign keys on (they cannot be turned off inside the migration's transaction) would
        # cascade-delete every delivery. A trigger refuses the same deletes with the same error.
        op.execute(sa.text(
            "CREATE TRIGGER segment_in_use_restrict BEFORE DELETE ON segment "
            "WHEN EXISTS (SELECT 1 FROM campaign WHERE segment_id = OLD.id) "
            "BEGIN SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed: campaign.segment_id'); END"))
        return
    op.create_foreign_key("fk_campaign_segment_id_segment", "campaign", "segment", ["segment_id"], ["id"],
                          ondelete="RESTRICT")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(sa.text("DROP TRIGGER IF EXISTS segment_in_use_restrict"))
        return
    op.drop_constraint("fk_campaign_segment_id_segment", "campaign", type_="foreignkey")
