"""The IDOR matrix: every route that takes an object's id, generated from the URL resolver
and the API's OpenAPI schema. User B (same role as A) asks for each of A's objects with
every method: 404, none of A's data in the body, and nothing of A's changed."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from sequent.security.routes import ApiRoute, PageRoute, api_routes, page_routes
from sequent.security.tests.world import (
    MARK,
    OWNED,
    PUBLIC_ROUTES,
    SHARED,
    MissingFactory,
    build_world,
    kinds_of,
    missing_values,
    snapshot,
    values_for,
)

PAGES = [route for route in page_routes() if route.params and route.name not in PUBLIC_ROUTES]
APIS = [route for route in api_routes() if route.params]


def _kinds(route: PageRoute | ApiRoute) -> set[str]:
    try:
        return kinds_of(route.name, route.params)
    except MissingFactory:
        return {OWNED}  # unknown: the matrix test fails it with "add a factory"


OWNED_PAGES = [route for route in PAGES if OWNED in _kinds(route)]
OWNED_APIS = [route for route in APIS if OWNED in _kinds(route)]
SHARED_PAGES = [route for route in PAGES if OWNED not in _kinds(route) and SHARED in _kinds(route)]
SHARED_APIS = [route for route in APIS if OWNED not in _kinds(route) and SHARED in _kinds(route)]


@pytest.fixture
def world(rep, admin_user):
    return build_world(rep, admin_user)


@pytest.fixture
def intruder(other_rep) -> Client:
    client = Client()
    client.force_login(other_rep)
    return client


def _values(route: PageRoute | ApiRoute, world) -> dict:
    try:
        return values_for(route.name, route.params, world)[0]
    except MissingFactory as exc:
        pytest.fail(str(exc))


def _page(client: Client, method: str, url: str):
    return client.get(url) if method == "GET" else client.post(url, {})


def _api(api, route: ApiRoute, url: str):
    method = route.method.lower()
    if method in ("get", "delete"):
        return getattr(api, method)(url)
    return getattr(api, method)(url, {})


def _assert_hidden(response, nothing, what: str) -> None:
    """404; or the very answer a missing object gets (e.g. 405 for a method the route
    does not take, or 422 for a body refused before any lookup): nothing to learn."""
    body = response.content.decode(errors="replace")
    assert MARK not in body, f"{what}: A's data in the answer"
    if response.status_code == 404:
        return
    assert 400 <= response.status_code < 500, f"{what}: answered {response.status_code}"
    assert (response.status_code, body) == (nothing.status_code, nothing.content.decode(errors="replace")), (
        f"{what}: answered {response.status_code}, not what a missing object gets ({nothing.status_code})"
    )


def test_it_lists_the_matrix(capsys):
    assert len(OWNED_PAGES) + len(OWNED_APIS) >= 60
    with capsys.disabled():
        print(f"\nIDOR matrix: {len(OWNED_PAGES)} page routes, {len(OWNED_APIS)} API operations")


@pytest.mark.parametrize("route", OWNED_PAGES, ids=lambda r: r.name)
def test_it_hides_another_users_object_on_every_page_route(route, world, intruder):
    url = route.url(_values(route, world))
    missing = route.url(missing_values(route.name, route.params))
    before = snapshot()
    for method in ("GET", "POST"):
        response = _page(intruder, method, url)
        _assert_hidden(response, _page(intruder, method, missing), f"{method} {url}")
    assert snapshot() == before


@pytest.mark.parametrize("route", OWNED_APIS, ids=lambda r: r.name)
def test_it_hides_another_users_object_on_every_api_operation(route, world, other_api):
    url = route.url(_values(route, world))
    missing = route.url(missing_values(route.name, route.params))
    before = snapshot()
    response = _api(other_api, route, url)
    _assert_hidden(response, _api(other_api, route, missing), route.name)
    if route.method == "GET":
        assert response.status_code == 404, json.loads(response.content)
    assert snapshot() == before


@pytest.mark.parametrize("route", SHARED_PAGES, ids=lambda r: r.name)
def test_it_lets_no_other_rep_delete_a_shared_record_from_a_page(route, world, intruder):
    url = route.url(_values(route, world))
    assert intruder.get(url).status_code < 500
    if "delete" not in route.name:
        return
    before = snapshot()
    response = intruder.post(url, {}, follow=True)
    assert snapshot() == before
    # Refused: 403/404, or back on the record's own page with the reason.
    assert response.status_code in (200, 403, 404), response.status_code
    if response.status_code == 200:
        record_url = url.removesuffix("delete/")
        assert response.redirect_chain[-1][0] == record_url
        assert "delete" in response.content.decode().lower()


@pytest.mark.parametrize("route", SHARED_APIS, ids=lambda r: r.name)
def test_it_lets_no_other_rep_delete_or_manage_a_shared_record_through_the_api(route, world, other_api):
    url = route.url(_values(route, world))
    if route.method == "GET":
        assert other_api.get(url).status_code == 200
        return
    writes_allowed = {"contact_id", "account_id"}  # any user may update contacts and accounts
    if route.method != "DELETE" and set(route.params) <= writes_allowed:
        return
    before = snapshot()
    response = _api(other_api, route, url)
    assert response.status_code in (403, 404), (route.name, response.status_code)
    assert snapshot() == before


def test_it_names_only_routes_that_exist_as_public():
    names = {route.name for route in page_routes()}
    assert set(PUBLIC_ROUTES) <= names


HUGE = 10**30  # beyond any database integer


@pytest.mark.parametrize("route", OWNED_PAGES + SHARED_PAGES, ids=lambda r: r.name)
def test_it_answers_404_for_an_id_too_large_to_store_on_every_page(route, world, intruder):
    values = {
        name: HUGE if isinstance(value, int) else value for name, value in _values(route, world).items()
    }
    for method in ("GET", "POST"):
        response = _page(intruder, method, route.url(values))
        assert response.status_code in (404, 405), (method, route.url(values), response.status_code)


@pytest.mark.parametrize("route", OWNED_APIS + SHARED_APIS, ids=lambda r: r.name)
def test_it_refuses_an_id_too_large_to_store_on_every_api_operation(route, world, other_api):
    values = {
        name: HUGE if isinstance(value, int) else value for name, value in _values(route, world).items()
    }
    response = _api(other_api, route, route.url(values))
    assert response.status_code in (404, 422), (route.name, response.status_code)
    assert response.json()["detail"]


def test_it_fails_a_new_route_whose_parameter_has_no_factory():
    route = PageRoute(pattern="widgets/<int:widget_id>/", name="app:widget", params=("widget_id",))
    assert OWNED in _kinds(route)  # so it lands in the matrix
    with pytest.raises(
        pytest.fail.Exception, match=r"add a factory for app:widget \(parameter 'widget_id'\)"
    ):
        _values(route, None)
