"""The shape every stage's error shares: what it is about, where it was read, what went wrong.

Admins read these in a nightly mail, so each one names the domain, host or
file first and the source (command, /proc file, cfg key) second.
"""

from __future__ import annotations


class XenauditError(Exception):
    """Base of the errors xenaudit reports about its input."""


class SourcedError(XenauditError):
    """An error about one subject (domain, host, file) seen through one source."""

    def __init__(self, subject: str, source: str, message: str) -> None:
        # An empty source is the subject as a whole (a file that cannot be read).
        super().__init__(f"{subject}: {source}: {message}" if source else f"{subject}: {message}")
        self.subject = subject
        self.source = source
        self.message = message


def name_once(subject: str, message: str) -> str:
    """`message` about `subject`, naming it once: "dom0a: xl info: …", never "dom0a: dom0a: …"."""
    if message == subject or message.startswith(f"{subject}: "):
        return message
    return f"{subject}: {message}"


class DomainError(SourcedError):
    """An error about one domain; the rest of the audit goes on without it."""

    @property
    def domain(self) -> str:
        return self.subject
