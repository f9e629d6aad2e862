"""Files the housekeeping jobs write: whole files replaced atomically, and append-only CSV sinks."""
from __future__ import annotations

import csv
import io
import os


def write_atomically(path: str, data: bytes) -> None:
    """Write C{data} to C{path} through a synced temporary file and a rename, so a reader
    sees the old file or the whole new one; create the folder if needed."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    tmp = "%s.tmp-%d" % (path, os.getpid())
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    _sync_dir(folder)


def _sync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class AppendSink:
    """A CSV file written in chunks, each synced, each rewritable.

    A sink is a value: C{path}, C{header} and the C{offset} where the next
    chunk goes.  L{append} truncates the file back to C{offset} before
    writing, so a unit of work that is run again after a rollback writes the
    same chunk once, not twice.
    """

    def __init__(self, path: str, header, offset: int | None = None):
        self.path = path
        self.header = tuple(header)
        self.offset = offset

    def create(self) -> "AppendSink":
        """Create the file (and folder) with its header row; return the sink after it.

        @raise FileExistsError: the file already exists (never overwrite an archive).
        """
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        data = _csv_bytes([self.header])
        with open(self.path, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _sync_dir(os.path.dirname(self.path) or ".")
        return AppendSink(self.path, self.header, len(data))

    def at(self, offset: int) -> "AppendSink":
        """This sink with its next chunk at C{offset}."""
        return AppendSink(self.path, self.header, offset)

    def append(self, rows) -> int:
        """Write C{rows} at this sink's offset (dropping anything after it) and sync;
        return the offset after them."""
        if self.offset is None:
            raise ValueError("append to %s before create()" % self.path)
        data = _csv_bytes(rows)
        with open(self.path, "r+b") as f:
            f.seek(self.offset)
            f.truncate()
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return self.offset + len(data)

    def remove(self) -> None:
        """Delete the file (an archive that received no rows)."""
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass


def _csv_bytes(rows) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode("utf-8")
