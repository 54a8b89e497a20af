"""Property-based: whatever a client sends that the OpenAPI schema allows (or doesn't), the real app never answers 5xx."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from oews_api.app import create_app
from oews_api.sample import SAMPLE_DB
from oews_api.settings import Settings

app = create_app(Settings(sqlite_db_path=SAMPLE_DB), public_docs=True)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_client_input_causes_a_server_error(case: schemathesis.Case) -> None:
    response = case.call_and_validate(checks=[not_a_server_error])
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert "detail" in response.json()
