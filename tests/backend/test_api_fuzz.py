"""A bounded schemathesis run over every operation of the API, as the admin (in process, real Redis and
a real SQLite file; no worker listens, and every run it launches is cancelled at the end).

Each answer must be a documented status with a body matching its documented schema, and never a
5xx: every response the API can give is in its OpenAPI schema."""
from __future__ import annotations

import copy

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                 status_code_conformance)

from backend.app.main import create_app
from backend.app.settings import Settings
from tests.services import ADMIN_TOKEN, auth_headers

schemathesis.experimental.OPEN_API_3_1.enable()  # FastAPI writes OpenAPI 3.1


def _old_many_api() -> None:
    """hypothesis-jsonschema 0.23 (schemathesis 3's generator) drives Hypothesis's internal `many` with
    `while elements.more()`; newer Hypothesis made it a context manager you iterate. Same draws, old
    spelling — only for the generator's module, only when the old method is missing."""
    import hypothesis_jsonschema._from_schema as generator
    from hypothesis.internal.conjecture import utils as cu

    if hasattr(cu.many, "more") or getattr(generator.cu, "_shimmed", False):
        return

    class many:
        def __init__(self, *args, **kwargs):
            self._many = cu.many(*args, **kwargs)
            self._many.__enter__()
            self._elements = iter(self._many)

        def more(self) -> bool:
            if next(self._elements, StopIteration) is StopIteration:
                self._many.__exit__(None, None, None)
                return False
            return True

        def reject(self, why=None) -> None:
            self._many.reject(why)

    class shim:
        _shimmed = True

        def __getattr__(self, name):
            return many if name == "many" else getattr(cu, name)

    generator.cu = shim()


_old_many_api()


@schemathesis.serializer("application/zip")
class ZipBytes:
    """POST /api/bundles takes the .zip's bytes as they are (fuzzed bytes: the import must refuse them)."""

    def as_requests(self, context, value):
        return {"data": value.data if hasattr(value, "data") else value if isinstance(value, bytes) else str(value).encode()}

    def as_werkzeug(self, context, value):
        return self.as_requests(context, value)
CHECKS = (not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance)


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory, redis_url):
    var = tmp_path_factory.mktemp("fuzz")
    settings_ = Settings(redis_url=redis_url.rsplit("/", 1)[0] + "/14", database_url=f"sqlite:///{var / 'fuzz.db'}",
                         artifacts_dir=var / "artifacts", data_root=var / "data", persist_frames=False,
                         run_reaper=False, admin_token=ADMIN_TOKEN, max_active_runs_per_member=5)
    app = create_app(settings_)
    yield app
    from fastapi.testclient import TestClient  # cancel what the fuzzing launched (no worker would run it)

    with TestClient(app, headers=auth_headers()) as c:
        for run in c.get("/api/runs", params={"status": "queued", "limit": 1000}).json():
            c.post(f"/api/runs/{run['id']}/cancel")


schema = schemathesis.from_pytest_fixture("fuzz_schema")


@pytest.fixture(scope="module")
def fuzz_schema(fuzz_app):
    return schemathesis.from_dict(resolvable(fuzz_app.openapi()), app=fuzz_app)


def resolvable(spec: dict) -> dict:
    """The external runs router declares a body with openapi_extra = a pydantic schema whose "$defs"
    references ("#/$defs/X") do not resolve inside an OpenAPI document; no generator can read that
    operation. Its definitions are moved to components here (the router's owner is told: notes/issue-11.md),
    so that operation is fuzzed like the others."""
    spec = copy.deepcopy(spec)
    components = spec.setdefault("components", {}).setdefault("schemas", {})

    def walk(node):
        if isinstance(node, dict):
            if "$defs" in node:
                components.update(walk(node.pop("$defs")))
            return {k: ("#/components/schemas/" + v[len("#/$defs/"):] if k == "$ref" and isinstance(v, str)
                        and v.startswith("#/$defs/") else walk(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    spec["paths"] = walk(spec["paths"])
    return spec


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_operation_answers_as_documented(case):
    response = case.call_asgi(headers=auth_headers())
    case.validate_response(response, checks=CHECKS)
