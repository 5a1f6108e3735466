"""Campaign messages over several SMTP connections taken in rounds (CRM_SMTP_CONNECTIONS).

A message's envelope is answered before its body goes (that is SMTP), but the reply to the body
is read only when the message's connection comes round again, N messages later: meanwhile the
sender checks and renders the next people instead of waiting for the relay to take each message.
One message per connection at most is unanswered, so a sender killed mid-send leaves at most N
messages that the relay may have taken without the sender having recorded it (SPEC 8).

The caller frees the next connection (`collect`, which reports the answer of the message it
carried), records that answer, then `submit`s on it. `drain` collects every connection.
`OneAtATime` gives any other sender (file, memory, a test's) the same three calls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from crm.config import Settings
from crm.mail.senders import PermanentMailError, Sender, SmtpSender, TransientMailError, kind_of_raw

log = logging.getLogger("crm.mail")

# (the tag given to submit or send, None when the relay took the message or the error it answered with)
Answered = Callable[[Any, "TransientMailError | PermanentMailError | None"], None]


class RoundSender:
    """N SMTP connections, one unanswered message each at most."""

    def __init__(self, settings: Settings, connections: int, signer: Any = None) -> None:
        self.lanes = [SmtpSender(settings) for _ in range(max(1, connections))]
        self.tags: list[Any] = [None] * len(self.lanes)
        self.turn = 0
        self.signer = signer  # crm.mail.dkim.Signer when CRM_DKIM_* are set
        self.mail_from = settings.mail_from
        self._answered: list[Any] = []  # sent whole (send): answered already, reported at the next collect

    def collect(self, on_answer: Answered) -> None:
        """Free the connection whose turn is next: read its message's answer and report it."""
        for tag in self._answered:
            on_answer(tag, None)
        self._answered.clear()
        lane = self.lanes[self.turn]
        if not lane.unanswered:
            return
        tag, self.tags[self.turn] = self.tags[self.turn], None
        try:
            lane.finish()
        except (TransientMailError, PermanentMailError) as exc:
            on_answer(tag, exc)
            return
        on_answer(tag, None)

    def submit(self, envelope_from: str, to: str, data: bytes, message_id: str, tag: Any) -> None:
        """Send pre-built bytes on the freed connection; an envelope refusal raises (nothing went)."""
        lane = self.lanes[self.turn]
        assert not lane.unanswered, "collect() before submit()"
        lane.start(envelope_from, to, self.signer.sign(data) if self.signer else data)
        log.info("mail sent: %s", kind_of_raw(data))
        if lane.unanswered:
            self.tags[self.turn] = tag
            self.turn = (self.turn + 1) % len(self.lanes)
        else:
            self._answered.append(tag)

    def send(self, message: EmailMessage, tag: Any) -> None:
        """A whole message (the email package's SMTPUTF8 path) on the freed connection, answered at once."""
        lane: Any = self.lanes[self.turn]
        if self.signer:
            from crm.mail.dkim import SigningSender  # the one module that needs dkimpy

            lane = SigningSender(lane, self.signer, self.mail_from)
        lane.send(message)
        self._answered.append(tag)

    def drain(self, on_answer: Answered) -> None:
        for _ in self.lanes:
            self.collect(on_answer)
            self.turn = (self.turn + 1) % len(self.lanes)

    def close(self) -> None:
        for lane in self.lanes:
            lane.close()


class OneAtATime:
    """Any sender behind the same calls: each message is answered before submit returns."""

    def __init__(self, sender: Sender) -> None:
        self.sender = sender
        self._answered: list[Any] = []

    def collect(self, on_answer: Answered) -> None:
        for tag in self._answered:
            on_answer(tag, None)
        self._answered.clear()

    def submit(self, envelope_from: str, to: str, data: bytes, message_id: str, tag: Any) -> None:
        self.sender.send_raw(envelope_from, to, data, message_id)  # type: ignore[attr-defined]
        self._answered.append(tag)

    def send(self, message: EmailMessage, tag: Any) -> None:
        self.sender.send(message)
        self._answered.append(tag)

    def drain(self, on_answer: Answered) -> None:
        self.collect(on_answer)

    def close(self) -> None:
        self.sender.close()


def make_round_sender(settings: Settings) -> RoundSender | OneAtATime:
    """CRM_SMTP_CONNECTIONS connections for the smtp backend; the configured sender one at a time otherwise."""
    from crm.mail.dkim import signer_for  # the one module that needs dkimpy
    from crm.mail.senders import make_sender

    if settings.mail_backend != "smtp":
        return OneAtATime(make_sender(settings))
    return RoundSender(settings, settings.smtp_connections, signer_for(settings))
