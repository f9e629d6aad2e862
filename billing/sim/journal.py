"""The simulator's durable record of what it decided: one fsynced JSON line per reference.

A real OCS never forgets a credit it confirmed.  With a journal the
simulator appends each decision (credit, refusal, void) and fsyncs it
before the answer goes out; on start it replays the file, so after a
SIGKILL it knows every reference it answered, and the accounts it credited.
"""
from __future__ import annotations

import json
import os


class Journal:
    """Append-only, fsync-per-record file of ledger decisions."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = None

    def replay(self):
        """The records written so far, oldest first (a torn last line is ignored)."""
        if not os.path.exists(self.path):
            return []
        out = []
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    break          # the write the crash interrupted; never answered
        return out

    def append(self, entry: dict) -> None:
        """Write one decision and make it durable before returning."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.write(self._fd, (json.dumps(entry, separators=(",", ":")) + "\n").encode("utf-8"))
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
