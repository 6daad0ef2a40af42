"""The deployment files in deploy/ (Kubernetes, compose) run every service of the
repository, probed, limited, unprivileged and with the secrets it needs."""

from __future__ import annotations

from typing import Any

import yaml

from local.reference import REPO

DEPLOY = REPO / "deploy"
SERVICES = REPO / "services"


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
