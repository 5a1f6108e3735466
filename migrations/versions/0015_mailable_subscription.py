"""mailable_subscription: who passes the mailing gate, per list, kept by triggers

Revision ID: 0015
Revises: 0014

A row (list, contact_id) exists exactly when the contact is active, confirmed on that list and
its address is not suppressed: the three-table test of crm.contacts.service.mailable, kept in a
narrow table so an audience count reads one index instead of a million contact rows. Triggers on
subscription, contact and suppression maintain it inside the transaction that changes any of
them, whatever code (or psql session) makes the change.

On PostgreSQL every trigger first locks the contact rows it reasons about, so two transactions
racing on one person (a suppression and a confirmation) serialise, and the second one's
statements see the first one's commit (READ COMMITTED takes a snapshot per statement).
"""
import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

ELIGIBLE = """c.status = 'active' AND NOT EXISTS (SELECT 1 FROM suppression x WHERE x.email_hash = c.email_hash)"""

POSTGRES = [
    f"""
    CREATE FUNCTION mailable_from_subscription() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP <> 'INSERT' THEN
        DELETE FROM mailable_subscription WHERE list = OLD.list AND contact_id = OLD.contact_id;
      END IF;
      IF TG_OP <> 'DELETE' AND NEW.state = 'confirmed' THEN
        PERFORM 1 FROM contact WHERE id = NEW.contact_id FOR NO KEY UPDATE;
        INSERT INTO mailable_subscription (list, contact_id)
        SELECT NEW.list, c.id FROM contact c WHERE c.id = NEW.contact_id AND {ELIGIBLE}
        ON CONFLICT DO NOTHING;
      END IF;
      RETURN NULL;
    END $$
    """,
    """CREATE TRIGGER subscription_mailable_insert AFTER INSERT ON subscription
       FOR EACH ROW WHEN (NEW.state = 'confirmed') EXECUTE FUNCTION mailable_from_subscription()""",
    """CREATE TRIGGER subscription_mailable_update AFTER UPDATE OF list, state, contact_id ON subscription
       FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.list IS DISTINCT FROM NEW.list
                          OR OLD.contact_id IS DISTINCT FROM NEW.contact_id)
       EXECUTE FUNCTION mailable_from_subscription()""",
    """CREATE TRIGGER subscription_mailable_delete AFTER DELETE ON subscription
       FOR EACH ROW WHEN (OLD.state = 'confirmed') EXECUTE FUNCTION mailable_from_subscription()""",
    f"""
    CREATE FUNCTION mailable_from_contact() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      -- The UPDATE that fired this already holds the contact's row lock.
      DELETE FROM mailable_subscription WHERE contact_id = NEW.id;
      INSERT INTO mailable_subscription (list, contact_id)
      SELECT s.list, s.contact_id FROM subscription s JOIN contact c ON c.id = s.contact_id
      WHERE s.contact_id = NEW.id AND s.state = 'confirmed' AND {ELIGIBLE};
      RETURN NULL;
    END $$
    """,
    """CREATE TRIGGER contact_mailable AFTER UPDATE OF status, email_hash ON contact
       FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.email_hash IS DISTINCT FROM NEW.email_hash)
       EXECUTE FUNCTION mailable_from_contact()""",
    f"""
    CREATE FUNCTION mailable_from_suppression() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP <> 'DELETE' THEN
        PERFORM 1 FROM contact WHERE email_hash = NEW.email_hash FOR NO KEY UPDATE;
        DELETE FROM mailable_subscription m USING contact c
        WHERE c.email_hash = NEW.email_hash AND m.contact_id = c.id;
      END IF;
      IF TG_OP <> 'INSERT' THEN
        PERFORM 1 FROM contact WHERE email_hash = OLD.email_hash FOR NO KEY UPDATE;
        INSERT INTO mailable_subscription (list, contact_id)
        SELECT s.list, s.contact_id FROM contact c JOIN subscription s ON s.contact_id = c.id
        WHERE c.email_hash = OLD.email_hash AND s.state = 'confirmed' AND {ELIGIBLE}
        ON CONFLICT DO NOTHING;
      END IF;
      RETURN NULL;
    END $$
    """,
    """CREATE TRIGGER suppression_mailable_insert AFTER INSERT ON suppression
       FOR EACH ROW EXECUTE FUNCTION mailable_from_suppression()""",
    """CREATE TRIGGER suppression_mailable_update AFTER UPDATE OF email_hash ON suppression
       FOR EACH ROW WHEN (OLD.email_hash IS DISTINCT FROM NEW.email_hash)
       EXECUTE FUNCTION mailable_from_suppression()""",
    """CREATE TRIGGER suppression_mailable_delete AFTER DELETE ON suppression
       FOR EACH ROW EXECUTE FUNCTION mailable_from_suppression()""",
]

