"""The deployment files in deploy/ (Kubernetes, compose) run every service of the
repository, probed, limited, unprivileged and with the secrets it needs: its own Kafka
user and signing key, every service's public keys; the exporters and the job creating
the Kafka users and ACLs get theirs."""

from __future__ import annotations

import json
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import yaml

from contracts.signing import TrustedKeys, public_key_of
from crm import acls
from local.reference import REPO
from services import SERVICE_NAMES

DEPLOY = REPO / "deploy"
SERVICES = REPO / "services"
KUBERNETES = DEPLOY / "kubernetes"
BROKER_MESSAGE_MAX_BYTES = 1048588
"""Kafka's default message.max.bytes, set explicitly where a broker is configured."""
REQUIRED = re.compile(r"\$\{([A-Z0-9_]+):\?")


def manifests() -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        documents += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return documents


def kind(name: str) -> list[dict[str, Any]]:
    return [d for d in manifests() if d["kind"] == name]


def service_deployments() -> list[dict[str, Any]]:
    return [
        d
        for d in kind("Deployment")
        if d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "crm"
    ]


def exporter_deployments() -> list[dict[str, Any]]:
    return [
        d
        for d in kind("Deployment")
        if d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "crm-monitoring"
    ]


def compose() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    return services


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in container.get("env", [])}


