"""Property-based fuzzing of the REST API from its own OpenAPI schema (schemathesis), against the
real `pix2pix serve` process on 127.0.0.1: no 5xx, every documented status, content type and
body shape, every error the JSON ``{"error", "detail"}``. Bounded: a fixed number of examples per
operation and a wall-clock budget for the whole run."""
from __future__ import annotations

import time

import pytest
import schemathesis
from schemathesis import GenerationMode
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (content_type_conformance, not_a_server_error,
                                 response_schema_conformance, status_code_conformance)

EXAMPLES_PER_OPERATION = 100  # per operation and mode (valid, invalid)
BUDGET_S = 40.0
_spent = {"requests": 0, "statuses": {}}


def _operations(server: str) -> list:
    schema = schemathesis.openapi.from_url(server + "/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def test_api_from_its_schema(server):
    """Every operation of /openapi.json, fuzzed by hypothesis from the schema with valid and with
    invalid data (schemathesis' pytest plugin does not run under pytest 9, so its strategies are
    driven directly)."""
    start = time.monotonic()
    operations = _operations(server)
    assert {op.path for op in operations} >= {"/api/translate", "/api/models", "/health"}

    for operation, mode in [(op, mode) for op in operations for mode in GenerationMode]:
        @given(case=operation.as_strategy(mode))
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def fuzz(case):
            if time.monotonic() - start > BUDGET_S:
                return  # the budget is spent: later examples are not sent
            response = case.call(base_url=server, timeout=30)
            _spent["requests"] += 1
            _spent["statuses"][response.status_code] = _spent["statuses"].get(response.status_code, 0) + 1
            case.validate_response(response, checks=[not_a_server_error, status_code_conformance,
                                                     content_type_conformance,
                                                     response_schema_conformance])
            if response.status_code >= 400:
                body = response.json()
                assert set(body) == {"error", "detail"} and body["error"] and body["detail"], body

        try:
            fuzz()
        except Unsatisfiable:  # an operation without parameters has no invalid form
            assert mode is GenerationMode.NEGATIVE and operation.path != "/api/translate"


def test_fuzz_sent_requests_and_the_server_is_still_well(server):
    """Runs after the fuzz (same module, file order): it sent requests, and the server answers."""
    import httpx

    print(f"fuzz: {_spent['requests']} requests, statuses {dict(sorted(_spent['statuses'].items()))}")
    assert _spent["requests"] >= 150, _spent
    assert httpx.get(server + "/health", timeout=10).json()["status"] == "ok"
