"""Built-in journeys that `crm demo` loads: switched off (draft) until staff activate them.

Keyed by `journey.key`, so loading twice adds nothing and never overwrites what staff changed.
The Spanish is neutral and formal ("usted"): readers come from many countries.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from crm.config import Settings
from crm.journeys import service
from crm.journeys.models import Journey

WELCOME: dict[str, Any] = {
    "name": "Newsletter welcome series",
    "list": "newsletter",
    "trigger": {"event": "subscription.confirmed", "list": "newsletter"},
    "reentry": "never",
    "steps": [
        {"wait": {"minutes": 0},
         "subject": "Welcome, {{ contact.first_name or 'friend' }}: here is what we can help with",
         "body_html": "<p>Thank you for joining us. Our helpline is open day and night for anyone affected by "
                      "cancer: patients, families, friends and carers.</p><p>Over the next days we will send you "
                      "two short emails: questions worth asking your doctor, and every way to reach us.</p>",
         "body_text": "Thank you for joining us. Our helpline is open day and night for anyone affected by cancer: "
                      "patients, families, friends and carers.\n\nOver the next days we will send you two short "
                      "emails: questions worth asking your doctor, and every way to reach us.",
         "translations": {"es": {
             "subject": "Le damos la bienvenida: así podemos ayudarle",
             "body_html": "<p>Gracias por unirse. Nuestra línea de ayuda atiende de día y de noche a toda persona "
                          "afectada por el cáncer: pacientes, familias, amistades y cuidadores.</p><p>En los "
                          "próximos días le enviaremos dos correos breves: preguntas para hacerle a su médico y "
                          "todas las formas de comunicarse con nosotros.</p>",
             "body_text": "Gracias por unirse. Nuestra línea de ayuda atiende de día y de noche a toda persona "
                          "afectada por el cáncer: pacientes, familias, amistades y cuidadores.\n\nEn los próximos "
                          "días le enviaremos dos correos breves: preguntas para hacerle a su médico y todas las "
                          "formas de comunicarse con nosotros."}}},
        {"wait": {"days": 2},
         "subject": "Questions to ask your doctor",
         "body_html": "<p>Appointments go fast. Many people find it helps to write questions down before: what "
                      "the diagnosis means, the treatment choices, side effects to watch for, and who to call "
                      "between visits.</p><p>Our checklist \"Questions to Ask Your Doctor\" is on our website.</p>",
         "body_text": "Appointments go fast. Many people find it helps to write questions down before: what the "
                      "diagnosis means, the treatment choices, side effects to watch for, and who to call between "
                      "visits.\n\nOur checklist \"Questions to Ask Your Doctor\" is on our website.",
         "translations": {"es": {
             "subject": "Preguntas para hacerle a su médico",
             "body_html": "<p>Las citas pasan rápido. A muchas personas les ayuda anotar antes sus preguntas: qué "
                          "significa el diagnóstico, las opciones de tratamiento, los efectos secundarios que "
                          "conviene vigilar y a quién llamar entre una visita y otra.</p><p>Nuestra lista "
                          "\"Preguntas para hacerle a su médico\" está en nuestro sitio web.</p>",
             "body_text": "Las citas pasan rápido. A muchas personas les ayuda anotar antes sus preguntas: qué "
                          "significa el diagnóstico, las opciones de tratamiento, los efectos secundarios que "
                          "conviene vigilar y a quién llamar entre una visita y otra.\n\nNuestra lista \"Preguntas "
                          "para hacerle a su médico\" está en nuestro sitio web."}}},
        {"wait": {"days": 5},
         "subject": "How to reach the helpline",
         "body_html": "<p>You can call us at any hour, or write to us, and a trained specialist will answer. "
                      "There is no question too small.</p><p>You can change what you hear from us at any time "
                      "from the links below.</p>",
         "body_text": "You can call us at any hour, or write to us, and a trained specialist will answer. There is "
                      "no question too small.\n\nYou can change what you hear from us at any time from the links "
                      "below.",
         "translations": {"es": {
             "subject": "Cómo comunicarse con la línea de ayuda",
             "body_html": "<p>Puede llamarnos a cualquier hora, o escribirnos, y le responderá una persona "
                          "especializada. Ninguna pregunta es demasiado pequeña.</p><p>Puede cambiar lo que recibe "
                          "de nosotros cuando quiera desde los enlaces de abajo.</p>",
             "body_text": "Puede llamarnos a cualquier hora, o escribirnos, y le responderá una persona "
                          "especializada. Ninguna pregunta es demasiado pequeña.\n\nPuede cambiar lo que recibe de "
                          "nosotros cuando quiera desde los enlaces de abajo."}}},
    ],
}

ONBOARDING: dict[str, Any] = {
    "name": "Volunteer onboarding",
    "list": "volunteer-updates",
    "trigger": {"event": "volunteer.status_changed", "to": "onboarding"},
    "exit": [{"event": "volunteer.status_changed", "to": ["paused", "inactive"]}],
    "reentry": "after_exit",
    "steps": [
        {"wait": {"minutes": 0},
         "subject": "Your next steps as a volunteer",
         "body_html": "<p>Thank you for giving your time. Our volunteer team will call you this week to talk "
                      "through the role you chose and the training that goes with it.</p>",
         "body_text": "Thank you for giving your time. Our volunteer team will call you this week to talk through "
                      "the role you chose and the training that goes with it.",
         "translations": {"es": {
             "subject": "Sus próximos pasos como voluntario o voluntaria",
             "body_html": "<p>Gracias por dedicarnos su tiempo. Nuestro equipo de voluntariado le llamará esta "
                          "semana para hablar de la función que eligió y de la capacitación que la acompaña.</p>",
             "body_text": "Gracias por dedicarnos su tiempo. Nuestro equipo de voluntariado le llamará esta semana "
                          "para hablar de la función que eligió y de la capacitación que la acompaña."}}},
        {"wait": {"days": 3},
         "subject": "Training and the documents we need",
         "body_html": "<p>Before your first shift we need a few things: your training session, and for drivers "
                      "a valid licence and insurance. Reply to this email if anything is unclear.</p>",
         "body_text": "Before your first shift we need a few things: your training session, and for drivers a "
                      "valid licence and insurance. Reply to this email if anything is unclear.",
         "translations": {"es": {
             "subject": "La capacitación y los documentos que necesitamos",
             "body_html": "<p>Antes de su primer turno necesitamos algunas cosas: su sesión de capacitación y, "
                          "si va a conducir, una licencia y un seguro vigentes. Responda a este correo si algo no "
                          "queda claro.</p>",
             "body_text": "Antes de su primer turno necesitamos algunas cosas: su sesión de capacitación y, si va "
                          "a conducir, una licencia y un seguro vigentes. Responda a este correo si algo no queda "
                          "claro."}}},
        {"wait": {"days": 7},
         "subject": "Choosing your first shift",
         "body_html": "<p>Open shifts that fit your areas and availability are on your volunteer page, linked "
                      "from every volunteer email. Pick one when you are ready.</p>",
         "body_text": "Open shifts that fit your areas and availability are on your volunteer page, linked from "
                      "every volunteer email. Pick one when you are ready.",
         "translations": {"es": {
             "subject": "Cómo elegir su primer turno",
             "body_html": "<p>Los turnos abiertos que coinciden con sus áreas y su disponibilidad están en su "
                          "página de voluntariado, enlazada desde cada correo de voluntariado. Elija uno cuando "
                          "esté listo o lista.</p>",
             "body_text": "Los turnos abiertos que coinciden con sus áreas y su disponibilidad están en su página "
                          "de voluntariado, enlazada desde cada correo de voluntariado. Elija uno cuando esté "
                          "listo o lista."}}},
    ],
}

EXAMPLES = {"newsletter-welcome": WELCOME, "volunteer-onboarding": ONBOARDING}


def load(session: Session, settings: Settings) -> int:
    """Add the built-in journeys not there yet (as drafts); returns how many were added."""
    added = 0
    for key, spec in EXAMPLES.items():
        if session.scalar(select(Journey.id).where(Journey.key == key)) is None:
            service.create(session, settings, spec, actor="demo", key=key)
            added += 1
    return added
