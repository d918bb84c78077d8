from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from sequent.users import access


def permissions(request: HttpRequest) -> dict[str, Any]:
    """Expose the workspace permissions that decide which menus a user sees."""
    user = getattr(request, "user", None)
    return {
        "can": {
            "view_sequences": access.has_perm(user, access.VIEW_SEQUENCES),
            "create_sequences": access.has_perm(user, access.CREATE_SEQUENCES),
            "import_records": access.has_perm(user, access.IMPORT_RECORDS),
            "manage_users": access.has_perm(user, access.MANAGE_USERS),
            "manage_workspace": access.has_perm(user, access.MANAGE_WORKSPACE),
        }
    }
