from django.contrib.auth.models import Group

from sequent.users import access


def test_it_seeds_three_roles_with_sequence_permissions(db):
    names = set(Group.objects.values_list("name", flat=True))
    assert {"Administrator", "Sales Manager", "Sales Rep"} <= names
    rep = Group.objects.get(name="Sales Rep")
    codenames = set(rep.permissions.values_list("codename", flat=True))
    assert {"view_sales_sequences", "create_sales_sequences"} <= codenames
    assert "manage_users" not in codenames


def test_it_hides_sequences_from_a_rep_without_view_permission(rep):
    assert access.has_perm(rep, access.VIEW_SEQUENCES)
    group = Group.objects.get(name="Sales Rep")
    group.permissions.remove(*group.permissions.filter(codename="view_sales_sequences"))
    rep = type(rep).objects.get(pk=rep.pk)  # drop the permission cache
    assert not access.has_perm(rep, access.VIEW_SEQUENCES)
