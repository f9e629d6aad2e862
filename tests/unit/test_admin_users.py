"""Admin GUI users page and audit page; the C{ivoms user add}, C{partner add} and C{export} commands."""
from __future__ import annotations

import csv
import io
import re

import pytest_twisted
from sqlalchemy import select

from core.schema import audit_log, users
from tests.admin_helpers import admin_node, init_instance, partner_cert, write_conf  # noqa: F401


def user_id(node, name):
    return node.store.run_sync(lambda tx: tx.execute(select(users.c.id).where(users.c.name == name)).scalar())


@pytest_twisted.ensureDeferred
async def test_add_users_change_roles_disable_and_reset(admin_node):
    a = await admin_node.logged_in("admin")
    r = await a.get("/users")
    assert all(n in r.text for n in ("vm", "dist", "hk", "care", "rv"))
    r = await a.post("/users", {"name": "zoe", "role": "distributor", "password": "long enough pw"})
    assert r.status == 303
    r = await a.post("/users", {"name": "zoe", "role": "distributor", "password": ""})
    assert r.status == 400 and "already exists" in r.text
    assert (await a.post("/users", {"name": "x", "role": "god"})).status == 400
    assert (await a.post("/users", {"name": "x", "role": "report_viewer", "password": "short"})).status == 400
    r = await a.post("/users", {"name": "gen", "role": "report_viewer", "password": ""})
    page = await a.get(r.header("location"))
    pw = re.search(r"Generated password for gen, shown only now: (\S+)</p>", page.text).group(1)
    assert (await admin_node.client().login("gen", pw)).status == 303
    # role change applies to the running session (it is ended) and the next login
    z = await admin_node.client().login("zoe", "long enough pw")
    assert z.status == 303
    await a.get("/users")
    r = await a.post("/users/%d" % user_id(admin_node, "zoe"), {"action": "role", "role": "report_viewer"})
    assert r.status == 303
    zc = admin_node.client()
    assert (await zc.login("zoe", "long enough pw")).status == 303
    assert (await zc.get("/reports")).status == 200 and (await zc.get("/distribution")).status == 403
    # disable ends the session and refuses logins
    r = await a.post("/users/%d" % user_id(admin_node, "zoe"), {"action": "disable"})
    assert (await zc.get("/reports")).status == 303
    assert (await admin_node.client().login("zoe", "long enough pw")).status == 401
    r = await a.post("/users/%d" % user_id(admin_node, "zoe"), {"action": "enable"})
    assert (await admin_node.client().login("zoe", "long enough pw")).status == 303
    # a new password, shown once
    r = await a.post("/users/%d" % user_id(admin_node, "zoe"), {"action": "password"})
    page = await a.get("/users")
    pw = re.search(r"New password for zoe, shown only now: (\S+)</p>", page.text).group(1)
    assert (await admin_node.client().login("zoe", "long enough pw")).status == 401
    assert (await admin_node.client().login("zoe", pw)).status == 303
    actions = admin_node.store.run_sync(lambda tx: [a_ for (a_,) in tx.execute(
        select(audit_log.c.action).where(audit_log.c.actor == "admin")).rows])
    for act in ("user.add", "user.role", "user.disable", "user.enable", "user.password"):
        assert act in actions
    assert all(pw not in (d or "") for (d,) in admin_node.store.run_sync(
        lambda tx: tx.execute(select(audit_log.c.detail)).rows))


@pytest_twisted.ensureDeferred
async def test_the_last_administrator_is_protected(admin_node):
    a = await admin_node.logged_in("admin")
    await a.get("/users")
    me = user_id(admin_node, "admin")
    r = await a.post("/users/%d" % me, {"action": "disable"})
    assert r.status == 400 and "yourself" in r.text
    r = await a.post("/users/%d" % me, {"action": "role", "role": "report_viewer"})
    assert r.status == 400 and "own role" in r.text
    assert (await a.post("/users/9999", {"action": "unlock"})).status == 400
    assert (await a.post("/users/%d" % me, {"action": "fly"})).status == 400


@pytest_twisted.ensureDeferred
async def test_audit_page_filters(admin_node):
    a = await admin_node.logged_in("admin")
    await (await admin_node.logged_in("hk")).get("/")
    await admin_node.client().login("care", "bad password")
    r = await a.get("/audit")
    assert r.status == 200 and "login.failed" in r.text and "gui:127.0.0.1" in r.text
    r = await a.get("/audit?actor=hk")
    rows = re.findall(r"<tr><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td>", r.text)
    assert rows == [("hk", "login")]
    r = await a.get("/audit?action=login.f")
    rows = re.findall(r"<tr><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td>", r.text)
    assert rows == [("care", "login.failed")]
    r = await a.get("/audit?from=2001-01-01&to=2001-01-02")
    assert "No entries" in r.text
    assert (await a.get("/audit?from=nope")).status == 400


def test_cli_user_add_partner_add_and_export(conf_dir, tmp_path, capsys):
    from core.export import CSV_HEADER
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs7
    from gateway.cli import main
    path = write_conf(conf_dir)
    init_instance(path)
    capsys.readouterr()
    assert main(["--config", path, "user", "add", "kim", "--role", "distributor"]) == 0
    out = capsys.readouterr().out
    assert "with role distributor and password: " in out and "shown only this once" in out
    assert main(["--config", path, "user", "add", "kim", "--role", "distributor"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["--config", path, "user", "add", "lee", "--role", "boss"]) == 1
    assert main(["--config", path, "user", "add", "lee", "--role", "customer_care",
                 "--password", "a long password"]) == 0
    assert "password" not in capsys.readouterr().out.split("customer_care", 1)[1]
    assert main(["--config", path, "generate", "--type", "EUR5", "--count", "12"]) == 0
    pem, cert_path, key_path = partner_cert(tmp_path, "Cli")
    out_file = str(tmp_path / "out.p7m")
    args = ["--config", path, "export", "--partner", "Shop", "--type", "EUR5", "--count", "10",
            "--out", out_file]
    assert main(args) == 1
    assert "no partner" in capsys.readouterr().err
    assert main(["--config", path, "partner", "add", "Shop", "--cert", cert_path]) == 0
    capsys.readouterr()
    assert main(args) == 0
    assert "10 vouchers" in capsys.readouterr().out
    with open(out_file, "rb") as f:
        data = f.read()
    with open(cert_path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    with open(key_path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    rows = list(csv.reader(io.StringIO(pkcs7.pkcs7_decrypt_der(data, cert, key, []).decode())))
    assert rows[0] == list(CSV_HEADER) and len(rows) == 11
    assert main(args) == 0                  # the 2 left
    assert main(args) == 1                  # none left: never exported twice
    assert "nothing exported" in capsys.readouterr().err
    assert main(["--config", path, "export", "--partner", "Shop", "--range", "9-1", "--out", out_file]) == 1
    assert main(["--config", path, "export", "--partner", "Shop", "--type", "NOPE", "--out", out_file]) == 1
