"""A real Prometheus server (Debian's C{prometheus}) scrapes a real node's /metrics and
loads the shipped alert rules; its query API then answers the node's counts.

The node is started in-process on loopback; Prometheus runs as a child process on a
loopback port with its storage in the test's folder, and is stopped (SIGTERM, then
SIGKILL) whatever happens.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import urllib.request

import pytest
import pytest_twisted
from twisted.internet import task, threads

from core.requests import ActivationRequest
from gateway.config import load_config
from tests.metrics_helpers import available_hrns, free_port, metrics_instance

pytestmark = pytest.mark.integration
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RULES = os.path.join(REPO, "docs", "prometheus", "ivoms-alerts.yml")


def _get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


@pytest_twisted.ensureDeferred
async def test_prometheus_scrapes_the_node_and_loads_the_rules(conf_dir, tmp_path, reactor):
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.fail("the Debian package prometheus is needed (./test installs it)")
    from gateway.service import make_service
    metrics_port, http_port, prom_port = free_port(), free_port(), free_port()
    cfg = load_config(metrics_instance(conf_dir, metrics_port, http_port))
    shutil.copy(RULES, tmp_path / "ivoms-alerts.yml")
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "rule_files: [ivoms-alerts.yml]\n"
        "scrape_configs:\n  - job_name: ivoms\n    static_configs:\n"
        "      - targets: ['127.0.0.1:%d']\n" % metrics_port)
    top = make_service(cfg, reactor)
    node = top.node
    top.startService()
    proc = None
    try:
        hrn, = available_hrns(node, 1)
        r = await node.activation.activate(ActivationRequest(msisdn="0641234567", hrn=hrn,
                                                             channel="soap"))
        assert int(r.code) == 0
        proc = subprocess.Popen(
            [prometheus, "--config.file", str(tmp_path / "prometheus.yml"),
             "--storage.tsdb.path", str(tmp_path / "data"),
             "--web.listen-address", "127.0.0.1:%d" % prom_port],
            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "wb"))
        base = "http://127.0.0.1:%d/api/v1/" % prom_port
        query = base + "query?query=" + urllib.request.quote(
            'ivoms_activations_total{channel="soap",code="0"}')
        found = None
        for _ in range(300):
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
            try:
                answer = await threads.deferToThread(_get, query)
            except OSError:
                answer = None
            if answer and answer["data"]["result"]:
                found = answer["data"]["result"]
                break
            await task.deferLater(reactor, 0.1, lambda: None)
        assert found is not None, "Prometheus never scraped the node"
        assert [(s["metric"]["result"], s["value"][1]) for s in found] == [("SUCCESS", "1")]
        targets = await threads.deferToThread(_get, base + "targets")
        active = targets["data"]["activeTargets"]
        assert [t["health"] for t in active] == ["up"]
        rules = await threads.deferToThread(_get, base + "rules")
        loaded = [r for g in rules["data"]["groups"] for r in g["rules"]]
        import yaml
        with open(RULES) as f:
            shipped = [r["alert"] for g in yaml.safe_load(f)["groups"] for r in g["rules"]]
        assert len(shipped) >= 12                  # the file read is the shipped one
        assert sorted(r["name"] for r in loaded) == sorted(shipped)
        assert {r["health"] for r in loaded} <= {"ok", "unknown"}
        stock = await threads.deferToThread(_get, base + "query?query=" + urllib.request.quote(
            'sum(ivoms_voucher_stock{state="used"})'))
        assert stock["data"]["result"][0]["value"][1] == "1"
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        await top.stopService()
