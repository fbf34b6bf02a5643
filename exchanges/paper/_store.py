"""The paper venue's state file: an append-only log of effects, one JSON line each.

Written through before anything is published: the daemon never hears of a fill the venue
would forget. A plain write (no fsync) survives the death of the process, which is what the
simulation needs: the venue outlives the daemon, not the machine. A torn last line (the
process died mid-write) is dropped on load with a warning; so was its publication.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import BinaryIO

import msgspec

from ._ledger import Effect

logger = logging.getLogger(__name__)


class EffectLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._encoder = msgspec.json.Encoder(decimal_format="string")
        self._decoder = msgspec.json.Decoder(Effect)
        self._file: BinaryIO | None = None

    def load(self) -> list[Effect]:
        if not self.path.exists():
            return []
        effects: list[Effect] = []
        lines = self.path.read_bytes().split(b"\n")
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                effects.append(self._decoder.decode(line))
            except msgspec.DecodeError as exc:
                if number >= len(lines) - 1:
                    logger.warning("%s: dropping a torn last line (%s)", self.path, exc)
                    self._truncate_to(b"\n".join(lines[: number - 1]) + b"\n")
                    break
                raise ValueError(
                    f"{self.path}:{number}: corrupt paper venue state: {exc}"
                ) from exc
        return effects

    def _truncate_to(self, content: bytes) -> None:
        self.path.write_bytes(content if content.strip() else b"")

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab")

    def append(self, effect: Effect) -> None:
        assert self._file is not None, "EffectLog.open() first"
        self._file.write(self._encoder.encode(effect) + b"\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
