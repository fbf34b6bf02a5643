"""Registry: actors by name, one per actor system (never module-level).

The registry owns each name's mailbox for the life of the system. A supervisor *claims* a
name when it creates the child and *releases* it when the child stops; a later claim of the
same name (a restarted parent supervisor builds its children anew) reopens the same mailbox.
So a ref that a strategy took to `risk` stays valid even when the whole `core` branch restarts.
"""

from __future__ import annotations

from ._exceptions import ActorNotFoundError
from ._mailbox import Mailbox, MailboxPolicy
from ._ref import ActorRef


class Registry:
    """Names are unique in a system: status, logs and the control plane address actors by name."""

    __slots__ = ("_claimed", "_refs")

    def __init__(self) -> None:
        self._refs: dict[str, ActorRef] = {}
        self._claimed: set[str] = set()

    def claim(self, name: str, policy: MailboxPolicy | None = None) -> ActorRef:
        """Give `name` to a new child: its ref, with a mailbox that accepts messages.

        `policy` is the mailbox's, when known before the first instance exists (None: the
        default until the first instance adopts its own). Raises ValueError when a live
        child already holds the name.
        """
        if name in self._claimed:
            raise ValueError(f"an actor named {name!r} already exists")
        ref = self._refs.get(name)
        if ref is None:
            ref = ActorRef(name, Mailbox(name, policy or MailboxPolicy()))
            self._refs[name] = ref
        else:
            ref._mailbox.reopen()
            if policy is not None:
                ref._mailbox.set_policy(policy)
        self._claimed.add(name)
        return ref

    def release(self, name: str, *, forget: bool = False) -> None:
        """The child is gone: close its mailbox. `forget` also drops the name for good."""
        ref = self._refs.get(name)
        if ref is not None:
            if forget:
                ref._mailbox.retire()
                del self._refs[name]
            else:
                ref._mailbox.close()
        self._claimed.discard(name)

    def is_claimed(self, name: str) -> bool:
        """Whether a live child holds `name` (a released name may still resolve to a ref)."""
        return name in self._claimed

    def lookup(self, name: str) -> ActorRef:
        try:
            return self._refs[name]
        except KeyError:
            raise ActorNotFoundError(name) from None

    def names(self) -> list[str]:
        return sorted(self._refs)

    def __contains__(self, name: object) -> bool:
        return name in self._refs
