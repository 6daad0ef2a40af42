"""The customer service's composition: what it stores, publishes, projects and serves."""

from contracts.topics import Topic
from services.customer import commands, duplicate_routes, import_commands, merge_commands, views
from services.customer.application import CustomerApplication
from services.customer.ingestion import FirstSeenCustomers
from services.customer.metrics import refresh_duplicate_queue
from services.customer.migrations import MIGRATIONS
from services.customer.projections import CustomerDirectory
from services.customer.publishing import to_contract
from services.customer.settings import phone_region
from services.runtime.messaging.subscribers import Subscription
from services.runtime.service import ServiceDefinition, ServiceRuntime
from services.runtime.storage.migrator import KEYRING


def first_seen_customers(runtime: ServiceRuntime) -> FirstSeenCustomers:
    assert isinstance(runtime.application, CustomerApplication)
    assert runtime.pool is not None
    return FirstSeenCustomers(runtime.application, runtime.pool)


FIRST_SEEN = Subscription(
    name=FirstSeenCustomers.name,
    group_id=FirstSeenCustomers.group_id,
    topics=tuple(FirstSeenCustomers.topics),
    message=None,
    description="Customers other systems named only by their own reference, registered "
    "as first seen there from the sales and interaction events naming them.",
    handler=first_seen_customers,
)


DEFINITION = ServiceDefinition(
    name="customer",
    title="CRM customer service",
    description=(
        "Customers, contact persons, classifications, tags and channel consent. Commands "
        "record events in the customer event store; they are published on the "
        f"`{Topic.CUSTOMER}` topic and folded into the customer directory. Send "
        '`If-Match: "<version>"` with a change to have it refused with 409 when someone '
        "else changed the customer first."
    ),
    topic=Topic.CUSTOMER,
    application_class=CustomerApplication,
    translate=to_contract,
    projections=lambda: [CustomerDirectory(phone_region())],
    routers=[
        commands.router,
        views.router,
        import_commands.router,
        merge_commands.router,
        duplicate_routes.router,
    ],
    gauges=[refresh_duplicate_queue],
    subscriptions=[FIRST_SEEN],
    also_compacts=[str(KEYRING.schema)],
    migrations=(MIGRATIONS,),
)
