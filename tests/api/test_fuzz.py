"""Fuzz every operation of the OpenAPI spec with schemathesis (bounded examples): no 5xx, ever."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

def _spec() -> dict:
    from wam.api.server import ServerConfig, create_app

    return create_app(ServerConfig("metaworld/reach-v3", "unused")).openapi()


schema = schemathesis.openapi.from_dict(_spec())


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_operation_answers_with_a_server_error(case, live_state_fleet):
    key = live_state_fleet.keys["admin"]
    case.call_and_validate(base_url=live_state_fleet.url, headers={"Authorization": f"Bearer {key}"}, checks=[not_a_server_error])
