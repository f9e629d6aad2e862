"""The Grafana dashboard and the Prometheus alert rules in docs/: well-formed, and every
series they query is one a node exports.  With promtool installed (Debian package
C{prometheus}), the rules and every dashboard query are also parsed by Prometheus itself."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import types

import yaml
from twisted.internet import task

from gateway.metrics.collectors import NodeCollector
from gateway.metrics.registry import PrometheusMetrics

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DASHBOARD = os.path.join(REPO, "docs", "grafana", "ivoms-dashboard.json")
ALERTS = os.path.join(REPO, "docs", "prometheus", "ivoms-alerts.yml")


def exported_names() -> set:
    """Every sample name a node exposes (registry metrics, scrape-time families, process)."""
    clock = task.Clock()
    m = PrometheusMetrics(clock)
    node = types.SimpleNamespace(
        runner=types.SimpleNamespace(depth=lambda: (0, 0)),
        activation=types.SimpleNamespace(in_flight=0),
        config=types.SimpleNamespace(billing=types.SimpleNamespace(connector="diameter")),
        billing_service=types.SimpleNamespace(links=[types.SimpleNamespace(
            label="ocs", usable=True, answers=0)]), clock=clock)
    figures = types.SimpleNamespace(values={"stock": [("T", "available", 1)], "fraud": []},
                                    read_at=0.0, clock=clock)
    smpp = types.SimpleNamespace(
        server=types.SimpleNamespace(factory=types.SimpleNamespace(accounts={})),
        connectors={}, channel=types.SimpleNamespace(counters={}, outbox=None))
    top = types.SimpleNamespace(getServiceNamed=lambda name: smpp)
    m.registry.register(NodeCollector(node, figures, top))
    names = set()
    for family in m.registry.collect():
        names.add(family.name)
        kinds = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
        for suffix in kinds.get(family.type, [""]):
            names.add(family.name + suffix)
        names.update(s.name for s in family.samples)
    return names


def series(expr: str) -> set:
    names = set(re.findall(r"\b((?:ivoms|process)_[a-z_]+)\b", expr))
    return names


def dashboard_exprs() -> list[str]:
    d = json.load(open(DASHBOARD, encoding="utf-8"))
    return [t["expr"] for p in d["panels"] for t in p.get("targets", [])]


def alert_rules() -> list[dict]:
    doc = yaml.safe_load(open(ALERTS, encoding="utf-8"))
    return [r for g in doc["groups"] for r in g["rules"]]


def test_dashboard_is_importable_json():
    d = json.load(open(DASHBOARD, encoding="utf-8"))
    assert d["uid"] == "ivoms-overview" and d["title"] and "id" not in d
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    names = {v["name"] for v in d["templating"]["list"]}
    assert names == {"datasource", "instance"}
    for p in d["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24 and g["h"] > 0
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}" and p["targets"], p["title"]
    titles = " ".join(p["title"] for p in d["panels"]).lower()
    for topic in ("activations", "latency", "billing peers", "smpp binds", "group-commit",
                  "stock", "fraud", "housekeeping", "cpu"):
        assert topic in titles, topic


def test_every_queried_series_is_exported():
    known = exported_names()
    queried = set()
    for expr in dashboard_exprs() + [r["expr"] for r in alert_rules()]:
        queried |= series(expr)
    assert queried and queried - known == set()


def test_alert_rules_cover_the_required_cases():
    rules = alert_rules()
    by_name = {r["alert"]: r for r in rules}
    for name in ("IvomsBillingPeerDown", "IvomsActivationFailureRatioHigh",
                 "IvomsActivationLatencyHigh", "IvomsVoucherStockLow",
                 "IvomsHousekeepingJobFailed"):
        assert name in by_name, name
    for r in rules:
        assert r["labels"]["severity"] in ("critical", "warning", "info")
        assert r["annotations"]["summary"] and r["expr"].strip()
    assert "ivoms_billing_peer_up" in by_name["IvomsBillingPeerDown"]["expr"]
    assert 'state="available"' in by_name["IvomsVoucherStockLow"]["expr"]


def test_promtool_checks_rules_and_dashboard_queries(tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:      # the structure tests above still ran
        return
    r = subprocess.run([promtool, "check", "rules", ALERTS], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    rules = [{"record": "ivoms:dashboard_query_%d" % i,
              "expr": e.replace("$__rate_interval", "5m").replace("$instance", ".*")}
             for i, e in enumerate(dashboard_exprs())]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    r = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: %d rules found" % len(rules) in r.stdout
    # the alerts fire on the series of docs/prometheus/ivoms-alerts.test.yml, and only there
    r = subprocess.run([promtool, "test", "rules", "ivoms-alerts.test.yml"], capture_output=True,
                       text=True, timeout=60, cwd=os.path.dirname(ALERTS))
    assert r.returncode == 0, r.stdout + r.stderr
