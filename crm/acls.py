"""Who may do what on the CRM's topics: the Kafka ACLs, derived from the code.

Only the owning service may publish on its topic. On the broker this is enforced by
ACLs on SASL principals; what each principal needs is read here from the same sources
the services run on, so the list cannot drift from them:

- each service (`User:crm-<service>`) writes (and describes) only its own topic
  (`contracts.signing.OWNERS`) and the dead-letter topic, and reads the topics its
  consumers read, in their consumer groups (the group ids of its projections and other
  handlers, with the database-generation suffix the runtime appends: prefixed ACLs);
- the external systems (`User:crm-inbound`) write the inbound topics, nothing else;
- the operator (`User:crm-operator`, for `crm topics`, `crm rebuild`, `crm dead-letters`)
  creates and reads the CRM's topics and writes the inbound ones (replays); a replay onto
  an internal topic runs with the owning service's credentials;
- the metrics exporter (`User:crm-exporter`) describes the topics, groups and cluster.

`crm topics acls` prints the script that creates the SCRAM users and these ACLs with
Kafka's own tools (deploy/kubernetes/kafka-access.sh is its output, used by compose and
Kubernetes).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from contracts.signing import OWNERS
from contracts.topics import Topic
from services import SERVICE_NAMES

if TYPE_CHECKING:
    from services.runtime.service import ServiceDefinition

TOPIC_PREFIX = "crm."
"""Every CRM topic starts with it (the operator's and exporter's ACLs are prefixed)."""
SCRAM_MECHANISM = "SCRAM-SHA-512"
INBOUND = "crm-inbound"
OPERATOR = "crm-operator"
EXPORTER = "crm-exporter"
INBOUND_TOPICS = tuple(t for t in Topic if t not in OWNERS and t != Topic.DEAD_LETTER)


def service_principal(service: str) -> str:
    """The SASL user (and ACL principal `User:<name>`) a service connects as."""
    return f"crm-{service}"


def password_variable(principal: str) -> str:
    """The environment variable holding a principal's password where users are created."""
    return "CRM_KAFKA_PASSWORD_" + principal.removeprefix("crm-").upper()


@dataclass(frozen=True)
class Grant:
    """One `kafka-acls.sh --add`: `principal` may do `operations` on one resource."""

    principal: str
    operations: tuple[str, ...]
    resource: str
    """`topic`, `group` or `cluster`."""
    name: str = ""
    prefixed: bool = False

    def matches(self, resource: str, name: str) -> bool:
        if resource != self.resource:
            return False
        return name.startswith(self.name) if self.prefixed else name == self.name

    def arguments(self) -> list[str]:
        arguments = [f"--operation {operation}" for operation in self.operations]
        arguments.append(
            "--cluster" if self.resource == "cluster" else f"--{self.resource} {self.name}"
        )
        if self.prefixed:
            arguments.append("--resource-pattern-type prefixed")
        return arguments


@dataclass(frozen=True)
class Consumer:
    group_id: str
    topics: tuple[str, ...]


