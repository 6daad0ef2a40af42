"""The Kafka ACLs (`crm.acls`): every topic has its writers and readers, and no service
may write another service's topic; the script applying them is current and does what it
lists."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from contracts.signing import OWNERS
from contracts.topics import Topic
from crm import acls
from crm.cli import main
from local.reference import REPO
from services import SERVICE_NAMES

SCRIPT = REPO / "deploy" / "kubernetes" / "kafka-access.sh"
GRANTS = acls.grants()
SERVICE_PRINCIPALS = {acls.service_principal(s): s for s in SERVICE_NAMES}


def allowed(principal: str, operation: str, resource: str, name: str) -> bool:
    return any(
        g.principal == principal and operation in g.operations and g.matches(resource, name)
        for g in GRANTS
    )


def writers(topic: str) -> set[str]:
    return {g.principal for g in GRANTS if "Write" in g.operations and g.matches("topic", topic)}


@pytest.mark.parametrize("topic", list(Topic), ids=str)
def test_every_topic_has_exactly_the_writers_its_ownership_names(topic: Topic) -> None:
    if topic in OWNERS:
        expected = {acls.service_principal(OWNERS[topic])}
    elif topic == Topic.DEAD_LETTER:
        expected = set(SERVICE_PRINCIPALS)
    else:
        expected = {acls.INBOUND, acls.OPERATOR}
    assert writers(topic) == expected


@pytest.mark.parametrize("topic", list(Topic), ids=str)
def test_every_topic_is_readable_by_the_operator_and_described_by_the_exporter(
    topic: Topic,
) -> None:
    assert str(topic).startswith(acls.TOPIC_PREFIX)
    assert allowed(acls.OPERATOR, "Read", "topic", topic)
    assert allowed(acls.OPERATOR, "Create", "topic", topic)
    assert allowed(acls.EXPORTER, "Describe", "topic", topic)


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_a_service_writes_only_its_own_topic_and_the_dead_letters(service: str) -> None:
    principal = acls.service_principal(service)
    own = {t for t, owner in OWNERS.items() if owner == service}
    for topic in Topic:
        may_write = allowed(principal, "Write", "topic", topic)
        assert may_write == (topic in own or topic == Topic.DEAD_LETTER), topic
    mine = [g for g in GRANTS if g.principal == principal]
    assert not any(g.prefixed and g.resource == "topic" for g in mine)
    assert not any(g.resource == "cluster" or "Create" in g.operations for g in mine)


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_a_service_reads_every_topic_its_consumers_read_in_their_groups(service: str) -> None:
    principal = acls.service_principal(service)
    consumers = acls.consumers_of(acls.definition_of(service))
    assert consumers
    for consumer in consumers:
        # the runtime appends the database generation to the group id
        group = f"{consumer.group_id}.0123abcd"
        assert allowed(principal, "Read", "group", group), group
        assert not any(
            allowed(other, "Read", "group", group)
            for other in SERVICE_PRINCIPALS
            if other != principal
        ), group
        for topic in consumer.topics:
            assert allowed(principal, "Read", "topic", topic), (consumer.group_id, topic)


def test_the_external_systems_write_only_the_inbound_topics() -> None:
    inbound = {str(t) for t in acls.INBOUND_TOPICS}
    assert inbound == {
        "crm.inbound.purchases.v1",
        "crm.inbound.call-logs.v1",
        "crm.inbound.messages.v1",
        "crm.inbound.survey-answers.v1",
    }
    for topic in Topic:
        assert allowed(acls.INBOUND, "Write", "topic", topic) == (topic in inbound)
        assert not allowed(acls.INBOUND, "Read", "topic", topic)


def test_the_committed_script_is_what_crm_topics_acls_prints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["topics", "acls"]) == 0
    printed = capsys.readouterr().out
    assert printed == acls.script(GRANTS)
    assert SCRIPT.read_text() == printed, (
        "deploy/kubernetes/kafka-access.sh is stale: "
        "crm topics acls --output deploy/kubernetes/kafka-access.sh"
    )


def test_the_script_creates_every_user_and_every_acl(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    for tool in ("kafka-acls.sh", "kafka-configs.sh"):
        fake = tmp_path / tool
        fake.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{calls}"\n')
        fake.chmod(0o755)
    principals = acls.principals(GRANTS)
    passwords = {acls.password_variable(p): f"pw-{p}" for p in principals[1:]}
    env = {
        "PATH": os.environ["PATH"],
        "KAFKA_BIN": str(tmp_path),
        "KAFKA_BOOTSTRAP_SERVER": "broker:9094",
        **passwords,
    }
    result = subprocess.run(
        ["sh", str(SCRIPT)], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    # the first user has no password here: left alone, and said so
    assert f"no password given for {principals[0]}" in result.stdout
    made = calls.read_text().splitlines()
    users = [line for line in made if line.startswith("kafka-configs.sh")]
    assert users == [
        "kafka-configs.sh --bootstrap-server broker:9094 --alter --entity-type users "
        f"--entity-name {p} --add-config SCRAM-SHA-512=[password=pw-{p}]"
        for p in principals[1:]
    ]
    added = [line for line in made if line.startswith("kafka-acls.sh")]
    assert added == [
        "kafka-acls.sh --bootstrap-server broker:9094 --add "
        f"--allow-principal User:{g.principal} {' '.join(g.arguments())}"
        for g in GRANTS
    ]
