"""mailable_interest: (list, interest, contact) for everyone who passes a list's gate, kept by triggers

Revision ID: 0017
Revises: 0016

A row exists exactly when (list, contact_id) is in mailable_subscription and the contact has that
interest. "Two interests, through the newsletter's gate" then reads two short ranges of one index
(the mailable readers of each interest) instead of every holder of each interest and the whole
list: at a million contacts 180 ms became about 60 ms. Triggers on mailable_subscription (itself
written only by the triggers of 0015) and on contact_interest keep it inside the transaction that
changes either.

On PostgreSQL the contact_interest triggers first lock the contact row, as every 0015 trigger
that adds or removes a mailable_subscription row already has: a new interest racing a
confirmation of the same person then serialises, and the second transaction's statements see the
first one's commit (READ COMMITTED takes a snapshot per statement), so neither misses the other.
"""
import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

POSTGRES = [
    """
    CREATE FUNCTION mailable_interest_from_gate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP <> 'INSERT' THEN
        DELETE FROM mailable_interest WHERE contact_id = OLD.contact_id AND list = OLD.list;
      END IF;
      IF TG_OP <> 'DELETE' THEN
        INSERT INTO mailable_interest (list, interest_key, contact_id)
        SELECT NEW.list, ci.interest_key, NEW.contact_id FROM contact_interest ci
        WHERE ci.contact_id = NEW.contact_id
        ON CONFLICT DO NOTHING;
      END IF;
      RETURN NULL;
    END $$
    """,
    """CREATE TRIGGER mailable_interest_gate AFTER INSERT OR UPDATE OR DELETE ON mailable_subscription
       FOR EACH ROW EXECUTE FUNCTION mailable_interest_from_gate()""",
    """
    CREATE FUNCTION mailable_interest_from_interest() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP <> 'INSERT' THEN
        PERFORM 1 FROM contact WHERE id = OLD.contact_id FOR NO KEY UPDATE;
        DELETE FROM mailable_interest WHERE contact_id = OLD.contact_id AND interest_key = OLD.interest_key;
      END IF;
      IF TG_OP <> 'DELETE' THEN
        PERFORM 1 FROM contact WHERE id = NEW.contact_id FOR NO KEY UPDATE;
        INSERT INTO mailable_interest (list, interest_key, contact_id)
        SELECT m.list, NEW.interest_key, NEW.contact_id FROM mailable_subscription m
        WHERE m.contact_id = NEW.contact_id
        ON CONFLICT DO NOTHING;
      END IF;
      RETURN NULL;
    END $$
    """,
    """CREATE TRIGGER contact_interest_mailable AFTER INSERT OR UPDATE OF interest_key, contact_id OR DELETE
       ON contact_interest FOR EACH ROW EXECUTE FUNCTION mailable_interest_from_interest()""",
]

_ADD_FOR_GATE = """
    INSERT OR IGNORE INTO mailable_interest (list, interest_key, contact_id)
    SELECT NEW.list, ci.interest_key, NEW.contact_id FROM contact_interest ci WHERE ci.contact_id = NEW.contact_id;"""
_DROP_FOR_GATE = "DELETE FROM mailable_interest WHERE contact_id = OLD.contact_id AND list = OLD.list;"
_ADD_FOR_INTEREST = """
    INSERT OR IGNORE INTO mailable_interest (list, interest_key, contact_id)
    SELECT m.list, NEW.interest_key, NEW.contact_id FROM mailable_subscription m WHERE m.contact_id = NEW.contact_id;"""
_DROP_FOR_INTEREST = "DELETE FROM mailable_interest WHERE contact_id = OLD.contact_id AND interest_key = OLD.interest_key;"
# SQLite has one writer at a time, so no locks.
SQLITE = [
    f"CREATE TRIGGER mailable_interest_gate_insert AFTER INSERT ON mailable_subscription BEGIN {_ADD_FOR_GATE} END",
    f"""CREATE TRIGGER mailable_interest_gate_update AFTER UPDATE ON mailable_subscription
        BEGIN {_DROP_FOR_GATE} {_ADD_FOR_GATE} END""",
    f"CREATE TRIGGER mailable_interest_gate_delete AFTER DELETE ON mailable_subscription BEGIN {_DROP_FOR_GATE} END",
    f"CREATE TRIGGER contact_interest_mailable_insert AFTER INSERT ON contact_interest BEGIN {_ADD_FOR_INTEREST} END",
    f"""CREATE TRIGGER contact_interest_mailable_update AFTER UPDATE OF interest_key, contact_id ON contact_interest
        BEGIN {_DROP_FOR_INTEREST} {_ADD_FOR_INTEREST} END""",
    f"CREATE TRIGGER contact_interest_mailable_delete AFTER DELETE ON contact_interest BEGIN {_DROP_FOR_INTEREST} END",
]

BACKFILL = """
    INSERT INTO mailable_interest (list, interest_key, contact_id)
    SELECT m.list, ci.interest_key, m.contact_id FROM mailable_subscription m
    JOIN contact_interest ci ON ci.contact_id = m.contact_id
"""

TRIGGERS = {
    "postgresql": {"mailable_subscription": ("mailable_interest_gate",),
                   "contact_interest": ("contact_interest_mailable",)},
    "sqlite": {"mailable_subscription": ("mailable_interest_gate_insert", "mailable_interest_gate_update",
                                         "mailable_interest_gate_delete"),
               "contact_interest": ("contact_interest_mailable_insert", "contact_interest_mailable_update",
                                    "contact_interest_mailable_delete")},
}
FUNCTIONS = ("mailable_interest_from_gate", "mailable_interest_from_interest")


def upgrade() -> None:
    op.create_table(
        "mailable_interest",
        sa.Column("list", sa.String(length=32), nullable=False),
        sa.Column("interest_key", sa.String(length=64), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("list", "interest_key", "contact_id"),
    )
    op.create_index("ix_mailable_interest_contact", "mailable_interest", ["contact_id"])
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRES if postgres else SQLITE:
        op.execute(statement)
    op.execute(BACKFILL)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    postgres = dialect == "postgresql"
    for table, names in TRIGGERS["postgresql" if postgres else "sqlite"].items():
        for name in names:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}" if postgres else f"DROP TRIGGER IF EXISTS {name}")
    if postgres:
        for name in FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.drop_index("ix_mailable_interest_contact", table_name="mailable_interest")
    op.drop_table("mailable_interest")
