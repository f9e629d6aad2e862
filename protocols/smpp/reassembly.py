"""Reassembly of concatenated MO messages (TS 23.040 §9.2.3.24.1/.8; SMPP 3.4 §5.3.2.22-24).

Parts are grouped by who sent them (the bind, the source and destination
addresses), the kind of reference (UDH 8-bit, UDH 16-bit, SAR TLVs), the
reference and the part count.  A group whose parts do not all arrive within
the timeout is dropped; every timer runs on the injected clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable

from twisted.logger import Logger

from protocols.smpp.text import Concat


@dataclass
class _Group:
    data_coding: int
    total: int
    parts: dict[int, bytes] = field(default_factory=dict)
    timer: object = None


@dataclass(frozen=True)
class Reassembled:
    """A whole message: the first part's data_coding and all payloads in order."""

    data_coding: int
    payload: bytes


class Reassembler:
    """Collects parts until a message is complete."""

    log = Logger()

    def __init__(self, clock, *, timeout: float = 60.0, max_pending: int = 10000) -> None:
        """
        @param clock: an C{IReactorTime} for the timeouts.
        @param timeout: seconds from a group's first part to its drop.
        @param max_pending: groups held at once; a part that would open one
            more is refused.
        """
        self.clock = clock
        self.timeout = timeout
        self.max_pending = max_pending
        self._groups: dict[Hashable, _Group] = {}
        self.expired = 0

    def __len__(self) -> int:
        return len(self._groups)

    def add(self, origin: Hashable, kind: str, concat: Concat, data_coding: int,
            payload: bytes) -> Reassembled | None:
        """Add one part.

        @param origin: who sent it, e.g. C{(bind id, source_addr, destination_addr)}.
        @param kind: C{"udh8"}, C{"udh16"} or C{"sar"}.
        @return: the whole message when this part completes it, else C{None}
            (a duplicate part replaces the earlier copy).
        @raise OverflowError: when C{max_pending} groups are already open.
        """
        if concat.total == 1:
            return Reassembled(data_coding, payload)
        key = (origin, kind, concat.reference, concat.total)
        group = self._groups.get(key)
        if group is None:
            if len(self._groups) >= self.max_pending:
                raise OverflowError("too many concatenated messages being reassembled")
            group = _Group(data_coding, concat.total)
            group.timer = self.clock.callLater(self.timeout, self._expire, key)
            self._groups[key] = group
        group.parts[concat.seqnum] = payload
        if len(group.parts) < group.total:
            return None
        del self._groups[key]
        if group.timer.active():
            group.timer.cancel()
        return Reassembled(group.data_coding,
                           b"".join(group.parts[i] for i in range(1, group.total + 1)))

    def _expire(self, key) -> None:
        group = self._groups.pop(key, None)
        if group is None:
            return
        self.expired += 1
        origin = key[0]
        self.log.warn("concatenated MO from {origin} dropped: {got} of {total} part(s) "
                      "within {timeout}s", origin=origin, got=len(group.parts),
                      total=group.total, timeout=self.timeout)

    def clear(self) -> None:
        """Drop every group and cancel its timer (on stop)."""
        for group in self._groups.values():
            if group.timer is not None and group.timer.active():
                group.timer.cancel()
        self._groups.clear()
