"""The operator's files in deploy/ refer to what the services really export, and
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
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from services import SERVICE_NAMES

REPO = Path(__file__).resolve().parents[2]
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


def manifests() -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        documents += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return documents


def test_every_deployment_is_probed_limited_and_unprivileged() -> None:
    deployments = [d for d in manifests() if d["kind"] == "Deployment"]
    assert deployments
    for deployment in deployments:
        spec = deployment["spec"]
        assert spec["replicas"] >= 2, deployment["metadata"]["name"]
        pod = spec["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
            assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
            assert {"cpu", "memory"} <= set(container["resources"]["limits"])


def test_every_deployment_gets_the_secrets_a_service_needs_to_start() -> None:
    for deployment in (d for d in manifests() if d["kind"] == "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            names = {variable["name"] for variable in container.get("env", [])}
            assert {"CRM_DATABASE_URL", "CRM_AUTH_SECRET", "CRM_KEYRING_MASTER_KEY"} <= names, (
                deployment["metadata"]["name"]
            )


def test_deployed_services_are_the_services_of_the_repository() -> None:
    built = {p.parent.name for p in SERVICES.glob("*/__main__.py")}
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    in_compose = {
        name for name, spec in compose.items() if "services." in " ".join(spec.get("command", []))
    }
    in_kubernetes = {d["metadata"]["name"] for d in manifests() if d["kind"] == "Deployment"}
    kustomized = set(
        yaml.safe_load((DEPLOY / "kubernetes" / "kustomization.yaml").read_text())["resources"]
    )
    assert in_compose == built
    assert in_kubernetes == built
    assert {f"{name}.yaml" for name in built} <= kustomized
