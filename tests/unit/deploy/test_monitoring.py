"""The dashboards and alerts in deploy/ query only metrics the services export, and
Prometheus accepts its configuration and alert rules."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
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
    ],
)
def test_promtool_accepts_the_prometheus_files(command: list[str]) -> None:
    venv_bin = str(Path(sys.executable).parent)
    promtool = shutil.which("promtool") or shutil.which("promtool", path=venv_bin)
    if promtool is None:
        missing = "promtool is missing: `make tools` unpacks it from Debian's prometheus package"
        assert not os.environ.get("CI"), missing + " (CI requires it)"
        pytest.skip(missing)
    result = subprocess.run(
        [promtool, *command], cwd=DEPLOY, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
