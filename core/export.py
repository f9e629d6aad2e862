"""Distribution export: generated vouchers as a CSV inside CMS EnvelopedData for a partner (DESIGN §9).

The file is DER-encoded CMS C{EnvelopedData} (RFC 5652) built with
cryptography's C{PKCS7EnvelopeBuilder}: the content is encrypted with
AES-256-CBC under a random key, which is encrypted for the partner's RSA
certificate (key transport, RSAES-PKCS1-v1_5, the only recipient type that
builder offers).  The partner opens it with
C{openssl cms -decrypt -inform DER -in FILE -recip CERT -inkey KEY}.

The content is a CSV (RFC 4180, CRLF, UTF-8) with the header
C{serial,hrn,type,value,currency,expiry,batch}: C{value} in major units
with the currency's minor digits, C{expiry} the last valid day (UTC).

L{export_vouchers} is one unit of work: it selects C{generated},
never-exported vouchers of ready batches, flags them C{exported} and moves
them to the target state with one conditional UPDATE per chunk, records
their history, the export row and an audit entry, and returns the file.
Either all of that commits or none of it, and a voucher can never be in
two exports (C{exported = 0} is part of the UPDATE's condition).

The GUI's distribution pages and the CLI's C{export} and C{partner}
commands both export through this module.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import pkcs7
from sqlalchemy import and_, bindparam, func, insert, select, update

from core.audit import audit
from core.money import format_amount
from core.schema import batch, export, partner, voucher, voucher_history
from core.timeutil import fmt_day

CSV_HEADER = ("serial", "hrn", "type", "value", "currency", "expiry", "batch")
CHUNK = 500
MIME = "application/pkcs7-mime"


class ExportError(Exception):
    """The export cannot be made (no partner, nothing matches, a bad certificate...)."""


# -- certificates -----------------------------------------------------------------
def load_certificate(data: bytes) -> x509.Certificate:
    """Parse a partner certificate (PEM or DER) usable as a CMS recipient.

    @raise ExportError: not an X.509 certificate, or its key is not RSA.
    """
    pem = data.strip().startswith(b"-----")
    try:
        cert = (x509.load_pem_x509_certificate(data.strip()) if pem
                else x509.load_der_x509_certificate(data))
    except ValueError as e:
        raise ExportError("not an X.509 certificate (PEM or DER): %s" % e)
    if not isinstance(cert.public_key(), rsa.RSAPublicKey):
        raise ExportError("the certificate's key must be RSA (CMS key transport)")
    return cert


def describe_certificate(pem: str) -> dict:
    """Subject, expiry and SHA-256 fingerprint of a stored certificate, for display."""
    cert = load_certificate(pem.encode("ascii"))
    return {"subject": cert.subject.rfc4514_string(),
            "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%d"),
            "not_after_ms": int(cert.not_valid_after_utc.timestamp() * 1000),
            "fingerprint": cert.fingerprint(hashes.SHA256()).hex()}


def to_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


# -- the file ---------------------------------------------------------------------------
def build_csv(rows) -> bytes:
    """The CSV of C{rows} of (serial, hrn, type, value minor, currency, expires_at ms, batch)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(CSV_HEADER)
    for serial, hrn, code, value, currency, expires_at, batch_id in rows:
        w.writerow((serial, hrn, code, format_amount(value, currency), currency, fmt_day(expires_at), batch_id))
    return out.getvalue().encode("utf-8")


def envelope(content: bytes, cert: x509.Certificate) -> bytes:
    """C{content} as DER CMS EnvelopedData, AES-256-CBC, for C{cert}'s holder."""
    return (pkcs7.PKCS7EnvelopeBuilder().set_data(content).add_recipient(cert)
            .set_content_encryption_algorithm(algorithms.AES256)
            .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary]))


# -- the selection --------------------------------------------------------------------
@dataclass(frozen=True)
class ExportFilter:
    """Which generated vouchers to export: a type, a batch, a serial range, at most C{count}."""

    type_code: str | None = None
    batch_id: int | None = None
    first: int | None = None
    last: int | None = None
    count: int | None = None

    def __post_init__(self):
        if self.type_code is None and self.batch_id is None and self.first is None:
            raise ExportError("choose a voucher type, a batch or a serial range")
        if (self.first is None) != (self.last is None):
            raise ExportError("a serial range needs its first and last serial")
        if self.first is not None and self.first > self.last:
            raise ExportError("serial range %d-%d is empty" % (self.first, self.last))
        if self.count is not None and self.count < 1:
            raise ExportError("count must be at least 1")

    def conditions(self, now: int) -> list:
        """SQL conditions on C{voucher} joined with C{batch}."""
        c = [voucher.c.state == "generated", voucher.c.exported == 0, batch.c.state == "ready",
             voucher.c.expires_at > now]
        if self.type_code is not None:
            c.append(batch.c.type_code == self.type_code)
        if self.batch_id is not None:
            c.append(voucher.c.batch_id == self.batch_id)
        if self.first is not None:
            c.append(voucher.c.serial.between(self.first, self.last))
        return c

    def describe(self) -> str:
        parts = []
        if self.type_code:
            parts.append("type %s" % self.type_code)
        if self.batch_id is not None:
            parts.append("batch %d" % self.batch_id)
        if self.first is not None:
            parts.append("serials %d-%d" % (self.first, self.last))
        if self.count is not None:
            parts.append("at most %d" % self.count)
        return ", ".join(parts)


