"""Hypothesis on the parsers of user and outside input: the condition compiler, the CSV
importer, the Liquid renderer and the inbound mail classifier. Each either does its job
or refuses with a clear error; none ever raises anything else. The number of inputs
tried is printed (and written down in docs/RELIABILITY.md)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter
from pathlib import Path

from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sequent.crm import imports
from sequent.crm.conditions import ConditionError, field_catalog, filter_records
from sequent.crm.models import ImportStatus
from sequent.mail import templating
from sequent.mail.inbound_parse import Inbound, classify

TRIED: Counter[str] = Counter()


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )


def _report(capsys, name: str) -> None:
    with capsys.disabled():
        print(f"\n{name}: {TRIED[name]} inputs")


# --- the condition compiler -----------------------------------------------------------

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


@st.composite
def clauses(draw):
    """Condition lists: mostly real fields and operators with odd values, some nonsense."""
    record_type = draw(st.sampled_from(["contact", "account"]))
    specs = field_catalog(record_type)
    items = []
    for _ in range(draw(st.integers(0, 10))):
        spec = draw(st.sampled_from(specs))
        field = draw(st.sampled_from([spec.name, spec.name.upper(), "nope", "", "owner__password"]))
        op = draw(st.sampled_from([*spec.operators, "==", "", "regex"]))
        value = draw(
            st.sampled_from(spec.choices or ("x",))
            | st.sampled_from(["", "2026-02-30", "1e309", "-0", "me", "%", "_", "'; DROP TABLE x;--"])
            | JSONISH
        )
        clause = draw(
            st.sampled_from(
                [
                    {"field": field, "op": op, "value": value},
                    {"field": field, "op": op},
                    {"field": field, "op": op, "value": value, "extra": 1},
                    [field, op, value],
                    value,
                ]
            )
        )
        items.append(clause)
    return record_type, items


@fuzz(300)
@given(case=clauses())
def _conditions(case, user):
    TRIED["condition compiler"] += 1
    record_type, items = case
    try:
        rows = filter_records(record_type, items, user=user)
    except ConditionError as exc:
        assert str(exc)
        return
    list(rows[:5])  # the SQL runs


def test_it_compiles_random_conditions_or_names_the_bad_clause(rep, capsys):
    _conditions(user=rep)
    _report(capsys, "condition compiler")


# --- the CSV importer ----------------------------------------------------------------

CELL = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        ["=1+2", "+cmd|' /C calc'!A0", "-2", "@SUM(A1)", "\t=x", "\r", "a\nb", '"q"', "", "x" * 5000]
    ),
    st.emails(),
)


@st.composite
def csv_files(draw):
    header = draw(
        st.lists(
            st.sampled_from(["email", "first_name", "last_name", "Email", "mobile", "job title", "x", ""]),
            min_size=1,
            max_size=6,
        )
    )
    rows = draw(st.lists(st.lists(CELL, max_size=8), max_size=12))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    text = buffer.getvalue()
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16", "latin-1"]))
    data = text.encode(encoding, errors="replace")
    mangle = draw(st.sampled_from(["none", "truncate", "junk", "unbalanced quote", "nul"]))
    if mangle == "truncate" and data:
        data = data[: draw(st.integers(0, len(data)))]
    elif mangle == "junk":
        data += draw(st.binary(max_size=40))
    elif mangle == "unbalanced quote":
        data += b'\n"never closed,' + b"y" * 100
    elif mangle == "nul":
        data = data.replace(b",", b"\x00,", 1)
    return data


@fuzz(150)
@given(data=csv_files())
def _importer(data, user, directory: Path):
    TRIED["CSV importer"] += 1
    path = directory / f"fuzz-{TRIED['CSV importer']}.csv"
    path.write_bytes(data)
    try:
        job = imports.do_create_import(user, "contacts", path)
    except ValidationError:
        return
    job = imports.claim_import(job.pk, "fuzz")
    job = imports.do_run_import(job)
    assert job.status in (ImportStatus.DONE, ImportStatus.FAILED)
    assert "unexpected error" not in job.message, job.message
    if job.status == ImportStatus.FAILED:
        assert job.message
    lines = list(job.row_errors.values_list("line", "reason"))
    assert all(line >= 1 and reason for line, reason in lines)
    assert job.error_count == len(lines)


def test_it_imports_random_files_or_reports_each_bad_row(rep, tmp_path, capsys):
    _importer(user=rep, directory=tmp_path)
    _report(capsys, "CSV importer")


# --- the Liquid renderer -------------------------------------------------------------

TAGS = [
    "{{ contact.first_name }}",
    "{{ contact.first_name | upcase | default: 'x' }}",
    "{% if contact.email %}",
    "{% endif %}",
    "{% for i in (1..3) %}",
    "{% endfor %}",
    "{% assign a = 'b' %}",
    "{% capture c %}",
    "{% endcapture %}",
    "{{ a | append: a | append: a }}",
    "{{",
    "}}",
    "{%",
    "%}",
    "{% raw %}",
    "{% endraw %}",
    "{% include 'x' %}",
    "{{ contact.__class__ }}",
    "{{ 1 | divided_by: 0 }}",
    "{{ 'x' | truncate: -1 }}",
    "{{ contact | json }}",
    "{{ account.custom.x | date: '%Y' }}",
    "{% cycle 'a', 'b' %}",
    "{% case contact.first_name %}{% when 'a' %}",
    "{% endcase %}",
]
TEMPLATES = st.lists(st.sampled_from(TAGS) | st.text(max_size=10), max_size=12).map("".join)
CONTEXT = templating.build_context(
    {"first_name": "Dana", "last_name": "", "email": "d@x.example", "custom": {"x": "2026-01-01"}},
    {"name": "Acme", "custom": {}},
    {"first_name": "Al", "email": "al@x.example"},
    {"name": "Q3"},
    "https://x.example/u/t",
)


@fuzz(500)
@given(subject=TEMPLATES, body=TEMPLATES)
def _liquid(subject, body):
    TRIED["Liquid renderer"] += 1
    try:
        rendered = templating.render_email(subject or "s", body or "b", CONTEXT)
    except templating.TemplateRenderError as exc:
        assert exc.message and exc.part in ("subject", "body")
        return
    assert rendered.subject and "\n" not in rendered.subject
    templating.validate_template(body)


def test_it_renders_random_templates_or_explains_why_not(capsys):
    _liquid()
    _report(capsys, "Liquid renderer")


# --- the inbound classifier ----------------------------------------------------------

DSN = (
    b"From: MAILER-DAEMON@mx.example\r\nTo: al@x.example\r\nSubject: Undelivered\r\n"
    b"Message-ID: <dsn1@mx.example>\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
    b"--B\r\nContent-Type: text/plain\r\n\r\nsorry\r\n"
    b"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n"
    b"Final-Recipient: rfc822; d@x.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
    b"--B\r\nContent-Type: message/rfc822\r\n\r\nMessage-ID: <ours@x.example>\r\nSubject: hi\r\n\r\nbody\r\n"
    b"--B--\r\n"
)
REPLY = (
    b"From: Dana <d@x.example>\r\nTo: al@x.example\r\nSubject: Re: hi\r\n"
    b"In-Reply-To: <ours@x.example>\r\nReferences: <a@x> <ours@x.example>\r\nAuto-Submitted: auto-replied\r\n"
    b"Date: Mon, 2 Mar 2026 09:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    b"Out of office until 12/03. Please unsubscribe me.\r\n"
)


@st.composite
def broken_mail(draw):
    base = draw(st.sampled_from([DSN, REPLY, b""]))
    ops = draw(st.lists(st.tuples(st.integers(0, 2000), st.binary(max_size=30)), max_size=6))
    data = bytearray(base)
    for position, chunk in ops:
        where = position % (len(data) + 1)
        data[where : where + draw(st.integers(0, 40))] = chunk
    extra = draw(
        st.sampled_from(
            [
                b"",
                b"Content-Type: multipart/mixed\r\n\r\n--\r\n",
                b"Date: Feb 31 99999\r\n",
                b"Content-Transfer-Encoding: base64\r\n\r\n!!!!",
                b"Status: 9.9.9.9.9\r\nAction: \xff\xfe\r\n",
                b"Content-Type: text/plain; charset=x-unknown-charset\r\n\r\n\xe9\xe9",
                b"=?utf-8?b?!!!?=\r\n",
            ]
        )
    )
    return bytes(extra + data) if draw(st.booleans()) else bytes(data + extra)


@fuzz(600)
@given(raw=broken_mail())
def _inbound(raw):
    TRIED["inbound classifier"] += 1
    item = classify(raw, today=dt.date(2026, 3, 2))
    assert isinstance(item, Inbound)


def test_it_classifies_or_ignores_broken_mail_without_crashing(capsys):
    _inbound()
    _report(capsys, "inbound classifier")
