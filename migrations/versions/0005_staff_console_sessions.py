"""staff console: password hashes, server-side sessions, failed sign-ins

Revision ID: 0005
Revises: 0007
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import crm.db

revision = "0005"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff") as batch_op:
        batch_op.add_column(sa.Column("password_hash", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
    op.create_table(
        "staff_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("csrf_token", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", crm.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", crm.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index(op.f("ix_staff_session_staff_id"), "staff_session", ["staff_id"], unique=False)
    op.create_table(
        "staff_login_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("client", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("at", crm.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_staff_login_failure_email"), "staff_login_failure", ["email"], unique=False)
    op.create_index(op.f("ix_staff_login_failure_client"), "staff_login_failure", ["client"], unique=False)
    op.create_index(op.f("ix_staff_login_failure_at"), "staff_login_failure", ["at"], unique=False)


def downgrade() -> None:
    op.drop_table("staff_login_failure")
    op.drop_table("staff_session")
    with op.batch_alter_table("staff") as batch_op:
        batch_op.drop_column("password_hash")
