"""Property-based testing of the other systems' API against the description the hub serves
(/api/v1/openapi.json): schemathesis reads the served document and generates requests for
every operation from it, valid and invalid (wrong types, missing and unknown fields, values
out of range, no credential), against the hub's real HTTP app with the real core and a
SQLite journal. Every response must be one the document describes (status, content type,
body schema, headers), none a 5xx, invalid input must be refused with a 4xx, and a request
without the credential must get 401.

The examples the document gives are this centre's (an item it serves, an open window), so
the successful paths (a ticket issued, a call, a booking) are exercised too. The run is
bounded (MAX_EXAMPLES per operation, ~30 s in all here) and needs nothing from the network:
schemathesis is a pinned dev dependency and the app is called in process (ASGI).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from onewindow.hub.core import commands as c
from onewindow.hub.web import openapi
from onewindow.hub.web.ratelimit import Limiter, Rate

from .api_env import bearer, credential, make

MAX_EXAMPLES = 25


@pytest.fixture(scope="module")
def api_env(tmp_path_factory: pytest.TempPathFactory):
    env = make(Path(tmp_path_factory.mktemp("api")))
    env.port.journal.append(env.hub.operate(c.OpenWindow(1), env.clock[0]).records)
    env.secret = credential(env, "fuzz", burst=10000, per_minute=100000.0)
    # Requests without a credential are part of the run: their limit is not what is tested.
    env.api.failed = Limiter(Rate(10000, 100000.0))
    yield env
    env.journal.close()


@pytest.fixture(scope="module")
def api_schema(api_env):
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", api_env.app)


# The operations, as the document names them; test_openapi_* in test_api_v1.py checks that
# they are exactly the app's routes.
OPERATIONS = [(path, method.upper()) for path, ops in openapi.document()["paths"].items()
              for method in ops]


@pytest.mark.parametrize("path,method", OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_the_api_answers_as_its_description_says(api_schema, api_env, path, method):
    operation = api_schema[path][method]
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                         operation.as_strategy(GenerationMode.NEGATIVE),
                         *operation.get_strategies_from_examples())
    headers = bearer(api_env.secret)

    @given(case=strategy)
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers)

    run()