def secret_ref(variable: dict[str, Any]) -> tuple[str, str]:
    ref = variable["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


def config_map() -> dict[str, str]:
    (config,) = [d for d in kind("ConfigMap") if d["metadata"]["name"] == "crm-config"]
    data: dict[str, str] = config["data"]
    return data


def test_every_deployment_is_probed_limited_and_unprivileged() -> None:
    deployments = kind("Deployment")
    assert service_deployments() and exporter_deployments()
    assert {d["metadata"]["name"] for d in deployments} == {
        d["metadata"]["name"] for d in service_deployments() + exporter_deployments()
    }
    for deployment in deployments:
        spec = deployment["spec"]
        pod = spec["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            assert container["readinessProbe"] and container["livenessProbe"]
            assert {"cpu", "memory"} <= set(container["resources"]["limits"])
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
    for deployment in service_deployments():
        spec = deployment["spec"]
        assert spec["replicas"] >= 2, deployment["metadata"]["name"]
        for container in spec["template"]["spec"]["containers"]:
            assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
            assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"


def test_every_deployment_gets_the_secrets_a_service_needs_to_start() -> None:
    for deployment in service_deployments():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            names = set(env_of(container))
            assert {
                "CRM_DATABASE_URL",
                "CRM_AUTH_SECRET",
                "CRM_KEYRING_MASTER_KEY",
                "CRM_KAFKA_SASL_USERNAME",
                "CRM_KAFKA_SASL_PASSWORD",
                "CRM_SIGNING_KEY",
                "CRM_SIGNING_TRUSTED_KEYS",
            } <= names, deployment["metadata"]["name"]


def test_every_kubernetes_service_connects_as_its_own_user_and_signs_with_its_own_key() -> None:
    config = config_map()
    assert config["CRM_KAFKA_SECURITY_PROTOCOL"].startswith("SASL")
    assert config["CRM_KAFKA_SASL_MECHANISM"] == acls.SCRAM_MECHANISM
    for deployment in service_deployments():
        name = deployment["metadata"]["name"]
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        env = env_of(container)
        principal = acls.service_principal(name)
        assert env["CRM_KAFKA_SASL_USERNAME"]["value"] == principal
        assert secret_ref(env["CRM_KAFKA_SASL_PASSWORD"]) == (f"{principal}-keys", "kafka-password")
        assert secret_ref(env["CRM_SIGNING_KEY"]) == (f"{principal}-keys", "signing-key")
        assert env["CRM_SIGNING_TRUSTED_KEYS"]["valueFrom"]["configMapKeyRef"] == {
            "name": "crm-signing",
            "key": "trusted-keys.json",
        }
        mounted = {m["mountPath"] for m in container["volumeMounts"]}
        assert any(config["CRM_KAFKA_SSL_CAFILE"].startswith(path + "/") for path in mounted)


def test_every_compose_service_connects_as_its_own_user_and_signs_with_its_own_key() -> None:
    services = compose()
    for name in SERVICE_NAMES:
        env = services[name]["environment"]
        principal = acls.service_principal(name)
        assert env["CRM_KAFKA_SECURITY_PROTOCOL"].startswith("SASL")
        assert env["CRM_KAFKA_SASL_MECHANISM"] == acls.SCRAM_MECHANISM
        assert env["CRM_KAFKA_SASL_USERNAME"] == principal
        assert REQUIRED.findall(env["CRM_KAFKA_SASL_PASSWORD"]) == [
            acls.password_variable(principal)
        ]
        assert REQUIRED.findall(env["CRM_SIGNING_KEY"]) == [f"CRM_SIGNING_KEY_{name.upper()}"]
        assert REQUIRED.findall(env["CRM_SIGNING_TRUSTED_KEYS"]) == ["CRM_SIGNING_TRUSTED_KEYS"]
    topics = services["topics"]["environment"]
    assert topics["CRM_KAFKA_SASL_USERNAME"] == acls.OPERATOR
    assert "--sasl.username=" + acls.EXPORTER in services["kafka-exporter"]["command"]


def test_the_kafka_users_are_created_with_a_password_for_every_principal() -> None:
    variables = {acls.password_variable(p) for p in acls.principals(acls.grants())}
    in_compose = compose()["kafka-access"]["environment"]
    assert set(in_compose) - {"KAFKA_BOOTSTRAP_SERVER"} == variables
    for variable in variables:
        assert REQUIRED.findall(in_compose[variable]) == [variable]
    (job,) = [d for d in kind("Job") if d["metadata"]["name"] == "crm-kafka-access"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env = env_of(container)
    for principal in acls.principals(acls.grants()):
        variable = acls.password_variable(principal)
        assert secret_ref(env[variable]) == (f"{principal}-keys", "kafka-password")


def test_compose_and_kubernetes_run_the_generated_access_script() -> None:
    access = compose()["kafka-access"]
    assert access["network_mode"] == "service:kafka"
    (mount,) = access["volumes"]
    source, target, _ = mount.split(":")
    assert (DEPLOY / source).resolve() == KUBERNETES / "kafka-access.sh"
    assert access["command"] == ["sh", target]
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    (generated,) = kustomization["configMapGenerator"]
    assert generated["files"] == ["kafka-access.sh"]
    (job,) = [d for d in kind("Job") if d["metadata"]["name"] == "crm-kafka-access"]
    volumes = job["spec"]["template"]["spec"]["volumes"]
    assert {"name": "script", "configMap": {"name": generated["name"]}} in volumes
    assert "sh /opt/crm/kafka-access.sh" in " ".join(
        job["spec"]["template"]["spec"]["containers"][0]["command"]
    )


def test_the_broker_message_size_limit_is_set_explicitly() -> None:
    kafka = compose()["kafka"]["environment"]
    assert int(kafka["KAFKA_MESSAGE_MAX_BYTES"]) == BROKER_MESSAGE_MAX_BYTES
    (job,) = [d for d in kind("Job") if d["metadata"]["name"] == "crm-kafka-access"]
    command = " ".join(job["spec"]["template"]["spec"]["containers"][0]["command"])
    assert f"--add-config message.max.bytes={BROKER_MESSAGE_MAX_BYTES}" in command


def test_the_compose_broker_takes_only_authenticated_clients_and_applies_acls() -> None:
    kafka = compose()["kafka"]["environment"]
    protocols = dict(p.split(":") for p in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    for listener in kafka["KAFKA_LISTENERS"].split(","):
        name, address = listener.split("://")
        if protocols[name] == "PLAINTEXT":
            assert address.startswith("localhost:"), listener  # unauthenticated: local only
        else:
            assert protocols[name] == "SASL_PLAINTEXT"
    assert kafka["KAFKA_SASL_ENABLED_MECHANISMS"] == acls.SCRAM_MECHANISM
    assert kafka["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert kafka["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"


def test_the_secrets_script_makes_every_secret_compose_asks_for() -> None:
    result = subprocess.run(
        ["sh", str(DEPLOY / "secrets.sh")], capture_output=True, text=True, check=True
    )
    made = dict(line.split("=", 1) for line in result.stdout.splitlines())
    asked = set(REQUIRED.findall((DEPLOY / "compose.yaml").read_text()))
    assert asked == set(made)
    trusted_text = made["CRM_SIGNING_TRUSTED_KEYS"].strip("'")
    TrustedKeys.from_json(trusted_text)  # raises on anything unusable
    trusted = json.loads(trusted_text)
    assert set(trusted) == set(SERVICE_NAMES)
    for service in SERVICE_NAMES:
        seed = made[f"CRM_SIGNING_KEY_{service.upper()}"]
        assert trusted[service] == [public_key_of(seed)]


def test_the_kafka_exporter_reaches_every_broker_of_the_configuration() -> None:
    (exporter,) = [d for d in exporter_deployments() if d["metadata"]["name"] == "kafka-exporter"]
    args = exporter["spec"]["template"]["spec"]["containers"][0]["args"]
    servers = {a.removeprefix("--kafka.server=") for a in args if a.startswith("--kafka.server=")}
    assert servers == set(config_map()["CRM_KAFKA_BOOTSTRAP_SERVERS"].split(","))


def test_deployed_services_are_the_services_of_the_repository() -> None:
    built = {p.parent.name for p in SERVICES.glob("*/__main__.py")}
    in_compose = {
        name for name, spec in compose().items() if "services." in " ".join(spec.get("command", []))
    }
    in_kubernetes = {d["metadata"]["name"] for d in service_deployments()}
    kustomized = set(yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())["resources"])
    assert in_compose == built
    assert in_kubernetes == built
    assert {f"{name}.yaml" for name in built} <= kustomized
    assert {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"} == kustomized


def test_the_secrets_script_writes_a_private_file_and_never_replaces_one(tmp_path: Path) -> None:
    script = str(DEPLOY / "secrets.sh")
    env_file = tmp_path / ".env"
    subprocess.run(["sh", script, str(env_file)], check=True)
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    written = env_file.read_text()
    again = subprocess.run(["sh", script, str(env_file)], capture_output=True, text=True)
    assert again.returncode == 1
    assert "exists" in again.stderr
    assert env_file.read_text() == written
