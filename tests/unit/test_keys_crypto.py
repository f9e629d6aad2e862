"""The key file (core.keys) and HRN crypto (core.crypto): round trip, tampering, randomness."""
from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import json
import os
import stat

import pytest

from core import keys
from core.crypto import TamperError, VoucherCipher, draw_params, random_hrns
from core.keys import KeyFileError
from tests.helpers import make_batch, make_store, reveal_all


@pytest.fixture
def keypath(tmp_path):
    return str(tmp_path / "var" / "keys.json")


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _write_doc(path, doc, mode=0o600):
    with open(path, "w") as f:
        f.write(doc if isinstance(doc, str) else json.dumps(doc))
    os.chmod(path, mode)


# -- keys init / rotate -----------------------------------------------------------
def test_init_writes_mode_0600_with_distinct_keys(keypath):
    ring = keys.init(keypath)
    assert _mode(keypath) == 0o600
    assert ring.path == keypath
    assert ring.active == "d1" and set(ring.data_keys) == {"d1"}
    assert ring.index_key_id == "i1"
    assert len(ring.data_keys["d1"]) == 32 and len(ring.index_key) == 32
    assert ring.data_keys["d1"] != ring.index_key
    doc = json.loads(_read(keypath))
    assert doc["format"] == keys.FORMAT
    # no temp file left beside it
    assert os.listdir(os.path.dirname(keypath)) == ["keys.json"]


def test_two_inits_make_different_keys(tmp_path):
    a = keys.init(str(tmp_path / "a.json"))
    b = keys.init(str(tmp_path / "b.json"))
    assert a.data_keys["d1"] != b.data_keys["d1"]
    assert a.index_key != b.index_key


def test_repr_shows_no_key_material(keypath):
    ring = keys.init(keypath)
    text = repr(ring)
    assert "d1" in text
    for raw in (ring.data_keys["d1"], ring.index_key):
        assert base64.b64encode(raw).decode() not in text
        assert repr(raw) not in text


def test_init_refuses_to_overwrite(keypath):
    keys.init(keypath)
    before = _read(keypath)
    with pytest.raises(KeyFileError, match="already exists; refusing to overwrite") as ei:
        keys.init(keypath)
    assert keypath in str(ei.value)
    assert _read(keypath) == before


def test_rotate_adds_active_key_and_keeps_old_ones(keypath):
    old = keys.init(keypath)
    old_cipher = VoucherCipher(old)
    blob = old_cipher.encrypt(1000, "12345678901234")
    new = keys.rotate(keypath)
    assert new.active == "d2"
    assert set(new.data_keys) == {"d1", "d2"}
    assert new.data_keys["d1"] == old.data_keys["d1"]
    assert new.data_keys["d2"] != old.data_keys["d1"]
    # the index key never changes: stored blind indexes stay valid
    assert (new.index_key_id, new.index_key) == (old.index_key_id, old.index_key)
    assert _mode(keypath) == 0o600
    cipher = VoucherCipher(new)
    assert cipher.active_key_id == "d2"
    assert cipher.decrypt(1000, "d1", blob) == "12345678901234"
    assert cipher.blind_index("12345678901234") == old_cipher.blind_index("12345678901234")
    fresh = cipher.encrypt(1001, "99999999999999")
    assert cipher.decrypt(1001, "d2", fresh) == "99999999999999"
    with pytest.raises(TamperError):
        cipher.decrypt(1001, "d1", fresh)
    assert keys.rotate(keypath).active == "d3"


def test_rotate_keeps_stored_vouchers_readable(tmp_path, sqlite_url):
    store, cipher = make_store(sqlite_url, str(tmp_path))
    info1, hrns1 = make_batch(store, cipher, count=20)
    ring = keys.rotate(str(tmp_path / "keys.json"))
    cipher2 = VoucherCipher(ring)
    assert reveal_all(store, cipher2, info1) == hrns1
    from core.generation import generate
    from core.timeutil import DAY_MS, now_ms
    from tests.helpers import VType
    info2 = generate(store, cipher2, VType(), 5, now_ms() + DAY_MS, requested_by="t",
                     serial_start=1000)
    from sqlalchemy import select

    from core.schema import batch, voucher
    kids = store.run_sync(lambda tx: tx.execute(
        select(voucher.c.batch_id, voucher.c.key_id).distinct()).rows)
    assert sorted(kids) == [(info1.batch_id, "d1"), (info2.batch_id, "d2")]
    bkids = store.run_sync(lambda tx: tx.execute(select(batch.c.id, batch.c.key_id)).rows)
    assert sorted(bkids) == [(info1.batch_id, "d1"), (info2.batch_id, "d2")]
    assert len(reveal_all(store, cipher2, info2)) == 5
    # the blind index of old vouchers still matches: lookups keep working
    some = next(iter(hrns1.values()))
    idx = store.run_sync(lambda tx: tx.execute(
        select(voucher.c.serial).where(voucher.c.blind_index == cipher2.blind_index(some))).rows)
    assert [r[0] for r in idx] == [s for s, h in hrns1.items() if h == some]
    store.dispose()


