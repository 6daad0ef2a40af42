"""What the access log and the audit log keep of a request's path, over every route of
every service: ids as they are, any other value (it may name a person) withheld."""

from __future__ import annotations

import re
import uuid

import pytest

from services.runtime.http.audit import WITHHELD, recordable_path, recordable_path_params
from tests.support.routes import DEFINITIONS, app_of, operations

PERSONAL_LOOKING = "86-13912345678"
PARAMETER = re.compile(r"\{(\w+)\}")


@pytest.mark.parametrize("service", sorted(DEFINITIONS))
def test_no_path_parameter_but_an_id_reaches_the_logs(service: str) -> None:
    templates = {path for _, path, _ in operations(app_of(DEFINITIONS[service]))}
    with_parameters = [t for t in templates if PARAMETER.search(t)]
    assert with_parameters
    for template in with_parameters:
        customer = str(uuid.uuid4())
        values = {
            name: customer if name.endswith("_id") and name != "source_customer_id" else "7"
            for name in PARAMETER.findall(template)
        }
        # an id-named parameter holding something else, and any parameter holding text
        for name in values:
            text = {**values, name: PERSONAL_LOOKING}
            assert PERSONAL_LOOKING not in recordable_path(template, text), template
            assert recordable_path_params(text)[name] == WITHHELD
        recorded = recordable_path(template, values)
        assert "{" not in recorded and all(v in recorded for v in values.values()), template
