"""A property-based run of the OpenAPI document against the live server (schemathesis): no
answer is a server error, and every answer matches the document (status, content type,
body). Requests carry a token holding every scope, so the run reaches the use cases; a few
hundred examples in all, so it fits CI."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from orchestrator.core.tokens import Scope
from tests.server.conftest import Template, make_token, serve_app, stop
from tests.tui.conftest import make_settings

EXAMPLES_PER_OPERATION = 25  # 12 operations: ~300 examples


@pytest.fixture(scope="module")
def live(template: Template, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    base = tmp_path_factory.mktemp("srv-openapi")
    shutil.copytree(template.base / "data", Path(base) / "data", symlinks=True)
    fleet_settings = make_settings(Path(base))
    token = make_token(fleet_settings, "everything", [s.value for s in Scope])
    _, served = serve_app(fleet_settings)
    try:
        yield served.url, token
    finally:
        stop(served)


@pytest.fixture(scope="module")
def api_schema(live: tuple[str, str]) -> schemathesis.BaseSchema:
    url, _ = live
    return schemathesis.openapi.from_url(f"{url}/v1/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error_and_no_answer_outside_the_document(
    case: schemathesis.Case, live: tuple[str, str]
) -> None:
    url, token = live
    case.call_and_validate(
        base_url=url,
        headers={"Authorization": f"Bearer {token}"},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
