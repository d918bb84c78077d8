from django.contrib.auth.models import Group

SEQUENCES_LINK = '<a href="/sequences/">Sequences</a>'


def test_it_shows_sequences_in_the_menu_to_a_rep_who_may_view_them(client, rep):
    client.force_login(rep)
    assert SEQUENCES_LINK in client.get("/").content.decode()


def test_it_hides_sequences_from_a_user_without_the_view_permission(client, rep):
    group = Group.objects.get(name="Sales Rep")
    group.permissions.remove(*group.permissions.filter(codename="view_sales_sequences"))
    client.force_login(rep)
    page = client.get("/").content.decode()
    assert "Sequences" not in page
    assert "/sequences/" not in page
    assert '<a href="/contacts/">Contacts</a>' in page


def test_it_shows_no_menu_on_the_login_page(client, db):
    assert "/sequences/" not in client.get("/login/").content.decode()
