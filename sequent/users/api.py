"""API for the current user and their tokens."""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest
from ninja import Router, Schema

from sequent.users import access
from sequent.users.models import ApiToken

router = Router(tags=["me"])


class MeOut(Schema):
    id: int
    email: str
    first_name: str
    last_name: str
    roles: list[str]
    permissions: list[str]
    daily_email_limit: int


class TokenOut(Schema):
    id: int
    name: str
    prefix: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


@router.get("/me", response=MeOut)
def me(request: HttpRequest) -> MeOut:
    user = request.user
    perms = sorted(
        codename
        for codename in (
            access.VIEW_SEQUENCES,
            access.CREATE_SEQUENCES,
            access.EDIT_SEQUENCES,
            access.DELETE_SEQUENCES,
            access.IMPORT_RECORDS,
            access.EXPORT_RECORDS,
            access.MANAGE_USERS,
            access.MANAGE_WORKSPACE,
        )
        if access.has_perm(user, codename)
    )
    return MeOut(
        id=user.pk or 0,
        email=user.email,  # type: ignore[union-attr]
        first_name=user.first_name,  # type: ignore[union-attr]
        last_name=user.last_name,  # type: ignore[union-attr]
        roles=list(user.groups.values_list("name", flat=True)),  # type: ignore[union-attr]
        permissions=perms,
        daily_email_limit=user.daily_email_limit,  # type: ignore[union-attr]
    )


@router.get("/me/tokens", response=list[TokenOut])
def list_tokens(request: HttpRequest) -> list[ApiToken]:
    return list(access.scope(ApiToken.objects.order_by("-created_at"), request.user).filter())


@router.delete("/me/tokens/{token_id}", response={204: None})
def revoke_token(request: HttpRequest, token_id: int) -> tuple[int, None]:
    from sequent.users.actions import do_revoke_token

    token = access_token(request, token_id)
    do_revoke_token(token)
    return 204, None


def access_token(request: HttpRequest, token_id: int) -> ApiToken:
    return access.access_object(ApiToken.objects.all(), request.user, pk=token_id)
