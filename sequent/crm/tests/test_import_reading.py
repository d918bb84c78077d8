"""Reading CSV files: encodings, delimiters, line numbers, header mapping, values."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sequent.crm import fields, importer
from sequent.crm.importer import CustomFieldDef, Dialect, ImportFileError, SourceRow

WESTERN = "First Name,Last Name,Email\nJosé,Müller,jose@example.com\nFrançoise,Lefèvre,f@example.com\n"


def test_it_detects_utf8_with_and_without_a_bom():
    text = "Name,Email\nZoë Ørsted,zoe@example.dk\n"
    assert importer.detect_encoding(text.encode("utf-8")) == "utf-8"
    assert importer.detect_encoding(b"\xef\xbb\xbf" + text.encode("utf-8")) == "utf-8-sig"


def test_it_detects_utf8_cut_inside_a_multibyte_character():
    sample = ("Name\n" + "Zoë\n" * 10).encode("utf-8")
    cut = sample[: sample.rindex("ë".encode()) + 1]  # first byte of the last "ë" only
    assert importer.detect_encoding(cut) == "utf-8"


def test_it_detects_cp1252_with_accented_western_names():
    assert importer.detect_encoding(WESTERN.encode("cp1252")) == "cp1252"
    punctuated = "Name,Note\nAnna,costs 5€ – “quoted”\n"  # noqa: RUF001 - cp1252 punctuation on purpose
    assert importer.detect_encoding(punctuated.encode("cp1252")) == "cp1252"


def test_it_detects_utf16_without_a_bom():
    text = "Name,Email\nZoë,z@example.com\nAnn,a@example.com\n" * 3
    assert importer.detect_encoding(text.encode("utf-16-le")) == "utf_16_le"


def test_it_does_not_take_cyrillic_for_cp1252():
    text = "Имя,Фамилия,Email\nИван,Петров,ivan@example.ru\nСергей,Смирнов,s@example.ru\n"  # noqa: RUF001
    encoding = importer.detect_encoding(text.encode("cp1251"))
    assert encoding != "cp1252"
    assert text.encode("cp1251").decode(encoding) == text


def test_it_reads_a_stray_cp1252_byte_in_a_utf8_file(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"Name,Email\n" + b"Ann,ann@example.com\n" * 5 + "Zoë,z@example.com\n".encode("cp1252"))
    with importer.CsvSource(path, importer.sniff(path)) as source:
        names = [row.cells[0] for row in source.rows()]
    assert names[-1] == "Zoë"


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("a,b,c\n1,2,3\n4,5,6\n", ","),
        ("a;b;c\n1;2;3\n4;5;6\n", ";"),
        ("a\tb\tc\n1\t2\t3\n", "\t"),
        ('name,tags\nAnn,"vip;new"\nBob,"a;b"\n', ","),
        ("name;note\nAnn;one, two\nBob;three, four\n", ";"),
        ("email\nann@example.com\n", ","),
        ("a;b\n", ";"),
    ],
)
def test_it_detects_the_delimiter(text, delimiter):
    assert importer.detect_delimiter(text) == delimiter


def test_it_accepts_delimiters_by_name():
    assert importer.parse_delimiter("tab") == "\t"
    assert importer.parse_delimiter(";") == ";"
    with pytest.raises(ValueError, match="not a supported delimiter"):
        importer.parse_delimiter("|")


def test_it_numbers_rows_by_the_physical_line_they_start_on(tmp_path):
    path = tmp_path / "lines.csv"
    path.write_text('\nName,Note\nAnn,"one\ntwo\nthree"\n\nBob,x\r\nCy,"a\r\nb"\nDee,y\n', newline="")
    with importer.CsvSource(path, Dialect("utf-8", ",")) as source:
        assert source.header == ["Name", "Note"]
        assert source.header_line == 2
        rows = [(row.line, row.cells[0]) for row in source.rows() if row.cells]
    assert rows == [(3, "Ann"), (7, "Bob"), (8, "Cy"), (10, "Dee")]


def test_it_refuses_an_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("\n\n")
    with pytest.raises(ImportFileError, match="empty"):
        importer.CsvSource(path, Dialect("utf-8", ","))


def test_it_maps_common_header_aliases():
    header = [
        "Given name",
        "Surname",
        "E-mail",
        "Mobile Phone",
        "Company",
        "Job Title",
        "Tags",
        "Time Zone",
        "Notes",
    ]
    plan = importer.plan_columns("contact", header, [])
    assert plan.describe() == {
        "Given name": "first_name",
        "Surname": "last_name",
        "E-mail": "email",
        "Mobile Phone": "mobile",
        "Company": "account",
        "Job Title": "job_title",
        "Tags": "tags",
        "Time Zone": "time_zone",
    }
    assert plan.ignored == ["Notes"]
    for header_name, target in [
        ("first_name", "first_name"),
        ("FIRST NAME", "first_name"),
        ("Email Address", "email"),
        ("Title", "job_title"),
        ("Account", "account"),
    ]:
        assert importer.plan_columns("contact", [header_name], []).describe() == {header_name: target}


def test_it_maps_unknown_headers_to_custom_fields_by_key_or_label():
    customs = [
        CustomFieldDef("lead_source", "Lead Source", "text"),
        CustomFieldDef("budget", "Budget (EUR)", "number"),
    ]
    plan = importer.plan_columns("contact", ["Lead source", "budget", "Shoe size"], customs)
    assert plan.describe() == {"Lead source": "custom.lead_source", "budget": "custom.budget"}
    assert plan.ignored == ["Shoe size"]


def test_it_reports_a_second_column_for_the_same_field_as_ignored():
    plan = importer.plan_columns("contact", ["Email", "E-mail"], [])
    assert plan.describe() == {"Email": "email"}
    assert plan.ignored == ["E-mail (a second column for email, after 'Email')"]


def test_it_applies_an_explicit_mapping_before_the_aliases():
    customs = [CustomFieldDef("segment", "Segment", "text")]
    plan = importer.plan_columns(
        "contact", ["Nick", "Title", "Seg"], customs, {"Nick": "first_name", "Title": "", "Seg": "Segment"}
    )
    assert plan.describe() == {"Nick": "first_name", "Seg": "custom.segment"}


def test_it_refuses_a_mapping_to_a_field_that_does_not_exist():
    with pytest.raises(ValueError, match=r"no field 'shoe_size'.*cannot create fields"):
        importer.resolve_target("contact", "shoe_size", [])
    with pytest.raises(ImportFileError, match="mapping 'Missing': the file has no such column"):
        importer.plan_columns("contact", ["Email"], [], {"Missing": "first_name"})


def test_it_needs_a_name_or_domain_column_for_accounts():
    with pytest.raises(ImportFileError, match="account name or domain"):
        importer.plan_columns("account", ["Industry"], [])


@pytest.mark.parametrize(
    ("value", "domain"),
    [
        ("acme.com", "acme.com"),
        ("https://www.Acme.com/about?x=1", "acme.com"),
        ("sam@acme.co.uk", "acme.co.uk"),
        ("@acme.io", "acme.io"),
        ("Acme Inc.", None),
        ("Acme", None),
        ("", None),
    ],
)
def test_it_recognises_domains_in_account_cells(value, domain):
    assert importer.domain_of(value) == domain


def parse(header, cells, customs=()):
    plan = importer.plan_columns("contact", header, list(customs))
    return importer.RowParser("contact", plan, list(customs)).parse(SourceRow(2, cells))


def test_it_names_the_column_of_each_bad_value():
    customs = [CustomFieldDef("renewal", "Renewal", "date"), CustomFieldDef("seats", "Seats", "number")]
    bad = parse(["Email", "Renewal", "Seats"], ["x@", "soon", "many"], customs)
    assert isinstance(bad, importer.BadRow)
    assert bad.reason.startswith("column 'Email': 'x@' is not a valid email address")
    assert "column 'Renewal': 'soon' is not a date" in bad.reason
    assert "column 'Seats': 'many' is not a number" in bad.reason


def test_it_reads_a_mobile_in_the_rows_country():
    row = parse(["Mobile", "Country"], ["06 12 34 56 78", "fr"])
    assert row.values == {"mobile": "+33612345678", "country": "FR"}
    bad = parse(["Mobile"], ["06 12 34 56 78"])
    assert "column 'Mobile'" in bad.reason and "+country code" in bad.reason


def test_it_splits_full_names_and_tags():
    row = parse(["Name", "Tags"], ["Mary Ann  Smith", "vip; newsletter,vip"])
    assert row.values == {"first_name": "Mary Ann", "last_name": "Smith"}
    assert row.tags == ["vip", "newsletter"]


def test_it_refuses_a_row_with_nul_characters_without_keeping_them():
    bad = parse(["Email", "Name"], ["a\x00@b.com", "A"])
    assert bad.reason == "the row contains NUL characters (is the file UTF-16?)"
    assert bad.cells == ["a@b.com", "A"]


def test_it_ignores_empty_rows_and_refuses_rows_of_the_wrong_length():
    assert parse(["Email", "Name"], ["", "  "]) is None
    assert parse(["Email", "Name"], []) is None
    assert parse(["Email", "Name"], ["a@b.com"]).reason == "the row has 1 values but the header has 2 columns"
    assert parse(["Email", "Name"], ["a@b.com", "A", "B"]).reason.startswith("the row has 3 values")


EMAILISH = st.text(alphabet="abcXYZ019._+-@!#'é ", min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(st.one_of(EMAILISH, st.emails().map(str), st.builds(lambda a, b: f"{a}@{b}", EMAILISH, EMAILISH)))
def test_it_normalises_emails_exactly_as_the_email_validator_does(value):
    try:
        expected = fields.normalize_email(value)
    except ValueError:
        with pytest.raises(ValueError):
            importer.normalize_email(value)
        return
    assert importer.normalize_email(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "a@localhost",
        "a@example.test",
        "a@x.onion",
        "a@ab--cd.com",
        "a..b@x.com",
        ".a@x.com",
        "a@-x.com",
        "a@x.123",
    ],
)
def test_it_leaves_edge_cases_of_emails_to_the_validator(value):
    with pytest.raises(ValueError):
        importer.normalize_email(value)
    with pytest.raises(ValueError):
        fields.normalize_email(value)
