"""Errors the actor runtime raises to callers.

```
ActorError
├── MailboxFullError        the overflow policy refused a message (FAIL; an ask under DROP_*)
├── ActorNotRunningError    the actor was removed or stopped for good; its mailbox is closed
├── AskTimeoutError         no reply within the deadline (the actor may still handle it later)
├── AskFailedError          the handler raised, or there is none; carries type + message
└── ActorNotFoundError      nothing registered under that name (also a LookupError)
```

Callers choose by class, never by parsing messages. Messages name the actor and the message
type, never message contents: contents may hold order details or, by mistake, secrets.
"""

from __future__ import annotations


class ActorError(Exception):
    """Base of every runtime error."""


class MailboxFullError(ActorError):
    """The target mailbox is full and its overflow policy does not wait."""

    def __init__(self, actor: str, capacity: int) -> None:
        super().__init__(f"mailbox of {actor!r} is full ({capacity} messages)")
        self.actor = actor
        self.capacity = capacity


class ActorNotRunningError(ActorError):
    """The actor is gone for good (removed, or stopped and not to be restarted)."""

    def __init__(self, actor: str) -> None:
        super().__init__(f"actor {actor!r} is not running")
        self.actor = actor


class AskTimeoutError(ActorError, TimeoutError):
    """No reply arrived within the deadline."""

    def __init__(self, actor: str, message_type: str, timeout_s: float) -> None:
        super().__init__(f"{actor!r} did not answer {message_type} within {timeout_s:g} s")
        self.actor = actor
        self.message_type = message_type
        self.timeout_s = timeout_s


class AskFailedError(ActorError):
    """The actor could not answer: its handler raised, or it had no handler for the message."""

    def __init__(self, actor: str, message_type: str, error_type: str, error_message: str) -> None:
        super().__init__(f"{actor!r} failed on {message_type}: {error_type}: {error_message}")
        self.actor = actor
        self.message_type = message_type
        self.error_type = error_type
        self.error_message = error_message


class ActorNotFoundError(ActorError, LookupError):
    """Nothing is registered under the name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no actor named {name!r}")
        self.name = name
