"""The exceptions of seqlayers, in a bottom module every layer of the package may import."""

from __future__ import annotations


class BackendUnavailableError(RuntimeError):
    """A backend asked for by name cannot run the call; the message says why and what can."""


class Unsupported(Exception):
    """Raised by a backend's planner for a call it cannot run; the message is the reason, with a fix.

    The dispatcher turns it into a skip (``backend="auto"``) or a :class:`BackendUnavailableError`
    (a backend asked for by name).
    """
