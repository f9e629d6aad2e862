"""Two C{ivoms run} processes on one PostgreSQL database, and the clients the cluster test uses.

Each node has its own copy of conf/ (its own node name and loopback ports)
and the same key file; they share the database, created fresh for the test.
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time

from bench.node_process import NodeProcess, edit_once, free_port

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHOP = ("demo-shop", "demo-shop-secret-change-me")
#: A SOAP account of its own for the throttle test, with a low per-source limit.
THROTTLED = ("shop-b", "shop-b-secret-0001")
THROTTLE_LIMIT = 6
ADMIN_PASSWORD = "cluster-admin-password-1"
ENVELOPE = ('<?xml version="1.0" encoding="UTF-8"?>'
            '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:t="urn:ivoms:soap:1">%s<s:Body><t:ActivateVoucher>'
            '<t:msisdn>%s</t:msisdn><t:hrn>%s</t:hrn><t:channelReference>%s</t:channelReference>'
            '</t:ActivateVoucher></s:Body></s:Envelope>')
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DIGEST = ("http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
          "#PasswordDigest")


class ClusterNode(NodeProcess):
    """One node: its folder, its ports, and its C{ivoms run} process (restartable)."""

    def __init__(self, base: str, name: str, db_url: str):
        self.name = name
        self.http_port, self.admin_port = free_port(), free_port()
        conf = os.path.join(base, name)
        shutil.copytree(os.path.join(REPO, "conf"), conf, ignore=shutil.ignore_patterns("var"))
        os.unlink(os.path.join(conf, "loyalty.toml"))        # credits are the vouchers' only
        self.folder = conf
        self.path = os.path.join(conf, "ivoms.toml")
        with open(self.path, encoding="utf-8") as f:
            text = f.read()
        for pattern, repl in (
                (r'^name = "node1"', 'name = "%s"' % name),
                (r'^url = "sqlite:///var/ivoms.db"', 'url = "%s"' % db_url),
                (r'^loyalty = "loyalty.toml"\n', ''),
                (r'^listen = "tcp:8080:interface=127.0.0.1"',
                 'listen = "tcp:%d:interface=127.0.0.1"' % self.http_port),
                (r'^listen = "tcp:8081:interface=127.0.0.1"',
                 'listen = "tcp:%d:interface=127.0.0.1"' % self.admin_port),
                (r'^listen = "tcp:9464:interface=127.0.0.1"',
                 'listen = "tcp:%d:interface=127.0.0.1"' % free_port()),
                (r'^endpoint = "tcp:2775:interface=127.0.0.1"',
                 'endpoint = "tcp:%d:interface=127.0.0.1"' % free_port()),
                (r'^reconcile_after_seconds = \d+', 'reconcile_after_seconds = 3'),
                (r'^reconcile_interval_seconds = \d+', 'reconcile_interval_seconds = 2'),
                (r'^schedule = "5 0 \* \* \*"', 'schedule = "* * * * *"'),      # expire
                (r'^schedule = "20 \* \* \* \*"', 'schedule = "* * * * *"')):   # lift_bars
            text = edit_once(text, pattern, repl)
        text += ('\n[[soap.clients]]\nname = "%s"\npassword = "%s"\nnetworks = ["127.0.0.0/8"]\n'
                 '\n[[fraud.sources]]\nsource = "%s"\nfailures_per_minute = %d\n'
                 % (THROTTLED[0], THROTTLED[1], THROTTLED[0], THROTTLE_LIMIT))
        with open(self.path, "w", encoding="utf-8") as f:
            f.write(text)
        self.env = dict(os.environ, PYTHONPATH=REPO)
        self.proc = None
        self.log_path = os.path.join(conf, "node.log")

    def cli(self, *args) -> str:
        r = subprocess.run([sys.executable, "-m", "gateway.cli", "--config", self.path, *args],
                           cwd=REPO, env=self.env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
        return r.stdout

    def start(self) -> None:
        log = open(self.log_path, "a", encoding="utf-8")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "--config", self.path, "run"],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "%s exited: %s" % (self.name, self.log()[-3000:])
            try:
                if http_get(self.http_port, "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("%s not ready within 90 s: %s" % (self.name, self.log()[-3000:]))

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()


# -- HTTP clients ---------------------------------------------------------------------------
def http_get(port, path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read(), r.getheaders()
    finally:
        c.close()


def http_post(port, path, body: bytes, headers, conn=None):
    """POST C{body}; C{conn}: a keep-alive connection to reuse. @return: (status, body)."""
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        c.request("POST", path, body=body, headers=headers)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        if conn is None:
            c.close()


def basic(account) -> dict:
    token = base64.b64encode(("%s:%s" % account).encode()).decode()
    return {"Authorization": "Basic " + token, "Content-Type": "text/xml; charset=utf-8",
            "SOAPAction": '"ActivateVoucher"'}


def soap_activate(port, msisdn, hrn, ref, *, account=SHOP, header="", conn=None):
    """ActivateVoucher; @return: (HTTP status, result code or None, body)."""
    status, body = http_post(port, "/soap", (ENVELOPE % (header, msisdn, hrn, ref)).encode(),
                             basic(account) if not header else
                             {"Content-Type": "text/xml; charset=utf-8",
                              "SOAPAction": '"ActivateVoucher"'}, conn)
    m = re.search(rb"resultCode>(-?\d+)<", body)
    return status, int(m.group(1)) if m else None, body


def wsse_digest(account) -> str:
    """A WS-Security UsernameToken header with a fresh nonce (PasswordDigest)."""
    nonce = secrets.token_bytes(16)
    created = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + account[1].encode())
                              .digest()).decode()
    return ('<s:Header><wsse:Security xmlns:wsse="%s" xmlns:wsu="%s"><wsse:UsernameToken>'
            '<wsse:Username>%s</wsse:Username><wsse:Password Type="%s">%s</wsse:Password>'
            '<wsse:Nonce>%s</wsse:Nonce><wsu:Created>%s</wsu:Created>'
            '</wsse:UsernameToken></wsse:Security></s:Header>'
            % (WSSE, WSU, account[0], DIGEST, digest, base64.b64encode(nonce).decode(), created))


def ussd(port, dialogue_id, operation, text, msisdn):
    """One USSD request (JSON envelope); @return: the answer's (operation, text)."""
    body = {"dialogue_id": dialogue_id, "operation": operation, "text": text}
    if operation == "begin":
        body["msisdn"] = msisdn
    status, data = http_post(port, "/ussd", json.dumps(body).encode(),
                             {"Content-Type": "application/json"})
    assert status == 200, (status, data)
    doc = json.loads(data)
    return doc["operation"], doc.get("text", "")


class Browser:
    """A GUI user agent: keeps the session cookie, reads the CSRF token of each page."""

    def __init__(self):
        self.cookie = None
        self.csrf = None

    def _headers(self):
        return {"Cookie": self.cookie} if self.cookie else {}

    def _take(self, headers, body):
        for k, v in headers:
            if k.lower() == "set-cookie" and "ivoms_session=" in v:
                self.cookie = v.split(";", 1)[0]
        m = re.search(rb'name="csrf" value="([^"]+)"', body)
        if m:
            self.csrf = m.group(1).decode()

    def get(self, port, path):
        status, body, headers = http_get(port, path, self._headers())
        self._take(headers, body)
        return status, body, dict((k.lower(), v) for k, v in headers)

    def post(self, port, path, fields: dict):
        from urllib.parse import urlencode
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            c.request("POST", path, body=urlencode(dict(fields, csrf=self.csrf)).encode(),
                      headers=dict(self._headers(),
                                   **{"Content-Type": "application/x-www-form-urlencoded"}))
            r = c.getresponse()
            body = r.read()
            headers = r.getheaders()
        finally:
            c.close()
        self._take(headers, body)
        return r.status, body, dict((k.lower(), v) for k, v in headers)
