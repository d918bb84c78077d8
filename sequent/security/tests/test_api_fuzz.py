"""Schemathesis against /api/v1/openapi.json, in process (the Django WSGI app), with a
bearer token: no answer is a 5xx, and every 4xx names the problem (``detail``, and for
422 ``errors[].field/reason``). Bounded: a few dozen generated requests per operation."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings

from sequent.security.tests.world import build_world
from sequent.wsgi import application

EXAMPLES_PER_OPERATION = 20


def _names_the_problem(status: int, body: bytes) -> str | None:
    """None when a 4xx body names the problem; otherwise what is wrong with it."""
    try:
        data = json.loads(body)
    except ValueError:
        return "not JSON"
    if not isinstance(data, dict) or not isinstance(data.get("detail"), str) or not data["detail"]:
        return "no detail"
    if status == 422:
        errors = data.get("errors")
        if not errors or not all(isinstance(e, dict) and "field" in e and e.get("reason") for e in errors):
            return "422 without errors[].field/reason"
    return None


@pytest.fixture
def _keep_the_test_connection():
    # The WSGI app ends each request by closing "old" connections; inside the test's
    # transaction that closes the test's own PostgreSQL connection. Django's test client
    # detaches the same handler while it calls the app.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.mark.usefixtures("_keep_the_test_connection")
def test_it_answers_every_generated_request_without_a_server_error(admin_user, capsys):
    world = build_world(admin_user, admin_user)
    headers = {"Authorization": f"Bearer {world.api_token}"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)
    statuses: Counter[int] = Counter()
    problems: list[str] = []

    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case) -> None:
            # Revoking the token the fuzzer itself uses would only end the run early.
            if case.path_parameters and case.path_parameters.get("token_id") == world.ids["token_id"]:
                return
            response = case.call(headers=headers)
            statuses[response.status_code] += 1
            where = f"{case.method} {case.formatted_path} -> {response.status_code}"
            if response.status_code >= 500:
                problems.append(
                    f"{where} (query {case.query!r}, body {case.body!r}): {response.content[:200]!r}"
                )
            elif response.status_code >= 400:
                wrong = _names_the_problem(response.status_code, response.content)
                if wrong:
                    problems.append(f"{where}: {wrong}: {response.content[:300]!r}")

        run()

    total = sum(statuses.values())
    with capsys.disabled():
        print(f"\nschemathesis: {total} requests, by status {dict(sorted(statuses.items()))}")
    assert not problems, "\n".join(problems[:30])
    assert total >= 20 * 60


def test_it_answers_a_json_404_for_a_path_no_operation_matches(api):
    for method, path in (
        ("get", "/api/v1/tasks/-1"),
        ("post", "/api/v1/sequences/-5/archive"),
        ("get", "/api/v2/x"),
    ):
        response = getattr(api, method)(path)
        assert response.status_code == 404, path
        assert response.json() == {"detail": "Not Found"}
