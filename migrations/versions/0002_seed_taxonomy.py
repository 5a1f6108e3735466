"""seed the interest taxonomy and the suppression salt

Revision ID: 0002
Revises: 0001
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# key, label, description, Spanish label, Spanish description
INTERESTS = [
    ("cancer-information", "Cancer information", "Understanding cancer types, diagnosis and staging.",
     "Información sobre el cáncer", "Entender los tipos de cáncer, el diagnóstico y la estadificación."),
    ("treatment-and-side-effects", "Treatment and side effects",
     "Treatments such as immunotherapy and chemotherapy, and managing their side effects.",
     "Tratamiento y efectos secundarios",
     "Tratamientos como la inmunoterapia y la quimioterapia, y cómo manejar sus efectos secundarios."),
    ("clinical-trials", "Clinical trials", "How clinical trials work and how to find one.",
     "Ensayos clínicos", "Cómo funcionan los ensayos clínicos y cómo encontrar uno."),
    ("caregiving", "Caregiving", "Support and practical advice for caregivers and families.",
     "Cuidado de seres queridos", "Apoyo y consejos prácticos para cuidadores y familias."),
    ("tobacco-cessation", "Quitting tobacco", "Help to quit smoking and other tobacco use.",
     "Dejar el tabaco", "Ayuda para dejar de fumar y de consumir tabaco."),
    ("patient-programs", "Patient programmes", "Rides to treatment, lodging and other patient services.",
     "Programas para pacientes", "Transporte al tratamiento, alojamiento y otros servicios para pacientes."),
    ("volunteering", "Volunteering", "Ways to give your time.",
     "Voluntariado", "Formas de donar su tiempo."),
    ("fundraising-events", "Fundraising events", "Walks, runs, galas and community events.",
     "Eventos de recaudación", "Caminatas, carreras, galas y eventos comunitarios."),
    ("donations", "Donations", "Ways to give and how gifts are used.",
     "Donaciones", "Formas de donar y cómo se usan las donaciones."),
    ("research-news", "Research news", "New findings from cancer research.",
     "Noticias de investigación", "Nuevos hallazgos de la investigación sobre el cáncer."),
    ("advocacy", "Advocacy", "Speaking up for patients and cancer policy.",
     "Defensa", "Alzar la voz por los pacientes y por políticas contra el cáncer."),
]


def upgrade() -> None:
    interest = sa.table(
        "interest", sa.column("key", sa.String), sa.column("label", sa.String), sa.column("description", sa.String),
        sa.column("label_es", sa.String), sa.column("description_es", sa.String), sa.column("position", sa.Integer),
    )
    op.bulk_insert(interest, [
        {"key": k, "label": label, "description": d, "label_es": les, "description_es": des, "position": i}
        for i, (k, label, d, les, des) in enumerate(INTERESTS)
    ])
    app_secret = sa.table("app_secret", sa.column("name", sa.String), sa.column("value", sa.String))
    # Generated per installation, never derived from CRM_SECRET_KEY: rotating that key must not
    # forget who is suppressed.
    op.bulk_insert(app_secret, [{"name": "suppression_salt", "value": secrets.token_hex(32)}])


def downgrade() -> None:
    op.execute("DELETE FROM app_secret WHERE name = 'suppression_salt'")
    op.execute("DELETE FROM interest")
