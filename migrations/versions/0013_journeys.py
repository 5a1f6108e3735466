"""journeys: automated sequences (SPEC 13)

Revision ID: 0013
Revises: 0012

"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

import crm.db

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

S = sqlmodel.sql.sqltypes.AutoString
T = crm.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "journey",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", S(length=64), nullable=True),
        sa.Column("name", S(length=200), nullable=False),
        sa.Column("list", S(length=32), nullable=False),
        sa.Column("trigger", sa.JSON(), nullable=False),
        sa.Column("exit", sa.JSON(), nullable=False),
        sa.Column("reentry", S(length=12), nullable=False),
        sa.Column("include_imported", sa.Boolean(), nullable=False),
        sa.Column("track_opens", sa.Boolean(), nullable=False),
        sa.Column("track_clicks", sa.Boolean(), nullable=False),
        sa.Column("state", S(length=12), nullable=False),
        sa.Column("event_cursor", sa.Integer(), nullable=False),
        sa.Column("scanned_at", T, nullable=True),
        sa.Column("activated_at", T, nullable=True),
        sa.Column("created_by", S(length=320), nullable=True),
        sa.Column("created_at", T, nullable=False),
        sa.Column("updated_at", T, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_journey_state", "journey", ["state"])
    op.create_table(
        "journey_step",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("journey_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("wait", sa.JSON(), nullable=False),
        sa.Column("wait_minutes", sa.Integer(), nullable=False),
        sa.Column("subject", S(length=500), nullable=False),
        sa.Column("body_html", S(), nullable=True),
        sa.Column("body_text", S(), nullable=True),
        sa.Column("translations", sa.JSON(), nullable=False),
        sa.Column("template", S(length=64), nullable=False),
        sa.Column("segment", sa.JSON(), nullable=True),
        sa.Column("removed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["journey_id"], ["journey.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("journey_id", "position", name="uq_journey_step_position"),
    )
    op.create_index("ix_journey_step_journey_id", "journey_step", ["journey_id"])
    op.create_table(
        "journey_campaign",
        sa.Column("step_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("journey_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["step_id"], ["journey_step.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["journey_id"], ["journey.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("step_id", "round"),
        sa.UniqueConstraint("campaign_id"),
    )
    op.create_index("ix_journey_campaign_journey_id", "journey_campaign", ["journey_id"])
    op.create_table(
        "journey_enrolment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("journey_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("state", S(length=12), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("pending_campaign_id", sa.Integer(), nullable=True),
        sa.Column("anchor_at", T, nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("started_at", T, nullable=False),
        sa.Column("enrolled_at", T, nullable=False),
        sa.Column("finished_at", T, nullable=True),
        sa.Column("exit_reason", S(length=80), nullable=True),
        sa.Column("exit_step", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["journey_id"], ["journey.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["contact_id"], ["contact.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("journey_id", "contact_id", "round", name="uq_journey_enrolment_round"),
        sa.UniqueConstraint("journey_id", "event_id", name="uq_journey_enrolment_event"),
    )
    op.create_index("uq_journey_enrolment_active", "journey_enrolment", ["journey_id", "contact_id"], unique=True,
                    postgresql_where=sa.text("state = 'active'"), sqlite_where=sa.text("state = 'active'"))
    op.create_index("ix_journey_enrolment_due", "journey_enrolment", ["journey_id", "state", "step", "anchor_at"])
    op.create_index("ix_journey_enrolment_pending", "journey_enrolment", ["pending_campaign_id", "contact_id"])
    op.create_index("ix_journey_enrolment_contact", "journey_enrolment", ["contact_id"])


def downgrade() -> None:
    op.drop_table("journey_enrolment")
    op.drop_table("journey_campaign")
    op.drop_table("journey_step")
    op.drop_table("journey")
