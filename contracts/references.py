"""How other systems name a customer when they do not know the CRM's customer id.

A shop, call centre or survey tool knows its own customer ids. It names the customer by
`CustomerReference(source="shop-cn", source_customer_id="U-1029")`. The CRM keeps a
mapping from references to customers; a reference it has never seen gets the customer id
`customer_id_for_reference(reference)`, a UUID derived from the reference alone, so every
service that meets the same unknown reference lands on the same customer without asking
another service, and the customer service registers that customer as first seen there.

A reference is personal data (call centres name people by their phone number): the CRM's
own events carry it sealed, and erasing the customer forgets it everywhere; a later
message naming it is about someone the CRM has not met. The derived id is a one-way
hash of the reference with a public namespace, so for guessable references (phone
numbers) it is pseudonymous, not anonymous.
"""

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from contracts.personal import PERSONAL
from contracts.values import LINE

REFERENCE_NAMESPACE = uuid.UUID("8d4f1c3e-5a0b-4e57-9a3c-0f6b2d71e9a4")

PersonalName = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=200), LINE, PERSONAL
]
SourceName = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$"), LINE
]


class CustomerReference(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    source: SourceName = Field(description="The publishing system, e.g. shop-cn, erp, callcentre.")
    source_customer_id: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=128),
        LINE,
        PERSONAL,
    ] = Field(
        description="The customer's id in that system. Personal data (often a phone number "
        "or an account name): sealed on the CRM's own topics like a name."
    )


class CustomerHint(BaseModel):
    """What the publishing system knows of a customer the CRM may not have seen yet."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: PersonalName | None = None
    phone: Annotated[str, StringConstraints(max_length=40), LINE, PERSONAL] | None = None
    email: Annotated[str, StringConstraints(max_length=254), LINE, PERSONAL] | None = None


def customer_id_for_reference(reference: CustomerReference) -> uuid.UUID:
    return uuid.uuid5(REFERENCE_NAMESPACE, f"{reference.source}\x1f{reference.source_customer_id}")
