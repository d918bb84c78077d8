"""Pages of the mail app: the tracking endpoints, the unsubscribe page, and the local
mail catcher's inbox.

The tracking and unsubscribe endpoints are public (the recipient is not logged in)
and trust nothing but their signed token. The unsubscribe POST is the one view
without CSRF protection: RFC 8058 one-click requests come from mailbox providers
without cookies, and the token in the URL is what authorises them.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from sequent.crm.models import Contact
from sequent.mail import catcher, tokens, tracking
from sequent.mail.actions import do_unsubscribe
from sequent.mail.models import OutboundMessage

CATCHER_PAGE_SIZE = 50


def _no_store(response: HttpResponse) -> HttpResponse:
    # Every hit must reach us (no shared caches), and search engines must not index tokens.
    response["Cache-Control"] = "no-store, private"
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return response


def _user_agent(request: HttpRequest) -> str:
    return str(request.META.get("HTTP_USER_AGENT", ""))


@require_http_methods(["GET", "HEAD"])
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    """The open pixel: records the open when the token is good. A bad token answers 404,
    still with the GIF as its body, so a reader's mail shows no broken image."""
    recorded = tracking.do_record_open(token, method=request.method or "GET", user_agent=_user_agent(request))
    status = 200 if recorded else 404
    return _no_store(HttpResponse(tracking.PIXEL_GIF, content_type="image/gif", status=status))


@require_http_methods(["GET", "HEAD"])
def click(request: HttpRequest, token: str) -> HttpResponse:
    """A tracked link: records the click and redirects to the URL recorded for it; 404 for
    a bad token or an unknown link, never a redirect."""
    try:
        url = tracking.do_record_click(token, method=request.method or "GET", user_agent=_user_agent(request))
    except (tokens.BadToken, tracking.UnknownLink):
        return _no_store(HttpResponse("This link is not valid.", status=404, content_type="text/plain"))
    return _no_store(HttpResponseRedirect(url))


def _masked(address: str) -> str:
    """``d***@client.example``: enough for the recipient to recognise, no more."""
    local, at, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if at else ""


@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET: a confirmation page with a button (never unsubscribes). POST (the button, or a
    provider's RFC 8058 one-click request): unsubscribe. A bad token changes nothing (404)."""
    try:
        target = tokens.read_unsubscribe_token(token)
    except tokens.BadToken:
        return _no_store(render(request, "mail/unsubscribe_invalid.html", status=404))
    if request.method == "POST":
        contact = do_unsubscribe(target)
        if contact is None:
            return _no_store(render(request, "mail/unsubscribe_invalid.html", status=404))
        return _no_store(render(request, "mail/unsubscribe_done.html", {"address": _masked(contact.email)}))
    if target.kind == "message":
        found = (
            OutboundMessage.objects.filter(pk=target.pk)
            .values_list("contact__email", "contact__email_opt_out")
            .first()
        )
    else:
        found = Contact.objects.filter(pk=target.pk).values_list("email", "email_opt_out").first()
    if found is None:
        return _no_store(render(request, "mail/unsubscribe_invalid.html", status=404))
    email, opted_out = found
    return _no_store(
        render(request, "mail/unsubscribe.html", {"address": _masked(email), "already": opted_out})
    )


@login_required
def catcher_inbox(request: HttpRequest) -> HttpResponse:
    """The emails the local mail catcher received, newest first."""
    total = catcher.count_caught()
    paginator = Paginator(range(total), CATCHER_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    offset = (page.number - 1) * CATCHER_PAGE_SIZE
    caught = catcher.list_caught(limit=CATCHER_PAGE_SIZE, offset=offset) if total else []
    return render(
        request,
        "mail/catcher_inbox.html",
        {"caught": caught, "page": page, "total": total, "port": catcher.catcher_port()},
    )


@login_required
def catcher_message(request: HttpRequest, name: str) -> HttpResponse:
    """One caught email: its headers, and its HTML in a sandboxed frame with working links."""
    try:
        message = catcher.read_caught(name)
    except (FileNotFoundError, OSError):
        raise Http404("no such caught email") from None
    html = message.html
    if html is not None:
        # Links open in a new tab: the frame itself may not navigate away or run scripts.
        html = '<base target="_blank">' + html
    return render(request, "mail/catcher_message.html", {"message": message, "html": html})