# -- bad key files ----------------------------------------------------------------
def _good_doc():
    k = base64.b64encode(b"k" * 32).decode()
    return {"format": keys.FORMAT, "active": "d1", "data_keys": {"d1": k},
            "index_key": {"id": "i1", "key": base64.b64encode(b"i" * 32).decode()}}


def test_good_handwritten_file_loads(keypath):
    os.makedirs(os.path.dirname(keypath))
    _write_doc(keypath, _good_doc())
    ring = keys.load(keypath)
    assert ring.data_keys == {"d1": b"k" * 32} and ring.index_key == b"i" * 32


def test_missing_file(keypath):
    with pytest.raises(KeyFileError) as ei:
        keys.load(keypath)
    assert keypath in str(ei.value) and "does not exist" in str(ei.value)
    assert "ivoms keys init" in str(ei.value)
    assert not os.path.exists(keypath)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o620, 0o610])
def test_group_or_other_accessible_file_is_refused(keypath, mode):
    keys.init(keypath)
    os.chmod(keypath, mode)
    with pytest.raises(KeyFileError) as ei:
        keys.load(keypath)
    msg = str(ei.value)
    assert keypath in msg and "group or others" in msg and "chmod 600" in msg


def test_owner_only_modes_are_accepted(keypath):
    keys.init(keypath)
    os.chmod(keypath, 0o400)
    assert keys.load(keypath).active == "d1"


def _corrupt(doc_change):
    def make():
        doc = _good_doc()
        doc_change(doc)
        return doc
    return make