class _Unconnected:
    """Stands for the database pool when handlers are built only to be listed."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("handlers listed for their ACLs have no database")


def definition_of(service: str) -> ServiceDefinition:
    definition: ServiceDefinition = importlib.import_module(
        f"services.{service}.service"
    ).DEFINITION
    return definition


def consumers_of(definition: ServiceDefinition) -> list[Consumer]:
    """Every consumer the service runs: its projections and its subscribers."""
    from services.runtime.messaging.projection import ProjectionHandler

    pool = cast(Any, _Unconnected())
    projections = [ProjectionHandler(p, pool) for p in definition.projections()]
    return [
        *(Consumer(h.group_id, tuple(str(t) for t in h.topics)) for h in projections),
        *(Consumer(s.group_id, tuple(str(t) for t in s.topics)) for s in definition.subscriptions),
    ]


def service_grants(service: str) -> list[Grant]:
    definition = definition_of(service)
    principal = service_principal(service)
    grants = [
        Grant(principal, ("Write", "Describe"), "topic", str(topic))
        for topic in sorted({str(definition.topic), str(Topic.DEAD_LETTER)})
    ]
    consumers = consumers_of(definition)
    read = sorted({topic for consumer in consumers for topic in consumer.topics})
    grants += [Grant(principal, ("Read", "Describe"), "topic", topic) for topic in read]
    # the runtime appends ".<database generation>" to each group id
    grants += [
        Grant(principal, ("Read", "Describe"), "group", f"{group}.", prefixed=True)
        for group in sorted({consumer.group_id for consumer in consumers})
    ]
    return grants


def grants(services: Sequence[str] | None = None) -> list[Grant]:
    """Every ACL of the CRM, for the services of this checkout (default)."""
    if services is None:
        services = [s for s in SERVICE_NAMES if _has_service(s)]
    every = [grant for service in services for grant in service_grants(service)]
    every += [Grant(INBOUND, ("Write", "Describe"), "topic", str(t)) for t in INBOUND_TOPICS]
    every += [
        Grant(OPERATOR, ("Create", "Describe", "Read"), "topic", TOPIC_PREFIX, prefixed=True),
        *(Grant(OPERATOR, ("Write",), "topic", str(t)) for t in INBOUND_TOPICS),
        Grant(EXPORTER, ("Describe",), "topic", TOPIC_PREFIX, prefixed=True),
        Grant(EXPORTER, ("Describe",), "group", TOPIC_PREFIX, prefixed=True),
        Grant(EXPORTER, ("Describe",), "cluster"),
    ]
    return every


def principals(every: Iterable[Grant]) -> list[str]:
    """The SASL users the grants name, in order of first appearance."""
    return list(dict.fromkeys(grant.principal for grant in every))


def _has_service(service: str) -> bool:
    import services

    return (Path(services.__file__).parent / service / "__main__.py").is_file()


SCRIPT_HEAD = f"""\
#!/bin/sh
# The CRM's SASL/SCRAM users and Kafka ACLs. Generated by `crm topics acls` from
# contracts/topics.py, contracts/signing.py (OWNERS) and the services' consumers: do not
# edit, regenerate.
#
# Runs Kafka's own tools (the apache/kafka image has them in /opt/kafka/bin):
#   KAFKA_BOOTSTRAP_SERVER  a broker, reached as a principal allowed to alter users and ACLs
#   KAFKA_COMMAND_CONFIG    optional: the client properties of that admin connection
#   CRM_KAFKA_PASSWORD_*    each user's password ({SCRAM_MECHANISM}); a user without one
#                           is left as it is (its credentials are managed elsewhere)
# Adding is idempotent; an ACL no longer listed here is not removed (kafka-acls.sh --remove).
set -eu
bin=${{KAFKA_BIN:-/opt/kafka/bin}}

admin() {{
  tool=$1
  shift
  "$bin/$tool" --bootstrap-server "$KAFKA_BOOTSTRAP_SERVER" \\
    ${{KAFKA_COMMAND_CONFIG:+--command-config "$KAFKA_COMMAND_CONFIG"}} "$@"
}}

user() {{
  if [ -z "$2" ]; then
    echo "no password given for $1: its SCRAM credentials are left as they are"
    return
  fi
  admin kafka-configs.sh --alter --entity-type users --entity-name "$1" \\
    --add-config "{SCRAM_MECHANISM}=[password=$2]"
}}

allow() {{
  principal=$1
  shift
  admin kafka-acls.sh --add --allow-principal "User:$principal" "$@"
}}
"""


def script(every: Sequence[Grant]) -> str:
    """The shell script creating the users and ACLs of `every`."""
    lines = [SCRIPT_HEAD, "# Users"]
    lines += [
        f'user {principal} "${{{password_variable(principal)}:-}}"'
        for principal in principals(every)
    ]
    lines += ["", "# ACLs"]
    lines += [f"allow {grant.principal} {' '.join(grant.arguments())}" for grant in every]
    return "\n".join(lines) + "\n"
