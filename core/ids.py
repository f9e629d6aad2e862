"""Transaction ids: 128 random bits as 32 hex digits (the form of a version-4 UUID).

The bits come from the operating system's CSPRNG, as C{uuid.uuid4()} takes
them, but drawn 4 KiB at a time: one C{getrandom} system call serves 256
ids.  On the activation path that saves a system call, and the release of
the interpreter lock that comes with it, per request.
"""
from __future__ import annotations

import os
import threading
import uuid

_BATCH = 256


class IdSource:
    """Random transaction ids; safe to call from any thread."""

    def __init__(self, urandom=os.urandom) -> None:
        self._urandom = urandom
        self._pool = b""
        self._at = 0
        self._lock = threading.Lock()

    def new(self) -> str:
        """A fresh id: 32 lowercase hex digits with the version-4 UUID bits set."""
        with self._lock:
            if self._at >= len(self._pool):
                self._pool, self._at = self._urandom(16 * _BATCH), 0
            raw = self._pool[self._at:self._at + 16]
            self._at += 16
        return uuid.UUID(bytes=raw, version=4).hex


new_txn_id = IdSource().new
