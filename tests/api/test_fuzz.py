"""Fuzz every operation of the OpenAPI spec with schemathesis (bounded examples): no 5xx, ever, with an unlimited
admin key and with read, control and admin keys limited to part of the fleet."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

pytestmark = pytest.mark.slow  # live Physical API servers (a fleet of simulated robots each)

def _spec() -> dict:
    from wam.api.server import ServerConfig, create_app

    return create_app(ServerConfig("metaworld/reach-v3", "unused")).openapi()


schema = schemathesis.openapi.from_dict(_spec())


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_operation_answers_with_a_server_error(case, live_state_fleet):
    key = live_state_fleet.keys["admin"]
    case.call_and_validate(base_url=live_state_fleet.url, headers={"Authorization": f"Bearer {key}"}, checks=[not_a_server_error])


@pytest.fixture(scope="module")
def scoped_keys(live_state_fleet) -> dict[str, str]:
    """Read, control and admin keys limited to one of the fleet's two robots."""
    from wam.api.auth import create_key
    from wam.api.store import Store

    store = Store(live_state_fleet.db)
    try:
        return {scope: create_key(store, scope, robots="reach-v3-0")[1] for scope in ("read", "control", "admin")}
    finally:
        store.close()


@pytest.mark.parametrize("scope", ["read", "control", "admin"])
@schema.parametrize()
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
def test_keys_scoped_to_part_of_the_fleet_never_meet_a_server_error(case, scope, live_state_fleet, scoped_keys):
    case.call_and_validate(base_url=live_state_fleet.url, headers={"Authorization": f"Bearer {scoped_keys[scope]}"},
                           checks=[not_a_server_error])
