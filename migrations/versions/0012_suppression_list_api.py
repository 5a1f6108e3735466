"""suppression list API: the address (until erased), a note and who added it by hand

Revision ID: 0012
Revises: 0008
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0012"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The address is kept beside its hash so staff can read the list; erasure empties it and the
    # hash alone stays (SPEC 14: `email` empty once erased).
    with op.batch_alter_table("suppression") as batch_op:
        batch_op.add_column(sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True))
        batch_op.add_column(sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
        batch_op.add_column(sa.Column("added_by", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("suppression") as batch_op:
        batch_op.drop_column("added_by")
        batch_op.drop_column("note")
        batch_op.drop_column("email")
