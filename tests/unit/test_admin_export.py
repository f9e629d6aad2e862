"""Distribution export: CMS EnvelopedData (AES-256) files, exactly-once export, partners, GUI flow."""
from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import subprocess
import time

import pytest
import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from sqlalchemy import func, select

from core import export as ex
from core.schema import audit_log, export, voucher, voucher_history
from tests.admin_helpers import admin_node, partner_cert  # noqa: F401
from tests.helpers import VType, make_batch, make_store


def decrypt(data: bytes, cert_path: str, key_path: str) -> bytes:
    with open(cert_path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    with open(key_path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    return pkcs7.pkcs7_decrypt_der(data, cert, key, [])


def rows_of(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8"))))


@pytest.fixture
def env(tmp_path, db_url):
    """A store on SQLite and on PostgreSQL, with partner 'Acme Print'."""
    store, cipher = make_store(db_url, str(tmp_path))
    pem, cert_path, key_path = partner_cert(tmp_path, "Acme")
    pid, created = store.run_sync(ex.save_partner, "Acme Print", pem.encode(), actor="t",
                                  origin="test", now=1)
    assert created
    yield store, cipher, pid, cert_path, key_path, str(tmp_path / "exports")
    store.dispose()


def now():
    return int(time.time() * 1000)


def run_export(store, cipher, flt, pid, export_dir, state="available", max_count=1000):
    return store.run_sync(ex.export_vouchers, cipher, flt, partner_id=pid, actor="t", origin="test",
                          now=now(), target_state=state, export_dir=export_dir, max_count=max_count)


def test_envelope_is_aes256_cms_for_the_recipient(tmp_path):
    pem, cert_path, key_path = partner_cert(tmp_path)
    data = ex.envelope(b"serial,hrn\r\n1,2\r\n", ex.load_certificate(pem.encode()))
    assert data[0] == 0x30                                    # DER SEQUENCE, not PEM/S-MIME
    assert decrypt(data, cert_path, key_path) == b"serial,hrn\r\n1,2\r\n"
    # AES-256-CBC content encryption: its OID 2.16.840.1.101.3.4.1.42
    assert bytes.fromhex("060960864801650304012a") in data


def test_export_writes_csv_marks_available_and_never_twice(env):
    store, cipher, pid, cert_path, key_path, out = env
    info, hrns = make_batch(store, cipher, count=30, available=False)
    res = run_export(store, cipher, ex.ExportFilter(batch_id=info.batch_id, count=20), pid, out)
    assert res.count == 20 and res.first_serial == info.first_serial
    assert res.sha256 == hashlib.sha256(res.data).hexdigest()
    with open(res.path, "rb") as f:
        assert f.read() == res.data
    rows = rows_of(decrypt(res.data, cert_path, key_path))
    assert rows[0] == list(ex.CSV_HEADER)
    assert len(rows) == 21
    for serial, hrn, code, value, cur, expiry, bid in rows[1:]:
        assert hrns[int(serial)] == hrn
        assert (code, value, cur, bid) == ("T10", "10.00", "EUR", str(info.batch_id))
        assert len(expiry) == 10
    states = dict(store.run_sync(lambda tx: tx.execute(
        select(voucher.c.state, func.count()).group_by(voucher.c.state)).rows))
    assert states == {"available": 20, "generated": 10}
    # the rest, then nothing is left
    res2 = run_export(store, cipher, ex.ExportFilter(batch_id=info.batch_id), pid, out)
    assert res2.count == 10 and res2.first_serial == info.first_serial + 20
    with pytest.raises(ex.ExportError, match="no generated"):
        run_export(store, cipher, ex.ExportFilter(batch_id=info.batch_id), pid, out)
    exports = store.run_sync(lambda tx: tx.execute(select(export.c.count, export.c.file_sha256)).rows)
    assert [tuple(e) for e in exports] == [(20, res.sha256), (10, res2.sha256)]
    hist = store.run_sync(lambda tx: tx.execute(select(voucher_history.c.to_state, voucher_history.c.reason)
                                                .where(voucher_history.c.serial == info.first_serial)).rows)
    assert ("available", "exported to Acme Print (export 1)") in [tuple(h) for h in hist]
    audits = store.run_sync(lambda tx: tx.execute(select(audit_log.c.detail)
                                                  .where(audit_log.c.action == "export")).rows)
    assert len(audits) == 2
    for (d,) in audits:                                       # never an HRN in the audit
        assert not any(h in d for h in hrns.values())


def test_export_can_keep_vouchers_generated_but_flagged(env):
    store, cipher, pid, *_, out = env
    info, _ = make_batch(store, cipher, count=5, available=False)
    run_export(store, cipher, ex.ExportFilter(batch_id=info.batch_id), pid, out, state="generated")
    rows = store.run_sync(lambda tx: tx.execute(select(voucher.c.state, voucher.c.exported)).rows)
    assert {tuple(r) for r in rows} == {("generated", 1)}
    with pytest.raises(ex.ExportError):
        run_export(store, cipher, ex.ExportFilter(batch_id=info.batch_id), pid, out)


def test_only_generated_vouchers_of_the_filter_are_exported(env):
    store, cipher, pid, cert_path, key_path, out = env
    a, _ = make_batch(store, cipher, count=10, available=True)              # available: not exportable
    b, _ = make_batch(store, cipher, count=10, available=False, vt=VType(code="T5", face_value=500))
    c, _ = make_batch(store, cipher, count=10, available=False)
    with pytest.raises(ex.ExportError):
        run_export(store, cipher, ex.ExportFilter(batch_id=a.batch_id), pid, out)
    assert store.run_sync(ex.preview, ex.ExportFilter(type_code="T10"), now())["count"] == 10
    pv = store.run_sync(ex.preview, ex.ExportFilter(first=b.first_serial + 5, last=c.first_serial + 2), now())
    assert pv["count"] == 8 and pv["by_type"] == {"T5": 5, "T10": 3}
    res = run_export(store, cipher, ex.ExportFilter(type_code="T5", count=3), pid, out)
    rows = rows_of(decrypt(res.data, cert_path, key_path))[1:]
    assert [r[2] for r in rows] == ["T5"] * 3 and rows[0][3] == "5.00"


def test_too_many_needs_a_count(env):
    store, cipher, pid, *_, out = env
    info, _ = make_batch(store, cipher, count=12, available=False)
    with pytest.raises(ex.ExportError, match="more than 10"):
        run_export(store, cipher, ex.ExportFilter(batch_id=info.batch_id), pid, out, max_count=10)
    assert run_export(store, cipher, ex.ExportFilter(batch_id=info.batch_id, count=10), pid, out,
                      max_count=10).count == 10


def test_concurrent_change_rolls_the_export_back(env, monkeypatch):
    """A voucher taken by another node between the SELECT and the conditional UPDATE
    aborts the whole export: nothing is flagged, no export row, no file."""
    from core.db import Tx
    store, cipher, pid, *_, out = env
    info, _ = make_batch(store, cipher, count=5, available=False)
    real_execute = Tx.execute
    done = []

    def execute(self, stmt, params=None):
        if getattr(stmt, "is_dml", False) and stmt.table is voucher and not done:
            done.append(1)
            real_execute(self, voucher.update().where(voucher.c.serial == info.first_serial)
                         .values(state="blocked"))
        return real_execute(self, stmt, params)
    monkeypatch.setattr(Tx, "execute", execute)
    with pytest.raises(ex.ExportError, match="changed while exporting"):
        run_export(store, cipher, ex.ExportFilter(batch_id=info.batch_id), pid, out)
    monkeypatch.undo()
    rows = store.run_sync(lambda tx: tx.execute(select(voucher.c.state, voucher.c.exported)).rows)
    assert {tuple(r) for r in rows} == {("generated", 0)}
    assert store.run_sync(lambda tx: tx.execute(select(func.count()).select_from(export)).scalar()) == 0
    assert not os.path.isdir(out) or not os.listdir(out)


def test_partner_certificates_are_checked(env, tmp_path):
    store, *_ = env
    with pytest.raises(ex.ExportError, match="X.509"):
        store.run_sync(ex.save_partner, "Bad", b"not a cert", actor="t", origin="t", now=1)
    from cryptography.hazmat.primitives.asymmetric import ec
    import datetime as dt
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID
    k = ec.generate_private_key(ec.SECP256R1())
    n = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ec")])
    t = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(n).issuer_name(n).public_key(k.public_key())
            .serial_number(1).not_valid_before(t).not_valid_after(t + dt.timedelta(days=1))
            .sign(k, hashes.SHA256()))
    with pytest.raises(ex.ExportError, match="RSA"):
        store.run_sync(ex.save_partner, "EC", cert.public_bytes(serialization.Encoding.PEM),
                       actor="t", origin="t", now=1)
    with pytest.raises(ex.ExportError, match="name"):
        store.run_sync(ex.save_partner, "<script>", b"x", actor="t", origin="t", now=1)
    # DER works and replaces the certificate of an existing partner
    pem, *_ = partner_cert(tmp_path, "Other")
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    pid, created = store.run_sync(ex.save_partner, "Acme Print", der, actor="t", origin="t", now=2)
    assert not created
    assert ex.describe_certificate(store.run_sync(ex.list_partners)[0]["certificate_pem"])["subject"] == "CN=Other"


def test_filter_needs_a_selection():
    with pytest.raises(ex.ExportError):
        ex.ExportFilter()
    with pytest.raises(ex.ExportError):
        ex.ExportFilter(first=5, last=4)
    with pytest.raises(ex.ExportError):
        ex.ExportFilter(batch_id=1, count=0)


# -- through the GUI --------------------------------------------------------------------
def gen(node, count=50, available=False):
    from tests.helpers import make_batch as mb
    vt = node.config.voucher_type("EUR10")
    return mb(node.store, node.node.cipher, count=count, vt=vt, available=available)


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_gui_partner_preview_export_download(admin_node, tmp_path):
    info, hrns = gen(admin_node, 50)
    pem, cert_path, key_path = partner_cert(tmp_path, "Kiosk")
    c = await admin_node.logged_in("dist")
    r = await c.get("/partners")
    r = await c.post("/partners", {"name": "Kiosk Ltd", "certificate": "garbage"})
    assert r.status == 400 and "X.509" in r.text
    r = await c.post("/partners", {"name": "Kiosk Ltd", "certificate": pem})
    assert r.status == 303
    r = await c.get("/partners")
    assert "Kiosk Ltd" in r.text and "CN=Kiosk" in r.text
    pid = admin_node.store.run_sync(lambda tx: ex.partner_row(tx, name="Kiosk Ltd"))["id"]
    # preview
    r = await c.get("/distribution?type=EUR10&batch=%d&range=&count=20" % info.batch_id)
    assert r.status == 200 and "<strong>20</strong> vouchers would be exported" in r.text
    r = await c.get("/distribution?range=%d-%d" % (info.first_serial, info.first_serial + 9))
    assert "<strong>10</strong> vouchers" in r.text
    r = await c.get("/distribution?range=9-1")
    assert r.status == 400
    # export
    r = await c.post("/distribution/export", {"type": "EUR10", "batch": str(info.batch_id),
                                              "range": "", "count": "20", "partner": str(pid)})
    assert r.status == 303 and r.header("location") == "/distribution/exports/1"
    page = await c.get("/distribution/exports/1")
    assert page.status == 200 and "Kiosk Ltd" in page.text and "20 vouchers" in page.text
    f = await c.get("/distribution/exports/1/file")
    assert f.status == 200 and f.header("content-type").startswith("application/pkcs7-mime")
    assert "attachment" in f.header("content-disposition")
    sha = hashlib.sha256(f.body).hexdigest()
    assert sha in page.text
    rows = rows_of(decrypt(f.body, cert_path, key_path))
    assert len(rows) == 21 and all(hrns[int(r_[0])] == r_[1] for r_ in rows[1:])
    if shutil.which("openssl"):
        p = tmp_path / "x.p7m"
        p.write_bytes(f.body)
        out = subprocess.run(["openssl", "cms", "-decrypt", "-inform", "DER", "-in", str(p),
                              "-recip", cert_path, "-inkey", key_path],
                             capture_output=True, check=True).stdout
        assert rows_of(out) == rows
    # the same selection again: only the 30 left; the 20 are never exported twice
    r = await c.get("/distribution?batch=%d" % info.batch_id)
    assert "<strong>30</strong> vouchers" in r.text
    r = await c.post("/distribution/export", {"batch": str(info.batch_id), "partner": str(pid),
                                              "range": "%d-%d" % (info.first_serial, info.first_serial + 19)})
    assert r.status == 409 and "Nothing was exported" in r.text
    r = await c.get("/distribution")
    assert sha in r.text                                       # history with the file hash
    actions = admin_node.store.run_sync(lambda tx: [a for (a,) in tx.execute(
        select(audit_log.c.action).where(audit_log.c.actor == "dist")).rows])
    assert actions == ["login", "partner.add", "export", "export.download"]
    assert (await c.get("/distribution/exports/7")).status == 404
    assert (await c.post("/distribution/export", {"partner": str(pid)})).status == 400


@pytest_twisted.ensureDeferred
async def test_export_file_missing_on_this_node(admin_node, tmp_path):
    info, _ = gen(admin_node, 5)
    pem, *_ = partner_cert(tmp_path, "P")
    pid, _ = admin_node.store.run_sync(ex.save_partner, "P", pem.encode(), actor="t", origin="t", now=1)
    res = admin_node.store.run_sync(ex.export_vouchers, admin_node.node.cipher,
                                    ex.ExportFilter(batch_id=info.batch_id), partner_id=pid,
                                    actor="t", origin="t", now=now(), target_state="available",
                                    export_dir=admin_node.config.admin.export_dir, max_count=100)
    os.remove(res.path)
    c = await admin_node.logged_in("dist")
    r = await c.get("/distribution/exports/%d" % res.export_id)
    assert r.status == 200 and "not kept on this node" in r.text
    assert (await c.get("/distribution/exports/%d/file" % res.export_id)).status == 404
