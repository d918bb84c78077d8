"""Without "View Sales Sequences" no sequence page or endpoint answers (404) and the menu
has no sequences; without "Create Sales Sequences" nothing creates a sequence. The
routes are generated from the resolver (pages under /sequences/) and the OpenAPI schema
(operations tagged "sequences")."""

from __future__ import annotations

import pytest
from django.test import Client

from sequent.security.routes import api_routes, page_routes
from sequent.security.tests.world import build_world, snapshot, values_for
from sequent.sequences.models import Sequence
from sequent.users.actions import do_set_role_permissions
from sequent.users.models import Workspace

SEQUENCE_PAGES = [route for route in page_routes() if route.pattern.startswith("sequences/")]
SEQUENCE_APIS = [route for route in api_routes() if "sequences" in route.tags]
ALL_PERMISSIONS = [codename for codename, _ in Workspace._meta.permissions]


def _take_from_reps(*codenames: str) -> None:
    kept = [codename for codename in ALL_PERMISSIONS if codename not in codenames]
    do_set_role_permissions({"Sales Rep": kept})


@pytest.fixture
def world(rep, admin_user):
    return build_world(rep, admin_user)


@pytest.fixture
def signed_in(rep) -> Client:
    client = Client()
    client.force_login(rep)
    return client


def test_it_finds_the_sequence_routes():
    assert len(SEQUENCE_PAGES) >= 15 and len(SEQUENCE_APIS) >= 20


@pytest.mark.parametrize("route", SEQUENCE_PAGES, ids=lambda r: r.name)
def test_it_hides_every_sequence_page_without_view_permission(route, world, signed_in):
    _take_from_reps("view_sales_sequences")
    url = route.url(values_for(route.name, route.params, world)[0])
    before = snapshot()
    for response in (signed_in.get(url), signed_in.post(url, {})):
        assert response.status_code in (404, 405), (url, response.status_code)
        assert "Sequence zqsecret" not in response.content.decode()
    assert snapshot() == before


@pytest.mark.parametrize("route", SEQUENCE_APIS, ids=lambda r: r.name)
def test_it_hides_every_sequence_endpoint_without_view_permission(route, world, api):
    _take_from_reps("view_sales_sequences")
    url = route.url(values_for(route.name, route.params, world)[0])
    before = snapshot()
    method = route.method.lower()
    response = getattr(api, method)(url) if method in ("get", "delete") else getattr(api, method)(url, {})
    assert response.status_code == 404, (route.name, response.status_code)
    assert snapshot() == before


def test_it_leaves_sequences_out_of_the_menu_without_view_permission(world, signed_in):
    before = signed_in.get("/contacts/").content.decode()
    _take_from_reps("view_sales_sequences")
    after = signed_in.get("/contacts/").content.decode()
    assert 'href="/sequences/"' in before
    assert 'href="/sequences/"' not in after and 'href="/sequences/new/"' not in after


def test_it_creates_no_sequence_without_create_permission(world, signed_in, api):
    _take_from_reps("create_sales_sequences")
    count = Sequence.objects.count()

    page = signed_in.post("/sequences/new/", {"name": "Sneaky", "time_zone": "UTC", "send_time": "09:00"})
    endpoint = api.post("sequences", {"name": "Sneaky", "time_zone": "UTC", "send_time": "09:00"})

    assert page.status_code == 404
    assert endpoint.status_code in (403, 404) and endpoint.json()["detail"]
    assert Sequence.objects.count() == count
    assert 'href="/sequences/new/"' not in signed_in.get("/sequences/").content.decode()
    # Reading still works: only creating is gone.
    assert signed_in.get("/sequences/").status_code == 200
