"""staff console: second factor (TOTP), invitations, console settings, stashed forms

Revision ID: 0008
Revises: 0005
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import crm.db

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff") as batch_op:
        batch_op.add_column(sa.Column("totp_secret", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column("totp_enabled", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("totp_last_step", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("invite_nonce", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column("session_epoch", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "console_setting",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("value", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "staff_form_stash",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("path", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("created_at", crm.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )
    op.create_index(op.f("ix_staff_form_stash_created_at"), "staff_form_stash", ["created_at"], unique=False)
    _search_index()


# The console's contact search (crm.contacts.service.search_text): a substring of the address, names or
# postal code. On PostgreSQL a trigram index answers it without reading every contact; the expression
# must stay word for word the one search_text() renders.
SEARCH_EXPRESSION = ("lower(coalesce(email_key, '') || ' ' || first_name || ' ' || last_name || ' ' "
                     "|| postal_code)")


def _search_index() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    available = bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")).first()
    if available is None:
        return  # the search still works, by reading the table in id order
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(f"CREATE INDEX IF NOT EXISTS ix_contact_search_trgm ON contact USING gin (({SEARCH_EXPRESSION}) "
               "gin_trgm_ops)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_contact_search_trgm")
    op.drop_table("staff_form_stash")
    op.drop_table("console_setting")
    with op.batch_alter_table("staff") as batch_op:
        batch_op.drop_column("session_epoch")
        batch_op.drop_column("invite_nonce")
        batch_op.drop_column("totp_last_step")
        batch_op.drop_column("totp_enabled")
        batch_op.drop_column("totp_secret")
