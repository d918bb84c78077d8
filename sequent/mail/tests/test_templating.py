import datetime as dt

import pytest

from sequent.mail.templating import (
    RenderedEmail,
    TemplateRenderError,
    build_context,
    render_email,
    render_text,
    validate_template,
)


def context(**contact_overrides):
    contact = {
        "first_name": "Dana",
        "last_name": "Lee",
        "email": "dana@client.test",
        "job_title": "CTO",
        "tags": ["vip", "beta"],
        "custom": {"plan": "Pro", "renewal": dt.date(2026, 5, 1), "email": "other@client.test", "seats": 0},
    }
    contact.update(contact_overrides)
    return build_context(
        contact,
        {"name": "Client Co", "domain": "client.test", "custom": {"tier": "Gold"}},
        {"first_name": "Sam", "last_name": "Rep", "email": "sam@acme.test"},
        {"name": "Spring outreach"},
        "https://app.acme.test/u/tok",
    )


def test_it_renders_subject_and_body_with_every_kind_of_placeholder():
    rendered = render_email(
        "{{ contact.first_name }}, a question about {{ account.name }}",
        "<p>Hi {{ contact.first_name }} ({{ contact.job_title }}), you are on {{ contact.custom.plan }}"
        " until {{ contact.renewal | date: '%b %d, %Y' }}; tier {{ account.tier }}.</p>"
        "<p>{{ sender.first_name }} - {{ sequence.name }} - {{ contact.tags | join: ', ' }}</p>"
        '<a href="{{ unsubscribe_link }}">unsubscribe</a>',
        context(),
    )
    assert rendered == RenderedEmail(
        subject="Dana, a question about Client Co",
        html="<p>Hi Dana (CTO), you are on Pro until May 01, 2026; tier Gold.</p>"
        "<p>Sam - Spring outreach - vip, beta</p>"
        '<a href="https://app.acme.test/u/tok">unsubscribe</a>',
    )


def test_it_keeps_built_in_fields_over_custom_fields_of_the_same_name():
    ctx = context()
    assert render_text("{{ contact.email }} / {{ contact.custom.email }}", ctx) == (
        "dana@client.test / other@client.test"
    )


def test_it_fills_full_name_from_the_names():
    assert render_text("{{ contact.full_name }}", context()) == "Dana Lee"
    assert render_text("{{ contact.full_name }}", context(first_name="")) == "Lee"


@pytest.mark.parametrize("empty", ["", "   ", None])
def test_it_refuses_an_empty_placeholder_without_default_never_sending_hi_comma(empty):
    with pytest.raises(TemplateRenderError) as caught:
        render_email("Hello", "<p>Hi {{ contact.first_name }},</p>", context(first_name=empty))
    assert caught.value.message == (
        "body line 1: contact.first_name is empty and has no default "
        '(write {{ contact.first_name | default: "..." }})'
    )
    assert caught.value.part == "body" and caught.value.line == 1


def test_it_refuses_a_missing_field_and_names_its_line():
    with pytest.raises(TemplateRenderError, match=r"^body line 3: contact.custom.industry is empty"):
        render_email("Hello", "<p>Hi</p>\n<p>x</p>\n<p>{{ contact.custom.industry }}</p>", context())


def test_it_uses_the_default_for_empty_and_missing_values():
    ctx = context(first_name="")
    assert render_text('Hi {{ contact.first_name | default: "there" }},', ctx) == "Hi there,"
    assert render_text('{{ contact.custom.industry | default: "your industry" }}', ctx) == "your industry"
    assert render_text('{{ contact.first_name | default: "x" | upcase }}', ctx) == "X"
    # Zero is a value, not an empty placeholder.
    assert render_text("{{ contact.seats }}", ctx) == "0"


def test_it_treats_an_empty_value_as_false_in_conditions():
    src = "{% if contact.first_name %}Hi {{ contact.first_name }}{% else %}Hello{% endif %}"
    assert render_text(src, context(first_name="")) == "Hello"
    assert render_text(src, context()) == "Hi Dana"


def test_it_names_a_subject_placeholder_error_as_the_subject():
    with pytest.raises(TemplateRenderError, match=r"^subject line 1: contact.last_name is empty"):
        render_email("For {{ contact.last_name }}", "<p>Hi</p>", context(last_name=None))


def test_it_reports_an_unknown_top_level_name():
    with pytest.raises(TemplateRenderError, match=r"contcat is not a known placeholder"):
        render_text("{{ contcat.first_name }}", context())


