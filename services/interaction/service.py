"""The interaction service's composition: what it stores, publishes, projects and serves."""

from typing import Any

from contracts import interaction as interaction_contracts
from contracts.topics import Topic
from services.interaction import commands, views
from services.interaction.application import InteractionApplication
from services.interaction.ingestion import (
    CALL_LOGS,
    MESSAGES,
    SURVEY_ANSWERS,
    Feed,
    InboundIngestion,
)
from services.interaction.metrics import refresh_open_tickets
from services.interaction.projections import CUSTOMERS, InteractionProjection
from services.interaction.publishing import to_contract
from services.runtime.messaging.subscribers import Subscription
from services.runtime.service import ServiceDefinition, ServiceRuntime


def subscription(feed: Feed[Any]) -> Subscription:
    """The inbound topic of `feed`, recorded by an `InboundIngestion`."""

    def ingestion(runtime: ServiceRuntime) -> InboundIngestion[Any]:
        assert isinstance(runtime.application, InteractionApplication)
        assert runtime.pool is not None
        return InboundIngestion(feed, runtime.application, runtime.pool)

    return Subscription(
        name=feed.name,
        group_id=feed.group_id,
        topics=(feed.topic,),
        message=interaction_contracts.INBOUND[feed.topic],
        description=Topic(feed.topic).description,
        handler=ingestion,
    )


DEFINITION = ServiceDefinition(
    name="interaction",
    title="CRM interaction service",
    description=(
        "Every contact with a customer (calls, meetings, e-mail, SMS, chat, WeChat, visits, "
        "web), service requests and complaints with their service-level targets, "
        "satisfaction survey answers and feedback, and contact plans. Commands record "
        f"events published on `{Topic.INTERACTION}`. Call logs, messages and survey answers "
        f"from other systems arrive on `{Topic.CALL_LOGS_INBOUND}`, `{Topic.MESSAGES_INBOUND}` "
        f"and `{Topic.SURVEY_ANSWERS_INBOUND}`."
    ),
    topic=Topic.INTERACTION,
    application_class=InteractionApplication,
    translate=to_contract,
    projections=lambda: [InteractionProjection(), CUSTOMERS],
    routers=[commands.router, views.router],
    subscriptions=[subscription(feed) for feed in (CALL_LOGS, MESSAGES, SURVEY_ANSWERS)],
    inbound=interaction_contracts.INBOUND,
    gauges=[refresh_open_tickets],
)
