"""The dashboards and alerts in deploy/ query only metrics the services or the scraped
exporters export, every alert says what it means and what to do, and Prometheus accepts
its configuration, its alert rules and their unit tests."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from local.reference import REPO
from services import SERVICE_NAMES

DEPLOY = REPO / "deploy"
SERVICES = REPO / "services"
METRIC = re.compile(r"\b(crm_[a-z0-9_]+)")


def exported_metric_names() -> set[str]:
    """Every sample name the services can export, from their registered metrics."""
    for name in SERVICE_NAMES:
        if (SERVICES / name / "__main__.py").exists():
            importlib.import_module(f"services.{name}.service")
    names: set[str] = set()
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("_count", "_sum", "_created"),
        "gauge": ("",),
    }
    for family in REGISTRY.collect():
        for suffix in suffixes.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


def queried_metric_names() -> dict[str, set[str]]:
    dashboards = {
        path.name: {
            m
            for panel in json.loads(path.read_text())["panels"]
            for target in panel.get("targets", [])
            for m in METRIC.findall(target["expr"])
        }
        for path in (DEPLOY / "grafana" / "dashboards").glob("*.json")
    }
    alerts = (DEPLOY / "prometheus" / "alerts.yml").read_text()
    return {**dashboards, "alerts.yml": set(METRIC.findall(alerts))}


def test_dashboards_and_alerts_query_only_metrics_the_services_export() -> None:
    exported = exported_metric_names()
    queried = queried_metric_names()
    assert all(queried.values()), "every file should query some CRM metric"
    unknown = {name: sorted(used - exported) for name, used in queried.items() if used - exported}
    assert not unknown, f"queries refer to metrics no service exports: {unknown}"


@pytest.mark.parametrize(
    "command",
    [
        ["check", "config", "prometheus/prometheus.yml"],
        ["check", "rules", "prometheus/alerts.yml"],
        ["test", "rules", "prometheus/alerts.test.yml"],
    ],
)
def test_promtool_accepts_the_prometheus_files(command: list[str]) -> None:
    venv_bin = str(Path(sys.executable).parent)
    promtool = shutil.which("promtool") or shutil.which("promtool", path=venv_bin)
    if promtool is None:
        missing = "promtool is missing: `make tools` unpacks it from Debian's prometheus package"
        assert not os.environ.get("CI"), missing + " (CI requires it)"
        pytest.skip("promtool is missing: `make tools` unpacks it from Debian's prometheus package")
    result = subprocess.run(
        [promtool, *command], cwd=DEPLOY, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def alert_rules() -> dict[str, list[dict[str, Any]]]:
    """The alerts of each group of alerts.yml."""
    groups = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
    return {group["name"]: [r for r in group["rules"] if "alert" in r] for group in groups}


def test_every_alert_says_what_it_means_and_what_to_do() -> None:
    rules = [rule for group in alert_rules().values() for rule in group]
    assert len(rules) >= 18
    for rule in rules:
        annotations = rule.get("annotations", {})
        assert annotations.get("summary"), rule["alert"]
        assert len(annotations.get("description", "")) >= 40, rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]


def test_every_alert_has_unit_tests_that_it_fires_and_when_not() -> None:
    tests = yaml.safe_load((DEPLOY / "prometheus" / "alerts.test.yml").read_text())["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    alerts = [rule["alert"] for group in alert_rules().values() for rule in group]
    for alert in alerts:
        mine = [case for case in cases if case["alertname"] == alert]
        assert any(case.get("exp_alerts") for case in mine), f"{alert} never shown firing"
        assert any(not case.get("exp_alerts") for case in mine), f"{alert} never shown quiet"


EXPORTER_METRICS = {"postgres": "pg_", "kafka": "kafka_"}
"""The exporters' scrape jobs and the prefix of the metrics each exports."""


def test_every_exporter_is_scraped_under_the_job_its_alerts_select() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    exporters = {name: spec for name, spec in compose.items() if "exporter" in spec["image"]}
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {
        target.split(":")[0]: (job["job_name"], int(target.split(":")[1]))
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    assert set(exporters) <= set(jobs)
    scraped = {jobs[name][0] for name in exporters}
    assert scraped == set(EXPORTER_METRICS)
    alerts = (DEPLOY / "prometheus" / "alerts.yml").read_text()
    dashboards = "".join(p.read_text() for p in (DEPLOY / "grafana" / "dashboards").glob("*.json"))
    for job, prefix in EXPORTER_METRICS.items():
        assert f'up{{job="{job}"}} == 0' in alerts, job
        assert re.search(rf"\b{prefix}[a-z_]+", alerts), prefix
        assert re.search(rf"\b{prefix}[a-z_]+", dashboards), prefix

    kubernetes = [
        d
        for path in sorted((DEPLOY / "kubernetes").glob("*.yaml"))
        for d in yaml.safe_load_all(path.read_text())
        if d
    ]
    (monitor,) = [d for d in kubernetes if d["kind"] == "PodMonitor" and d["spec"].get("jobLabel")]
    deployments = [
        d
        for d in kubernetes
        if d["kind"] == "Deployment"
        and "exporter" in d["spec"]["template"]["spec"]["containers"][0]["image"]
    ]
    assert {d["metadata"]["name"] for d in deployments} == set(exporters)
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        pod = deployment["spec"]["template"]
        labels = pod["metadata"]["labels"]
        (container,) = pod["spec"]["containers"]
        (port,) = container["ports"]
        assert container["image"] == exporters[name]["image"]  # the same pinned version
        assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert labels[monitor["spec"]["jobLabel"]] == jobs[name][0]
        assert port["containerPort"] == jobs[name][1]
        assert port["name"] in {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]}
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(jobs[name][1])
