"""Seed the three roles and the permissions each grants."""

from django.db import migrations

WORKSPACE_PERMISSIONS = {
    "view_sales_sequences": "View Sales Sequences",
    "create_sales_sequences": "Create Sales Sequences",
    "edit_sales_sequences": "Edit Sales Sequences",
    "delete_sales_sequences": "Delete Sales Sequences",
    "import_records": "Import contacts and accounts",
    "export_records": "Export contacts and accounts",
    "manage_users": "Manage users and roles",
    "manage_workspace": "Manage workspace settings",
}

SEQUENCE_PERMS = [
    "view_sales_sequences", "create_sales_sequences", "edit_sales_sequences", "delete_sales_sequences",
]
ROLES = {
    "Administrator": list(WORKSPACE_PERMISSIONS),
    "Sales Manager": [*SEQUENCE_PERMS, "import_records", "export_records"],
    "Sales Rep": [*SEQUENCE_PERMS, "import_records", "export_records"],
}


def seed_roles(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    content_type, _ = ContentType.objects.get_or_create(app_label="users", model="workspace")
    perms = {}
    for codename, name in WORKSPACE_PERMISSIONS.items():
        perms[codename], _ = Permission.objects.get_or_create(
            content_type=content_type, codename=codename, defaults={"name": name}
        )
    for role, codenames in ROLES.items():
        group, created = Group.objects.get_or_create(name=role)
        if created:
            group.permissions.set([perms[c] for c in codenames])


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("users", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(seed_roles, remove_roles)]
