"""The key file: AES-256-GCM data keys and the HMAC blind-index key, outside the database.

Format (JSON, mode 0600)::

    {"format": "ivoms-keys/1",
     "active": "d2",
     "data_keys": {"d1": "<base64 32 bytes>", "d2": "..."},
     "index_key": {"id": "i1", "key": "<base64 32 bytes>"}}

Rotation adds a data key and makes it active; older keys stay so older
vouchers remain readable.  The index key never rotates in place: the blind
index of every stored voucher depends on it.
"""
from __future__ import annotations

import base64
import json
import os
import secrets
import stat
from dataclasses import dataclass

FORMAT = "ivoms-keys/1"


class KeyFileError(Exception):
    """The key file is missing, unreadable, unsafe or corrupt; the message names it."""


@dataclass(frozen=True)
class KeyRing:
    """Keys loaded from a key file."""

    path: str
    active: str
    data_keys: dict          # key id -> 32 raw bytes
    index_key_id: str
    index_key: bytes

    def __repr__(self) -> str:  # never print key material
        return "KeyRing(path=%r, active=%r, data_keys=%r, index_key_id=%r)" % (
            self.path, self.active, sorted(self.data_keys), self.index_key_id)


def _b64key(value, path, where) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (TypeError, ValueError) as e:
        raise KeyFileError("%s: %s is not base64" % (path, where)) from e
    if len(raw) != 32:
        raise KeyFileError("%s: %s must be 32 bytes, got %d" % (path, where, len(raw)))
    return raw


def load(path: str) -> KeyRing:
    """Read and check the key file at C{path}.

    @raise KeyFileError: missing, unreadable, readable by group/others,
        malformed, or without the keys it must hold.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise KeyFileError("key file %s does not exist; create it with 'ivoms keys init'" % path)
    except OSError as e:
        raise KeyFileError("key file %s cannot be read: %s" % (path, e.strerror))
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError("key file %s is accessible by group or others (mode %o); "
                           "run 'chmod 600 %s'" % (path, stat.S_IMODE(st.st_mode), path))
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read().decode("utf-8"))
    except OSError as e:
        raise KeyFileError("key file %s cannot be read: %s" % (path, e.strerror))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise KeyFileError("key file %s is corrupt (not JSON: %s)" % (path, e))
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise KeyFileError("key file %s is corrupt: format must be %r" % (path, FORMAT))
    data = doc.get("data_keys")
    if not isinstance(data, dict) or not data:
        raise KeyFileError("key file %s is corrupt: data_keys missing" % path)
    keys = {str(k): _b64key(v, path, "data_keys.%s" % k) for k, v in data.items()}
    active = doc.get("active")
    if not isinstance(active, str) or active not in keys:
        raise KeyFileError("key file %s is corrupt: active key %r is not in data_keys" % (path, active))
    idx = doc.get("index_key")
    if not isinstance(idx, dict) or "id" not in idx or "key" not in idx:
        raise KeyFileError("key file %s is corrupt: index_key missing" % path)
    return KeyRing(path, active, keys, str(idx["id"]), _b64key(idx["key"], path, "index_key.key"))


def _write(path: str, doc: dict) -> None:
    """Write C{doc} atomically with mode 0600 (temp file, fsync, rename)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    tmp = "%s.tmp-%d" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(json.dumps(doc, indent=2, sort_keys=True).encode())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dfd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _enc(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def init(path: str) -> KeyRing:
    """Create a new key file at C{path}.

    @raise KeyFileError: a file already exists there (keys are never
        overwritten: losing them makes every voucher unreadable).
    """
    if os.path.exists(path):
        raise KeyFileError("key file %s already exists; refusing to overwrite it" % path)
    _write(path, {
        "format": FORMAT,
        "active": "d1",
        "data_keys": {"d1": _enc(secrets.token_bytes(32))},
        "index_key": {"id": "i1", "key": _enc(secrets.token_bytes(32))},
    })
    return load(path)


def rotate(path: str) -> KeyRing:
    """Add a new data key to the file at C{path} and make it the active one.

    @return: the new key ring.
    @raise KeyFileError: the current file cannot be loaded.
    """
    ring = load(path)
    n = 1 + max([int(k[1:]) for k in ring.data_keys if k[1:].isdigit()] or [0])
    while "d%d" % n in ring.data_keys:
        n += 1
    new_id = "d%d" % n
    keys = {k: _enc(v) for k, v in ring.data_keys.items()}
    keys[new_id] = _enc(secrets.token_bytes(32))
    _write(path, {
        "format": FORMAT,
        "active": new_id,
        "data_keys": keys,
        "index_key": {"id": ring.index_key_id, "key": _enc(ring.index_key)},
    })
    return load(path)