# SQLite has one writer at a time, so no locks; INSERT OR IGNORE stands in for ON CONFLICT DO NOTHING.
_ADD_FOR_SUBSCRIPTION = f"""
    INSERT OR IGNORE INTO mailable_subscription (list, contact_id)
    SELECT NEW.list, c.id FROM contact c WHERE NEW.state = 'confirmed' AND c.id = NEW.contact_id AND {ELIGIBLE};"""
_ADD_FOR_HASH = f"""
    INSERT OR IGNORE INTO mailable_subscription (list, contact_id)
    SELECT s.list, s.contact_id FROM contact c JOIN subscription s ON s.contact_id = c.id
    WHERE c.email_hash = OLD.email_hash AND s.state = 'confirmed' AND {ELIGIBLE};"""
_DROP_FOR_HASH = """
    DELETE FROM mailable_subscription
    WHERE contact_id IN (SELECT id FROM contact WHERE email_hash = NEW.email_hash);"""
SQLITE = [
    f"CREATE TRIGGER subscription_mailable_insert AFTER INSERT ON subscription BEGIN {_ADD_FOR_SUBSCRIPTION} END",
    f"""CREATE TRIGGER subscription_mailable_update AFTER UPDATE OF list, state, contact_id ON subscription
        WHEN OLD.state IS NOT NEW.state OR OLD.list IS NOT NEW.list OR OLD.contact_id IS NOT NEW.contact_id
        BEGIN
          DELETE FROM mailable_subscription WHERE list = OLD.list AND contact_id = OLD.contact_id;
          {_ADD_FOR_SUBSCRIPTION}
        END""",
    """CREATE TRIGGER subscription_mailable_delete AFTER DELETE ON subscription BEGIN
         DELETE FROM mailable_subscription WHERE list = OLD.list AND contact_id = OLD.contact_id;
       END""",
    f"""CREATE TRIGGER contact_mailable AFTER UPDATE OF status, email_hash ON contact
        WHEN OLD.status IS NOT NEW.status OR OLD.email_hash IS NOT NEW.email_hash
        BEGIN
          DELETE FROM mailable_subscription WHERE contact_id = NEW.id;
          INSERT INTO mailable_subscription (list, contact_id)
          SELECT s.list, s.contact_id FROM subscription s JOIN contact c ON c.id = s.contact_id
          WHERE s.contact_id = NEW.id AND s.state = 'confirmed' AND {ELIGIBLE};
        END""",
    f"CREATE TRIGGER suppression_mailable_insert AFTER INSERT ON suppression BEGIN {_DROP_FOR_HASH} END",
    f"""CREATE TRIGGER suppression_mailable_update AFTER UPDATE OF email_hash ON suppression
        WHEN OLD.email_hash IS NOT NEW.email_hash BEGIN {_DROP_FOR_HASH} {_ADD_FOR_HASH} END""",
    f"CREATE TRIGGER suppression_mailable_delete AFTER DELETE ON suppression BEGIN {_ADD_FOR_HASH} END",
]

BACKFILL = f"""
    INSERT INTO mailable_subscription (list, contact_id)
    SELECT s.list, s.contact_id FROM subscription s JOIN contact c ON c.id = s.contact_id
    WHERE s.state = 'confirmed' AND {ELIGIBLE}
"""

TRIGGERS = {
    "subscription": ("subscription_mailable_insert", "subscription_mailable_update", "subscription_mailable_delete"),
    "contact": ("contact_mailable",),
    "suppression": ("suppression_mailable_insert", "suppression_mailable_update", "suppression_mailable_delete"),
}
FUNCTIONS = ("mailable_from_subscription", "mailable_from_contact", "mailable_from_suppression")


def upgrade() -> None:
    op.create_table(
        "mailable_subscription",
        sa.Column("list", sa.String(length=32), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("list", "contact_id"),
    )
    op.create_index("ix_mailable_subscription_contact", "mailable_subscription", ["contact_id"])
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRES if postgres else SQLITE:
        op.execute(statement)
    op.execute(BACKFILL)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, names in TRIGGERS.items():
        for name in names:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}" if postgres else f"DROP TRIGGER IF EXISTS {name}")
    if postgres:
        for name in FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.drop_index("ix_mailable_subscription_contact", table_name="mailable_subscription")
    op.drop_table("mailable_subscription")
