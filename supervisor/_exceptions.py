"""Errors of the supervision layer.

```
SupervisionError
├── SupervisorFailedError   restart intensity exhausted; raised out of the supervisor's run
├── ChildNotFoundError      no child of that name under this supervisor (also a LookupError)
└── DuplicateChildError     a child of that name exists already
```
"""

from __future__ import annotations

from ._snapshot import ErrorInfo


class SupervisionError(Exception):
    """Base of the supervision layer's errors."""


class SupervisorFailedError(SupervisionError):
    """Raised by a supervisor that gave up; its parent treats it as that child's crash."""

    def __init__(
        self,
        path: str,
        restarts: int,
        max_restarts: int,
        window_s: float,
        last_error: ErrorInfo | None,
    ) -> None:
        cause = f"; last error {last_error.type}: {last_error.message}" if last_error else ""
        super().__init__(
            f"supervisor {path!r} gave up: {restarts} restarts needed within {window_s:g} s, "
            f"max_restarts is {max_restarts}{cause}"
        )
        self.path = path
        self.restarts = restarts
        self.max_restarts = max_restarts
        self.window_s = window_s
        self.last_error = last_error


class ChildNotFoundError(SupervisionError, LookupError):
    def __init__(self, supervisor: str, name: str) -> None:
        super().__init__(f"supervisor {supervisor!r} has no child {name!r}")
        self.supervisor = supervisor
        self.name = name


class DuplicateChildError(SupervisionError, ValueError):
    def __init__(self, supervisor: str, name: str) -> None:
        super().__init__(f"supervisor {supervisor!r} already has a child {name!r}")
        self.supervisor = supervisor
        self.name = name
