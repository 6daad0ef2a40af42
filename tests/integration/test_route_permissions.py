"""Every route of every service, for every role: allowed (and then answered without a
server error), 403, or (without a token) 401.

Each service runs in this process with its runtime started on a real database and
broker (`uvicorn` on a free port), so that a request that passes authorization is
answered as it would be in production: with the test's inputs (an empty body, unknown
ids) that is a 4xx or a 2xx, never a 5xx. The expectation is the permission each route
declares (`requires(...)`) and `ROLE_PERMISSIONS`; a route that declares no permission
fails the test (and is refused to everyone at run time).
"""

from __future__ import annotations

import pytest

from services.runtime.http.authorization import PUBLIC_PATHS
from services.runtime.http.roles import ROLE_PERMISSIONS, ROLES
from tests.support.auth import bearer
from tests.support.hostile import call, concrete
from tests.support.infrastructure import Infrastructure
from tests.support.routes import DEFINITIONS, app_of, operations, requirement_of
from tests.support.serving import served_settings, serving


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
async def test_every_route_answers_each_role_by_the_matrix(
    name: str, infra: Infrastructure
) -> None:
    app = app_of(DEFINITIONS[name], served_settings(name, infra))
    tokens = {role: bearer(role, f"someone-{role}") for role in ROLES}
    checked = 0
    async with serving(app) as client:
        for method, template, operation in operations(app):
            path = concrete(template, operation)
            if template in PUBLIC_PATHS:
                assert (await call(client, method, path, {})).status_code not in (401, 403), (
                    template
                )
                continue
            requirement = requirement_of(app, method, template)
            assert requirement is not None, f"{method} {template} declares no permission"
            assert operation["x-required-permission"] == requirement.permission
            assert f"`{requirement.permission}`" in operation["description"]
            anonymous = await call(client, method, path, {})
            assert anonymous.status_code == 401, f"{method} {template} without a token"
            assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
            for role, headers in tokens.items():
                response = await call(client, method, path, headers)
                if requirement.permission in ROLE_PERMISSIONS[role]:
                    assert response.status_code not in (401, 403), (
                        f"{role} may {requirement.permission}, yet {method} {template} "
                        f"answered {response.status_code} {response.text}"
                    )
                    assert response.status_code < 500, (
                        f"{role} may {requirement.permission}: {method} {template} answered "
                        f"{response.status_code} {response.text}"
                    )
                else:
                    assert response.status_code == 403, (
                        f"{role} lacks {requirement.permission}, yet {method} {template} "
                        f"answered {response.status_code}"
                    )
                    assert requirement.permission in response.json()["error"]
            stranger = await call(client, method, path, bearer("visitor"))
            assert stranger.status_code == 403, f"{method} {template} for an unknown role"
            checked += 1
    assert checked > 0
