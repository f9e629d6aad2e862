"""Frames between a node and its writer process (L{core.unit_process}).

A frame is a 4-byte big-endian length and a pickle of one message.  Pure:
no I/O here.  What travels is units of work (module-level functions and
their arguments) one way and their results the other, between two
processes of the same installation started by the same user, on a pipe
nobody else holds; that is the only place these pickles are read.
"""
from __future__ import annotations

import pickle
import struct

_LEN = struct.Struct(">I")
#: the largest frame either side accepts (a group of units or of results)
MAX_FRAME = 256 * 1024 * 1024


def encode(message) -> bytes:
    """One frame holding C{message}.

    @raise pickle.PicklingError: (or TypeError, AttributeError) C{message}
        holds something that cannot travel (a lambda, a closure, an open
        connection).
    """
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LEN.pack(len(body)) + body


class FrameReader:
    """Cuts a byte stream into messages."""

    def __init__(self):
        self._buf = bytearray()

    def feed(self, data: bytes) -> list:
        """Add C{data}; return the messages now complete, in order.

        @raise ValueError: a frame announces more than L{MAX_FRAME} bytes
            (the stream is not ours, or is corrupt).
        """
        buf = self._buf
        buf += data
        out = []
        pos = 0
        n = len(buf)
        while n - pos >= 4:
            (size,) = _LEN.unpack_from(buf, pos)
            if size > MAX_FRAME:
                raise ValueError("frame of %d bytes announced (at most %d)" % (size, MAX_FRAME))
            if n - pos - 4 < size:
                break
            out.append(pickle.loads(memoryview(buf)[pos + 4:pos + 4 + size]))
            pos += 4 + size
        if pos:
            del buf[:pos]
        return out
