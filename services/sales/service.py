"""The sales service's composition: what it stores, publishes, projects, consumes, serves."""

from contracts import sales as sales_contracts
from contracts.inbound.purchases import PurchaseCompleted
from contracts.topics import Topic
from services.runtime.messaging.subscribers import Subscription
from services.runtime.service import ServiceDefinition, ServiceRuntime
from services.sales import commands, ingestion, views
from services.sales.application import SalesApplication
from services.sales.ingestion import PurchaseIngestion
from services.sales.projections import CUSTOMERS, SalesProjection
from services.sales.publishing import to_contract


def purchase_ingestion(runtime: ServiceRuntime) -> PurchaseIngestion:
    assert isinstance(runtime.application, SalesApplication)
    assert runtime.pool is not None
    return PurchaseIngestion(runtime.application, runtime.pool)


PURCHASES = Subscription(
    name=ingestion.NAME,
    group_id=ingestion.GROUP_ID,
    topics=(Topic.PURCHASES_INBOUND,),
    message=PurchaseCompleted,
    description=Topic.PURCHASES_INBOUND.description,
    handler=purchase_ingestion,
)


DEFINITION = ServiceDefinition(
    name="sales",
    title="CRM sales service",
    description=(
        "Opportunities through their stages, key activities with predicted and actual "
        "results, quotes, signed contracts and payments, and purchases reported by other "
        f"systems on `{Topic.PURCHASES_INBOUND}`. Commands record events in the sales event "
        f"store; they are published on `{Topic.SALES}` and folded into the views served "
        "here. Amounts are decimal strings, always with their currency. Send "
        '`If-Match: "<version>"` with a change to have it refused with 409 when someone '
        "else changed the opportunity first."
    ),
    topic=Topic.SALES,
    application_class=SalesApplication,
    translate=to_contract,
    projections=lambda: [CUSTOMERS, SalesProjection()],
    routers=[commands.router, views.router],
    subscriptions=[PURCHASES],
    inbound=sales_contracts.INBOUND,
)