_JOIN = voucher.join(batch, voucher.c.batch_id == batch.c.id)


def preview(tx, flt: ExportFilter, now: int) -> dict:
    """How many vouchers C{flt} would export now: total, first and last serial, by type."""
    rows = tx.execute(select(batch.c.type_code, func.count(), func.min(voucher.c.serial),
                             func.max(voucher.c.serial))
                      .select_from(_JOIN).where(and_(*flt.conditions(now)))
                      .group_by(batch.c.type_code)).rows
    matching = sum(r[1] for r in rows)
    return {"matching": matching,
            "count": min(matching, flt.count) if flt.count is not None else matching,
            "by_type": {r[0]: r[1] for r in rows},
            "first": min((r[2] for r in rows), default=None),
            "last": max((r[3] for r in rows), default=None)}


@dataclass(frozen=True)
class ExportResult:
    export_id: int
    partner: str
    count: int
    first_serial: int
    last_serial: int
    sha256: str
    path: str
    data: bytes

    @property
    def filename(self) -> str:
        return os.path.basename(self.path)


_PARTNER_BY_ID = select(partner).where(partner.c.id == bindparam("id"))
_PARTNER_BY_NAME = select(partner).where(partner.c.name == bindparam("name"))
_INSERT_EXPORT = insert(export).values(
    partner_id=bindparam("partner_id"), actor=bindparam("actor"), count=bindparam("count"),
    first_serial=bindparam("first_serial"), last_serial=bindparam("last_serial"),
    file_sha256=bindparam("file_sha256"), at=bindparam("at")).returning(export.c.id)


def partner_row(tx, *, partner_id: int | None = None, name: str | None = None) -> dict | None:
    if partner_id is not None:
        r = tx.execute(_PARTNER_BY_ID, {"id": partner_id}).first()
    else:
        r = tx.execute(_PARTNER_BY_NAME, {"name": name}).first()
    return dict(zip(partner.c.keys(), r)) if r is not None else None


