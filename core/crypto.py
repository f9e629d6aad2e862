"""HRN generation, encryption and blind indexing (DESIGN §3, §10).

An HRN is stored only as AES-256-GCM ciphertext (12-byte random nonce, then
ciphertext and tag) whose associated data binds it to its serial and key id,
and as an HMAC-SHA256 blind index of its digits, the only way it is looked up.
"""
from __future__ import annotations

import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.keys import KeyRing


class TamperError(Exception):
    """A stored HRN failed authentication: ciphertext, serial or key id was altered."""


def _aad(serial: int, key_id: str) -> bytes:
    return b"ivoms-hrn/1:%d:%s" % (serial, key_id.encode())


class VoucherCipher:
    """Encrypts and decrypts HRNs and computes their blind index with a key ring."""

    def __init__(self, ring: KeyRing):
        self.ring = ring
        self.active_key_id = ring.active
        self._aead = {kid: AESGCM(k) for kid, k in ring.data_keys.items()}
        self._index_key = ring.index_key
        self._hmac_template = hmac.new(self._index_key, digestmod="sha256")

    def __reduce__(self):
        """Travels (to the node's own writer process, L{core.unit_process}, on a
        pipe only the two hold) as its key ring, and is rebuilt there."""
        return VoucherCipher, (self.ring,)

    def encrypt(self, serial: int, hrn: str) -> bytes:
        """Encrypt the digits C{hrn} of voucher C{serial} under the active key."""
        nonce = os.urandom(12)
        return nonce + self._aead[self.active_key_id].encrypt(
            nonce, hrn.encode("ascii"), _aad(serial, self.active_key_id))

    def decrypt(self, serial: int, key_id: str, blob: bytes) -> str:
        """Recover the HRN of voucher C{serial}.

        @raise TamperError: wrong serial or key id, altered bytes, or an
            unknown key id.
        """
        aead = self._aead.get(key_id)
        if aead is None:
            raise TamperError("voucher %d: unknown key id %r" % (serial, key_id))
        try:
            return aead.decrypt(blob[:12], blob[12:], _aad(serial, key_id)).decode("ascii")
        except (InvalidTag, ValueError, UnicodeDecodeError) as e:
            raise TamperError("voucher %d: HRN failed authentication" % serial) from e

    def derive_key(self, purpose: bytes) -> bytes:
        """A 32-byte secret for C{purpose}, the same on every node holding this key ring."""
        return hmac.digest(self._index_key, b"ivoms-derive/1:" + purpose, "sha256")

    def seal(self, purpose: bytes, data: bytes) -> bytes:
        """Encrypt C{data} under the active key, bound to C{purpose} (state kept in the store).

        @return: key id length, key id, nonce and ciphertext in one blob.
        """
        kid = self.active_key_id.encode()
        nonce = os.urandom(12)
        return (bytes([len(kid)]) + kid + nonce
                + self._aead[self.active_key_id].encrypt(nonce, data, b"ivoms-seal/1:" + purpose))

    def unseal(self, purpose: bytes, blob: bytes) -> bytes:
        """Recover what L{seal} encrypted for C{purpose}.

        @raise TamperError: altered bytes, another purpose, or an unknown key id.
        """
        n = blob[0] if blob else 0
        kid = blob[1:1 + n].decode("ascii", "replace")
        aead = self._aead.get(kid)
        if aead is None:
            raise TamperError("sealed data: unknown key id %r" % kid)
        body = blob[1 + n:]
        try:
            return aead.decrypt(body[:12], body[12:], b"ivoms-seal/1:" + purpose)
        except (InvalidTag, ValueError) as e:
            raise TamperError("sealed data failed authentication") from e

    def _index_hmac(self, data: bytes) -> bytes:
        """HMAC-SHA256 of C{data} under the index key.

        Copies a keyed HMAC made once instead of keying one per call, and
        keeps the interpreter lock: the one-shot C{hmac.digest} releases it
        around every call, and on the reactor thread each release lets the
        store's writer thread take the lock and makes the reactor wait to get
        it back (for short messages such as these the hash itself takes
        about a microsecond).
        """
        h = self._hmac_template.copy()
        h.update(data)
        return h.digest()

    def blind_index(self, hrn: str) -> bytes:
        """HMAC-SHA256 of the normalised digits C{hrn}."""
        return self._index_hmac(hrn.encode("ascii"))

    def request_digest(self, key: str) -> bytes:
        """HMAC-SHA256 of a request's idempotency key (it may contain an HRN as typed)."""
        return self._index_hmac(b"ivoms-request/1:" + key.encode("utf-8"))


def draw_params(length: int) -> tuple[int, int, int]:
    """Bytes per draw, the rejection limit and the modulus for C{length} digits."""
    mod = 10 ** length
    nbytes = (mod.bit_length() + 7) // 8 + 1
    space = 1 << (8 * nbytes)
    return nbytes, space - space % mod, mod


def random_hrns(count: int, length: int) -> list[str]:
    """C{count} HRNs of C{length} digits from the OS CSPRNG, without modulo bias.

    Each draw takes enough random bytes to exceed 10**length at least 256-fold
    and rejects the top partial range, so every HRN is equally likely.
    """
    if not 1 <= length <= 40:
        raise ValueError("HRN length must be 1..40")
    nbytes, limit, mod = draw_params(length)
    out: list[str] = []
    fmt = "%0" + str(length) + "d"
    from_bytes = int.from_bytes
    while len(out) < count:
        need = count - len(out)
        buf = os.urandom(nbytes * (need + need // 64 + 4))
        for i in range(0, len(buf), nbytes):
            v = from_bytes(buf[i:i + nbytes], "big")
            if v < limit:
                out.append(fmt % (v % mod))
                if len(out) == count:
                    break
    return out
