"""The mail catcher's message page lists the email's links as plain links (so a tracked
link can be clicked from the page itself) and makes links in the text part clickable."""

from __future__ import annotations

import html
from email.message import EmailMessage

from django.test import Client

from sequent.mail import catcher


def test_it_lists_the_links_of_a_caught_email_newest_first(settings, tmp_path, rep):
    settings.VAR_DIR = tmp_path
    for subject in ("First", "Second"):
        message = EmailMessage()
        message["Subject"], message["From"], message["To"] = (
            subject,
            "alice@acme.example",
            "dana@client.example",
        )
        message.set_content("Read https://sequent.example.com/t/c/plain-token now")
        message.add_alternative(
            '<p><a href="https://sequent.example.com/t/c/abc.def">See the demo</a>'
            ' <a href="mailto:x@example.com">mail</a> <a href="javascript:alert(1)">bad</a></p>',
            subtype="html",
        )
        catcher.store_message(
            catcher.catcher_dir(), "alice@acme.example", ["dana@client.example"], message.as_bytes()
        )
    client = Client()
    client.force_login(rep)

    inbox = client.get("/mail-catcher/").content.decode()
    assert inbox.index("Second") < inbox.index("First")
    newest = catcher.list_caught()[0].name
    page = client.get(f"/mail-catcher/{newest}/").content.decode()

    assert '<a href="https://sequent.example.com/t/c/abc.def" class="caught-link">See the demo</a>' in page
    assert 'href="javascript:' not in html.unescape(page.split("Links in this email")[1])
    assert '<a href="https://sequent.example.com/t/c/plain-token"' in page  # the text part, clickable