def export_vouchers(tx, cipher, flt: ExportFilter, *, partner_id: int, actor: str, origin: str,
                    now: int, target_state: str, export_dir: str, max_count: int) -> ExportResult:
    """Export the vouchers C{flt} selects to partner C{partner_id} (a unit of work).

    The file is written to C{export_dir} before the unit returns; a caller
    whose commit fails deletes it (L{discard}).

    @param target_state: C{available} or C{generated}.
    @return: the export's id, counts, SHA-256 and the DER bytes.
    @raise ExportError: unknown partner, nothing to export, too many, or the
        vouchers changed under us (nothing is changed then).
    """
    if target_state not in ("available", "generated"):
        raise ExportError("export target state must be 'available' or 'generated'")
    p = partner_row(tx, partner_id=partner_id)
    if p is None:
        raise ExportError("no partner with id %d" % partner_id)
    cert = load_certificate(p["certificate_pem"].encode("ascii"))
    limit = flt.count if flt.count is not None else max_count + 1
    rows = tx.execute(select(voucher.c.serial, voucher.c.key_id, voucher.c.hrn_ct,
                             batch.c.type_code, batch.c.face_value, batch.c.currency,
                             voucher.c.expires_at, voucher.c.batch_id)
                      .select_from(_JOIN).where(and_(*flt.conditions(now)))
                      .order_by(voucher.c.serial).limit(limit)).rows
    if not rows:
        raise ExportError("no generated, not yet exported vouchers of a ready batch match (%s)"
                          % flt.describe())
    if len(rows) > max_count:
        raise ExportError("more than %d vouchers match; give a count or a narrower selection"
                          % max_count)
    serials = [r[0] for r in rows]
    changed = 0
    for i in range(0, len(serials), CHUNK):
        part = serials[i:i + CHUNK]
        changed += tx.execute(update(voucher).where(and_(
            voucher.c.serial.in_(part), voucher.c.state == "generated", voucher.c.exported == 0))
            .values(exported=1, state=target_state)).rowcount
    if changed != len(serials):
        raise ExportError("some of the selected vouchers changed while exporting; nothing was "
                          "exported, try again")
    content = build_csv((s, cipher.decrypt(s, kid, bytes(ct)), code, value, cur, exp, bid)
                        for s, kid, ct, code, value, cur, exp, bid in rows)
    data = envelope(content, cert)
    del content
    digest = hashlib.sha256(data).hexdigest()
    export_id = tx.execute(_INSERT_EXPORT, {
        "partner_id": partner_id, "actor": actor, "count": len(serials),
        "first_serial": serials[0], "last_serial": serials[-1], "file_sha256": digest,
        "at": now}).scalar()
    reason = "exported to %s (export %d)" % (p["name"], export_id)[:128]
    tx.insert_many(voucher_history, [
        {"serial": s, "at": now, "actor": actor, "from_state": "generated",
         "to_state": target_state, "reason": reason} for s in serials])
    audit(tx, at=now, actor=actor, action="export", target="partner %s" % p["name"], origin=origin,
          detail={"export": export_id, "count": len(serials), "first": serials[0],
                  "last": serials[-1], "sha256": digest, "state": target_state,
                  "filter": flt.describe()})
    path = os.path.join(export_dir, "ivoms-export-%d-%s.p7m"
                        % (export_id, re.sub(r"[^A-Za-z0-9_-]+", "_", p["name"])[:40]))
    os.makedirs(export_dir, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return ExportResult(export_id, p["name"], len(serials), serials[0], serials[-1], digest, path,
                        data)


def discard(export_dir: str, export_id: int | None = None) -> None:
    """Remove files of an export whose unit of work did not commit (best effort)."""
    if export_id is None or not os.path.isdir(export_dir):
        return
    prefix = "ivoms-export-%d-" % export_id
    for name in os.listdir(export_dir):
        if name.startswith(prefix):
            try:
                os.remove(os.path.join(export_dir, name))
            except OSError:
                pass


def find_file(export_dir: str, export_id: int) -> str | None:
    """The stored file of export C{export_id}, or None."""
    if not os.path.isdir(export_dir):
        return None
    prefix = "ivoms-export-%d-" % export_id
    for name in sorted(os.listdir(export_dir)):
        if name.startswith(prefix) and name.endswith(".p7m"):
            return os.path.join(export_dir, name)
    return None


def history(tx, limit: int = 100, export_id: int | None = None) -> list[dict]:
    """The newest exports (or export C{export_id}) with their partner's name."""
    q = select(export.c.id, partner.c.name, export.c.actor, export.c.count, export.c.first_serial,
               export.c.last_serial, export.c.file_sha256, export.c.at) \
        .select_from(export.join(partner, export.c.partner_id == partner.c.id)) \
        .order_by(export.c.id.desc()).limit(limit)
    if export_id is not None:
        q = q.where(export.c.id == export_id)
    keys = ("id", "partner", "actor", "count", "first_serial", "last_serial", "sha256", "at")
    return [dict(zip(keys, r)) for r in tx.execute(q).rows]


# -- partners ---------------------------------------------------------------------------
def list_partners(tx) -> list[dict]:
    rows = tx.execute(select(partner).order_by(partner.c.name)).rows
    out = []
    for r in rows:
        p = dict(zip(partner.c.keys(), r))
        try:
            p.update(describe_certificate(p["certificate_pem"]))
        except ExportError as e:
            p["problem"] = str(e)
        out.append(p)
    return out


def save_partner(tx, name: str, cert_data: bytes, *, actor: str, origin: str, now: int) -> tuple[int, bool]:
    """Add partner C{name} or replace its certificate; audited.

    @return: (partner id, whether it was created).
    @raise ExportError: bad name or certificate.
    """
    name = name.strip()
    if not re.fullmatch(r"[\w .&'-]{1,128}", name):
        raise ExportError("a partner name is 1-128 letters, digits, spaces or . & ' - _")
    cert = load_certificate(cert_data)
    pem = to_pem(cert)
    fp = cert.fingerprint(hashes.SHA256()).hex()
    existing = partner_row(tx, name=name)
    if existing is None:
        tx.insert(partner, {"name": name, "certificate_pem": pem, "created_at": now})
        pid, created = partner_row(tx, name=name)["id"], True
    else:
        tx.execute(update(partner).where(partner.c.id == existing["id"]).values(certificate_pem=pem))
        pid, created = existing["id"], False
    audit(tx, at=now, actor=actor, action="partner.add" if created else "partner.certificate",
          target="partner %s" % name, origin=origin,
          detail={"subject": cert.subject.rfc4514_string(), "sha256": fp})
    return pid, created