def test_it_escapes_contact_values_in_html_but_not_in_subject_or_text():
    ctx = context(first_name="<b>Dana</b> & co")
    rendered = render_email("Hi {{ contact.first_name }}", "<p>{{ contact.first_name }}</p>", ctx)
    assert rendered.html == "<p>&lt;b&gt;Dana&lt;/b&gt; &amp; co</p>"
    assert rendered.subject == "Hi <b>Dana</b> & co"
    assert render_text("{{ contact.first_name }}", ctx) == "<b>Dana</b> & co"


def test_it_folds_a_value_with_line_breaks_into_a_one_line_subject():
    rendered = render_email(
        "Hi {{ contact.job_title }}", "<p>x</p>", context(job_title="CTO\r\nBcc: x@evil.test")
    )
    assert rendered.subject == "Hi CTO Bcc: x@evil.test"


def test_it_refuses_an_empty_subject_or_body():
    with pytest.raises(TemplateRenderError, match=r"^subject: the subject is empty"):
        render_email("{% if false %}x{% endif %}", "<p>x</p>", context())
    with pytest.raises(TemplateRenderError, match=r"^body: the body is empty"):
        render_email("Hi", "  ", context())


@pytest.mark.parametrize(
    ("src", "reason"),
    [
        ("{{ contact.__class__ }}", "contact.__class__ is empty and has no default"),
        ("{{ contact.first_name.__class__.__mro__ }}", "contact.first_name.__class__ is empty"),
        ("{{ contact.tags.__len__ }}", "contact.tags.__len__ is empty"),
        ("{{ __builtins__ }}", "__builtins__ is not a known placeholder"),
        ("{% for i in (1..100000000) %}x{% endfor %}", "a loop runs more than 10,000 times"),
        (
            "{% for i in (1..1000) %}{% for j in (1..1000) %}x{% endfor %}{% endfor %}",
            "a loop runs more than 10,000 times",
        ),
        (
            "{% for i in (1..2000) %}" + "x" * 1000 + "{% endfor %}",
            "the output is larger than 1,000,000 bytes",
        ),
        (
            "{% assign a = 'xxxxxxxxxx' %}{% for i in (1..30) %}{% assign a = a | append: a %}{% endfor %}",
            "assigned variables hold more than 100,000 bytes",
        ),
        ("{% if true %}" * 40 + "x" + "{% endif %}" * 40, "blocks are nested more than 20 deep"),
        ("{% include 'secrets' %}", "syntax error: unexpected tag 'include'"),
        ("{% render 'secrets' %}", "syntax error: unexpected tag 'render'"),
        ("{{ contact.first_name | no_such_filter }}", "unknown filter 'no_such_filter'"),
        ("{{ 1 | divided_by: 0 }}", "divided_by"),
    ],
)
def test_it_fails_safely_with_a_message_on_hostile_templates(src, reason):
    with pytest.raises(TemplateRenderError) as caught:
        render_email("Hello", src, context())
    assert reason in caught.value.message
    assert caught.value.message.startswith("body")


def test_it_reports_syntax_problems_for_editors_with_their_lines():
    assert validate_template('Hi {{ contact.first_name | default: "there" }}') == []
    assert validate_template("{% for t in contact.tags %}{{ t }}{% endfor %}{% assign x = 1 %}{{ x }}") == []
    assert validate_template("line one\n{% if contact.first_name %}") == [
        "template: syntax error: expected tag endif, found end of expression"
    ]
    assert validate_template("a\n\n{{ contact.first_name ") == [
        "line 3: syntax error: expected '}}', found end of file"
    ]
    assert validate_template("a\n{{ x | nofilter }}\n{{ contcat.name }}") == [
        "line 2: unknown filter 'nofilter'",
        "line 2: x is not a known placeholder (use contact, account, sender, sequence or unsubscribe_link)",
        "line 3: contcat.name is not a known placeholder (use contact, account, sender, sequence or unsubscribe_link)",
    ]


def test_it_gives_templates_only_plain_data():
    class Secretive:
        password = "hunter2"

        def __str__(self):
            return "shown as text"

    ctx = build_context({"first_name": "Dana", "custom": {"obj": Secretive()}}, None, {}, None, None)
    assert ctx["contact"]["custom"]["obj"] == "shown as text"
    with pytest.raises(TemplateRenderError):
        render_text("{{ contact.custom.obj.password }}", ctx)
    assert "account" not in ctx and "sequence" not in ctx and "unsubscribe_link" not in ctx


def test_it_renders_text_for_sms_without_html_escaping():
    assert render_text("Hi {{ contact.first_name }} & team, reply STOP to opt out", context()) == (
        "Hi Dana & team, reply STOP to opt out"
    )