CORRUPT = {
    "not json": lambda: "this is not json {",
    "truncated file": lambda: json.dumps(_good_doc())[:40],
    "empty file": lambda: "",
    "binary": None,                # raw bytes, written below
    "json list": lambda: [1, 2],
    "wrong format": _corrupt(lambda d: d.update(format="ivoms-keys/0")),
    "no data keys": _corrupt(lambda d: d.update(data_keys={})),
    "data keys not a table": _corrupt(lambda d: d.update(data_keys="abc")),
    "truncated data key": _corrupt(lambda d: d["data_keys"].update(
        d1=base64.b64encode(b"k" * 16).decode())),
    "long data key": _corrupt(lambda d: d["data_keys"].update(
        d1=base64.b64encode(b"k" * 33).decode())),
    "data key not base64": _corrupt(lambda d: d["data_keys"].update(d1="!!not base64!!")),
    "data key not a string": _corrupt(lambda d: d["data_keys"].update(d1=12345)),
    "active unknown": _corrupt(lambda d: d.update(active="d9")),
    "active missing": _corrupt(lambda d: d.pop("active")),
    "active not a string": _corrupt(lambda d: d.update(active=["d1"])),
    "no index key": _corrupt(lambda d: d.pop("index_key")),
    "index key incomplete": _corrupt(lambda d: d.update(index_key={"id": "i1"})),
    "truncated index key": _corrupt(lambda d: d["index_key"].update(
        key=base64.b64encode(b"i" * 31).decode())),
    "index key null": _corrupt(lambda d: d["index_key"].update(key=None)),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_corrupt_file_is_a_key_file_error_naming_it(keypath, case):
    os.makedirs(os.path.dirname(keypath))
    if case == "binary":
        with open(keypath, "wb") as f:
            f.write(b"\xff\xfe\x00garbage")
        os.chmod(keypath, 0o600)
    else:
        _write_doc(keypath, CORRUPT[case]())
    before = _read(keypath)
    with pytest.raises(KeyFileError) as ei:
        keys.load(keypath)
    assert keypath in str(ei.value)
    assert "corrupt" in str(ei.value) or "base64" in str(ei.value) or "32 bytes" in str(ei.value)
    # rotation refuses the same file and writes nothing
    with pytest.raises(KeyFileError):
        keys.rotate(keypath)
    assert _read(keypath) == before
    assert os.listdir(os.path.dirname(keypath)) == ["keys.json"]


def test_truncated_key_message_says_what_is_wrong(keypath):
    os.makedirs(os.path.dirname(keypath))
    doc = _good_doc()
    doc["data_keys"]["d1"] = base64.b64encode(b"k" * 16).decode()
    _write_doc(keypath, doc)
    with pytest.raises(KeyFileError) as ei:
        keys.load(keypath)
    assert str(ei.value) == "%s: data_keys.d1 must be 32 bytes, got 16" % keypath


def test_rotate_of_missing_file_creates_nothing(keypath):
    with pytest.raises(KeyFileError):
        keys.rotate(keypath)
    assert not os.path.exists(keypath)


# -- encryption ---------------------------------------------------------------------
@pytest.fixture
def cipher(keypath):
    return VoucherCipher(keys.init(keypath))


@pytest.mark.parametrize("hrn", ["00000000", "12345678901234", "99999999999999999999", "0123456789"])
def test_round_trip(cipher, hrn):
    blob = cipher.encrypt(1_000_000_123, hrn)
    assert hrn.encode() not in blob
    assert len(blob) == 12 + len(hrn) + 16      # nonce, ciphertext, tag
    assert cipher.decrypt(1_000_000_123, "d1", blob) == hrn


def test_each_encryption_uses_a_fresh_nonce(cipher):
    a = cipher.encrypt(5, "12345678901234")
    b = cipher.encrypt(5, "12345678901234")
    assert a != b and a[:12] != b[:12]
    assert cipher.decrypt(5, "d1", a) == cipher.decrypt(5, "d1", b)


@pytest.mark.parametrize("position", [0, 11, 12, 20, -1])
def test_flipped_byte_is_tamper(cipher, position):
    blob = bytearray(cipher.encrypt(7, "12345678901234"))
    blob[position] ^= 0x01
    with pytest.raises(TamperError, match="voucher 7: HRN failed authentication"):
        cipher.decrypt(7, "d1", bytes(blob))


@pytest.mark.parametrize("blob_change", [lambda b: b[:-1], lambda b: b[:12], lambda b: b"",
                                         lambda b: b + b"\x00"])
def test_truncated_or_extended_blob_is_tamper(cipher, blob_change):
    blob = cipher.encrypt(7, "12345678901234")
    with pytest.raises(TamperError):
        cipher.decrypt(7, "d1", blob_change(blob))


def test_other_serial_as_associated_data_is_tamper(cipher):
    blob = cipher.encrypt(1000, "12345678901234")
    for other in (1001, 999, 10000, 0):
        with pytest.raises(TamperError):
            cipher.decrypt(other, "d1", blob)
    assert cipher.decrypt(1000, "d1", blob) == "12345678901234"


def test_swapped_ciphertexts_between_vouchers_are_tamper(cipher):
    a = cipher.encrypt(1, "11111111111111")
    b = cipher.encrypt(2, "22222222222222")
    with pytest.raises(TamperError):
        cipher.decrypt(1, "d1", b)
    with pytest.raises(TamperError):
        cipher.decrypt(2, "d1", a)


def test_other_key_id_is_tamper(keypath):
    keys.init(keypath)
    ring = keys.rotate(keypath)
    cipher = VoucherCipher(ring)
    blob = cipher.encrypt(3, "12345678901234")   # under d2
    with pytest.raises(TamperError):
        cipher.decrypt(3, "d1", blob)
    with pytest.raises(TamperError, match="unknown key id 'd7'"):
        cipher.decrypt(3, "d7", blob)
    assert cipher.decrypt(3, "d2", blob) == "12345678901234"


def test_key_id_is_bound_even_when_key_bytes_match(tmp_path):
    # same key bytes under two ids: the key id in the associated data still tells them apart
    k = base64.b64encode(b"s" * 32).decode()
    path = str(tmp_path / "k.json")
    _write_doc(path, {"format": keys.FORMAT, "active": "d1", "data_keys": {"d1": k, "d2": k},
                      "index_key": {"id": "i1", "key": base64.b64encode(b"i" * 32).decode()}})
    cipher = VoucherCipher(keys.load(path))
    blob = cipher.encrypt(3, "12345678901234")
    with pytest.raises(TamperError):
        cipher.decrypt(3, "d2", blob)


def test_another_key_file_cannot_decrypt(tmp_path):
    a = VoucherCipher(keys.init(str(tmp_path / "a.json")))
    b = VoucherCipher(keys.init(str(tmp_path / "b.json")))
    with pytest.raises(TamperError):
        b.decrypt(1, "d1", a.encrypt(1, "12345678901234"))


# -- blind index ---------------------------------------------------------------------
def test_blind_index_is_hmac_sha256_and_deterministic(cipher):
    idx = cipher.blind_index("12345678901234")
    assert len(idx) == 32
    assert idx == cipher.blind_index("12345678901234")
    assert idx == hmac.new(cipher.ring.index_key, b"12345678901234", hashlib.sha256).digest()
    assert idx != cipher.blind_index("12345678901235")
    assert idx != hashlib.sha256(b"12345678901234").digest()   # keyed, not a bare hash
    # distinct HRNs get distinct indexes
    hrns = random_hrns(2000, 14)
    assert len({cipher.blind_index(h) for h in hrns}) == len(set(hrns))


def test_blind_index_differs_per_index_key(tmp_path):
    a = VoucherCipher(keys.init(str(tmp_path / "a.json")))
    b = VoucherCipher(keys.init(str(tmp_path / "b.json")))
    assert a.blind_index("12345678901234") != b.blind_index("12345678901234")


def test_blind_index_does_not_depend_on_data_key(keypath):
    before = VoucherCipher(keys.init(keypath)).blind_index("12345678")
    assert VoucherCipher(keys.rotate(keypath)).blind_index("12345678") == before


# -- random HRNs -------------------------------------------------------------------------
@pytest.mark.parametrize("length", [8, 10, 14, 16, 19, 20])
def test_random_hrns_exact_length_digits_only(length):
    hrns = random_hrns(3000, length)
    assert len(hrns) == 3000
    assert all(len(h) == length and h.isdigit() and h.isascii() for h in hrns)
    # leading zeros are kept (an HRN is a digit string, not a number)
    assert any(h[0] == "0" for h in hrns)


@pytest.mark.parametrize("count", [0, 1, 7, 64, 65])
def test_random_hrns_count(count):
    assert len(random_hrns(count, 14)) == count


@pytest.mark.parametrize("length", [0, 41, -1])
def test_random_hrns_rejects_silly_lengths(length):
    with pytest.raises(ValueError):
        random_hrns(1, length)


@pytest.mark.parametrize("length", range(8, 21))
def test_draw_parameters_have_no_modulo_bias(length):
    nbytes, limit, mod = draw_params(length)
    assert mod == 10 ** length
    assert limit % mod == 0                      # the accepted range is whole multiples
    assert limit <= 1 << (8 * nbytes)
    assert limit // mod >= 256                    # rejection is rare (< 1/256 of draws)


def test_random_hrns_uniqueness_and_uniform_digits():
    n, length = 200_000, 14
    hrns = random_hrns(n, length)
    # Birthday bound: expected duplicates ~ n^2 / (2 * 10^14) = 0.0002.  A sequential,
    # serial-derived or low-entropy generator would produce many; allow 2 so it never flakes.
    assert n - len(set(hrns)) <= 2
    # Chi-square per digit position, 9 degrees of freedom: the 1e-12 quantile is ~70, so a
    # bound of 80 cannot flake, while a biased position (e.g. modulo bias on the leading
    # digit, or a constant digit) scores in the hundreds or thousands.
    expected = n / 10
    worst = 0.0
    for pos in range(length):
        counts = collections.Counter(h[pos] for h in hrns)
        assert set(counts) == set("0123456789"), "position %d misses digits" % pos
        chi2 = sum((counts[d] - expected) ** 2 / expected for d in "0123456789")
        worst = max(worst, chi2)
    assert worst < 80, "a digit position is far from uniform (chi-square %.1f)" % worst
    # no correlation between neighbouring HRNs (not a counter)
    rising = sum(1 for a, b in zip(hrns, hrns[1:]) if b > a)
    assert abs(rising - (n - 1) / 2) < 0.02 * n


def test_chi_square_bound_would_catch_a_biased_generator():
    # the check above has teeth: modulo bias of 2^24 % 10^7-style magnitude is visible
    import random
    rnd = random.Random(1)
    n = 200_000
    biased = ["%014d" % (rnd.getrandbits(47) % 10 ** 14) for _ in range(n)]   # 2^47 ~ 1.4e14
    counts = collections.Counter(h[0] for h in biased)
    chi2 = sum((counts[d] - n / 10) ** 2 / (n / 10) for d in "0123456789")
    assert chi2 > 80
