"""The newsletter signup's rows on PostgreSQL in one statement (data-modifying CTEs).

`crm.forms.service.submit_newsletter` writes, for one post: the contact upsert (fields fill only
empty columns; the suppression reason read with it), `contact.created` (new people only) and
`form.submitted` events with their `event_unpublished` rows, the form submission, the interests,
the newsletter subscription upsert (frequency and unsubscribed -> pending in its ON CONFLICT
branch; a confirmed subscription keeps its frequency), and the signup's consent event. On SQLite
those are nine statements; here they are one, so one round trip instead of nine. The confirm email's
outbox row stays a second statement: its links carry tokens signed in Python with the contact's id,
which only this statement's RETURNING knows for a new person.

Every sub-statement sees the same snapshot and none sees another's rows, so:
- the ids flow only through RETURNING (`c.id`, `s.state`, ...);
- the confirm email's topic labels are the interests the contact already had (snapshot) together
  with the ones this post adds (`:interests`), exactly what a read after the insert would give;
- the triggers of migrations 0015/0017 (mailable_subscription, mailable_interest) are AFTER ROW
  triggers: they fire at the end of the statement and their own queries see all of its rows.
tests/forms/test_newsletter_paths.py checks that this and the generic path write the same rows.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Row, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, JSON
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.types import String
from sqlmodel import Session

from crm.db import UTCDateTime

# A given field fills the column only when it is still empty (anyone can type anyone's address);
# updated_at moves only when one really fills. Same rule as contacts.upsert_contact_row.
_FILL = "CASE WHEN {given} AND (contact.{col} IS NULL OR contact.{col} = '') THEN EXCLUDED.{col} ELSE contact.{col} END"
_FILLS = "({given} AND (contact.{col} IS NULL OR contact.{col} = '') AND contact.{col} IS DISTINCT FROM EXCLUDED.{col})"
_GIVEN = "(CAST(:{col} AS varchar) IS NOT NULL AND CAST(:{col} AS varchar) <> '')"
FIELDS = ("first_name", "language", "role")


def _contact_set() -> str:
    sets = [f"{col} = " + _FILL.format(given=_GIVEN.format(col=col), col=col) for col in FIELDS]
    fills = " OR ".join(_FILLS.format(given=_GIVEN.format(col=col), col=col) for col in FIELDS)
    sets.append(f"updated_at = CASE WHEN {fills} THEN EXCLUDED.updated_at ELSE contact.updated_at END")
    return ",\n        ".join(sets)


_SQL = """
WITH c AS (
    INSERT INTO contact (email, email_key, email_hash, status, language, role, created_at, updated_at,
                         first_name, last_name, phone, postal_code, bereaved, soft_bounces)
    VALUES (:email, :email_key, :email_hash, 'active', COALESCE(NULLIF(:language, ''), 'en'), NULLIF(:role, ''),
            :now, :now, COALESCE(:first_name, ''), '', '', '', false, 0)
    ON CONFLICT (email_key) DO UPDATE SET
        {contact_set}
    RETURNING id, email, first_name, last_name, language, role, created_at,
              (SELECT reason FROM suppression WHERE email_hash = :email_hash) AS suppression_reason
),
-- contact.created (new people only) then form.submitted, in that id order, as the generic path.
ev AS (
    INSERT INTO event (type, contact_id, data, occurred_at)
    SELECT v.type, c.id,
           CASE v.n WHEN 1 THEN json_build_object('email', c.email, 'source', 'newsletter', 'contact_id', c.id)
                    ELSE json_build_object('email', c.email, 'form', 'newsletter', 'contact_id', c.id) END,
           :now
    FROM c, (VALUES (1, 'contact.created'), (2, 'form.submitted')) AS v (n, type)
    WHERE v.n = 2 OR c.created_at = :now
    ORDER BY v.n
    RETURNING id
),
evu AS (INSERT INTO event_unpublished (event_id) SELECT id FROM ev),
fs AS (
    INSERT INTO form_submission (form, payload, contact_id, client_ip, user_agent, received_at)
    SELECT 'newsletter', :payload, c.id, :client_ip, :submission_user_agent, :now FROM c
),
ci AS (
    INSERT INTO contact_interest (contact_id, interest_key)
    SELECT c.id, k FROM c, unnest(:interests) AS k
    ON CONFLICT DO NOTHING
),
s AS (
    INSERT INTO subscription (contact_id, list, state, frequency, created_at)
    SELECT c.id, 'newsletter', 'pending', :frequency_or_default, :now FROM c
    ON CONFLICT (contact_id, list) DO UPDATE SET
        state = CASE WHEN subscription.state = 'unsubscribed' THEN 'pending' ELSE subscription.state END{frequency_set}
    RETURNING state, frequency
),
ce AS (
    INSERT INTO consent_event (contact_id, action, list, detail, source, source_url, client_ip, user_agent,
                               consent_version, consent_text_hash, staff_email, created_at)
    SELECT c.id, 'signup', 'newsletter',
           json_build_object('interests', CAST(:interests_json AS json),
                             'frequency', COALESCE(CAST(:frequency AS varchar), s.frequency)),
           :source, :source_url, :client_ip, :consent_user_agent, :consent_version, :consent_text_hash, NULL, :now
    FROM c, s
)
SELECT c.id, c.email, c.first_name, c.last_name, c.language, c.role, c.suppression_reason, s.state,
       c.created_at = :now AS created,
       ARRAY(SELECT CASE WHEN c.language = 'es' THEN COALESCE(NULLIF(i.label_es, ''), i.label) ELSE i.label END
             FROM interest i
             WHERE i.key = ANY(:interests)
                OR i.key IN (SELECT interest_key FROM contact_interest WHERE contact_id = c.id)
             ORDER BY i.position, i.key) AS topics
FROM c, s
"""

_FREQUENCY_SET = """,
        frequency = CASE WHEN subscription.state = 'confirmed' THEN subscription.frequency
                         ELSE EXCLUDED.frequency END"""


@lru_cache(maxsize=2)
def _statement(set_frequency: bool) -> TextClause:
    """Built once per shape, executed with parameters (a statement is dearer to build than to run)."""
    sql = _SQL.format(contact_set=_contact_set(), frequency_set=_FREQUENCY_SET if set_frequency else "")
    return text(sql).bindparams(bindparam("interests", type_=ARRAY(String)), bindparam("payload", type_=JSON()),
                                bindparam("now", type_=UTCDateTime()))


def signup(session: Session, params: dict[str, Any], *, set_frequency: bool) -> Row[Any]:
    """Run the statement; the row has the contact's columns, `suppression_reason`, the subscription's
    `state`, `created` and the confirm email's `topics` (labels in the contact's language)."""
    return session.execute(_statement(set_frequency), params).one()
