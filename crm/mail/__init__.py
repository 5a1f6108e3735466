"""Email: templates rendered (render), headers built and checked (headers), messages (message), senders.

Every message the service sends, of any kind, gets its headers from crm.mail.headers: see
docs/email-safety.md.
"""

from crm.mail.headers import (
    HeaderInjection,
    check_head,
    encode_address,
    message_date,
    safe_header,
    safe_user_header,
    warn_if_unpatched_python,
)
from crm.mail.message import Outgoing, new_message_id
from crm.mail.render import (
    LANGUAGES,
    PARTS,
    CompiledEmail,
    RenderedEmail,
    base_context,
    compile_email,
    environment,
    render,
    template_files,
)
from crm.mail.rounds import Answered, OneAtATime, RoundSender, make_round_sender
from crm.mail.senders import (
    FileSender,
    MemorySender,
    PermanentMailError,
    Sender,
    SmtpSender,
    TransientMailError,
    make_sender,
)

__all__ = [
    "LANGUAGES", "Answered", "OneAtATime", "RoundSender", "make_round_sender", "PARTS", "CompiledEmail", "FileSender", "HeaderInjection", "MemorySender", "Outgoing",
    "PermanentMailError", "RenderedEmail", "Sender", "SmtpSender", "TransientMailError", "base_context",
    "check_head", "compile_email", "encode_address", "environment", "make_sender", "message_date",
    "new_message_id", "render", "safe_header", "safe_user_header", "template_files", "warn_if_unpatched_python",
]
