"""Permission flows in a real browser: a missing "View Sales Sequences" hides the menu and
answers 404, and an administrator can take it away from a role on the roles page."""

import pytest
from django.contrib.auth.models import Group

from sequent.sequences.models import Sequence
from sequent.ui_tests.conftest import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def nav_labels(page):
    return page.locator("nav.nav a").all_inner_texts()


def test_it_hides_sequences_from_a_rep_without_view_and_answers_404(page, rep):
    sequence = Sequence.objects.create(owner=rep, name="Q3 outreach")
    group = Group.objects.get(name="Sales Rep")
    group.permissions.remove(*group.permissions.filter(codename="view_sales_sequences"))

    log_in(page, "alice@example.com", "pw-alice-123")
    assert "Contacts" in nav_labels(page)
    assert "Sequences" not in nav_labels(page)
    page.locator("details[data-menu=quick-add] summary").click()
    assert page.get_by_role("menuitem", name="Create Sales Sequence").count() == 0
    screenshot(page, "rep-without-sequences-home")

    for url in ("/sequences/", f"/sequences/{sequence.pk}/"):
        response = page.goto(url)
        assert response.status == 404, url
        assert "Q3 outreach" not in page.content()


def test_it_takes_the_sequence_menu_away_when_an_admin_unticks_view(new_page, rep, admin_user):
    rep_page = new_page()
    log_in(rep_page, "alice@example.com", "pw-alice-123")
    assert "Sequences" in nav_labels(rep_page)

    admin_page = new_page()
    log_in(admin_page, "admin@example.com", "pw-admin-123")
    admin_page.locator("details[data-menu=user] summary").click()
    admin_page.get_by_role("menuitem", name="Settings").click()
    admin_page.locator("nav.tabs").get_by_role("link", name="Roles").click()
    checkbox = admin_page.get_by_label("Sales Rep: View Sales Sequences")
    assert checkbox.is_checked()
    checkbox.uncheck()
    screenshot(admin_page, "settings-roles")
    admin_page.get_by_role("button", name="Save roles").click()
    assert admin_page.locator(".flash").inner_text() == "Saved what each role may do."
    assert not admin_page.get_by_label("Sales Rep: View Sales Sequences").is_checked()
    assert admin_page.get_by_label("Sales Manager: View Sales Sequences").is_checked()

    rep_page.reload()
    assert "Sequences" not in nav_labels(rep_page)
    assert rep_page.goto("/sequences/").status == 404
    screenshot(rep_page, "rep-after-role-change")


def test_it_focuses_the_search_box_with_the_slash_key(page, rep):
    log_in(page, "alice@example.com", "pw-alice-123")
    page.goto("/contacts/")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.type") == "search"
    page.keyboard.type("zoe")
    assert page.locator("input[type=search]").input_value() == "zoe"
