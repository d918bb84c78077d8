"""Pure reading of CSV imports: encoding and delimiter detection, header mapping and
row validation. No Django here; ``crm.imports`` writes what this module yields to the
database in batches.

A file is read as a stream: ``CsvSource`` yields one ``SourceRow`` at a time with the
physical line the row starts on, and ``RowParser`` turns it into a ``RecordRow`` (values
ready to store) or a ``BadRow`` (line and reason naming the column).
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import charset_normalizer
import email_validator
import phonenumbers

from sequent.crm import fields

RECORD_CONTACT = "contact"
RECORD_ACCOUNT = "account"

SAMPLE_BYTES = 64 * 1024
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}
# The csv module's default (128 KiB) is too small for long notes; a bound still protects
# memory against a runaway quote that would swallow the rest of the file.
FIELD_SIZE_LIMIT = 1024 * 1024
UTF8_FALLBACK = "sequent-cp1252-fallback"
IGNORE_TARGETS = {"", "-", "ignore", "skip"}


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (empty, unreadable, bad mapping)."""


# -- Encoding and delimiter -----------------------------------------------------------


def _decode_as_cp1252(exc: UnicodeError) -> tuple[str, int]:
    """Error handler: bytes that are not UTF-8 are read as cp1252 (latin-1 for its holes)."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start : exc.end]
    text = "".join(
        bytes([byte]).decode("cp1252", errors="ignore") or bytes([byte]).decode("latin-1") for byte in bad
    )
    return text, exc.end


# A UTF-8 file whose first chunk is plain ASCII may still hold a stray cp1252 byte
# further down (files pasted together); reading that byte as cp1252 beats failing.
codecs.register_error(UTF8_FALLBACK, _decode_as_cp1252)

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_LETTERS = re.compile(r"[^\W\d_]")


def detect_encoding(sample: bytes) -> str:
    """The encoding of a file from its first bytes.

    A byte-order mark decides; NUL bytes mean UTF-16/32 (charset-normalizer says
    which); then valid UTF-8 is UTF-8; then text that reads as
    Western cp1252 with few accented letters is cp1252 (what spreadsheet programs
    write on Western Windows); anything else is charset-normalizer's best guess.
    """
    for bom, encoding in _BOMS:
        if sample.startswith(bom):
            return encoding
    if b"\x00" in sample:
        # NUL bytes are valid UTF-8 but mean UTF-16 or UTF-32 without a byte-order mark.
        guess = charset_normalizer.from_bytes(sample).best()
        if guess is not None:
            return guess.encoding
    try:
        # final=False: the sample may end inside a multi-byte character.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    if _looks_western(sample):
        return "cp1252"
    best = charset_normalizer.from_bytes(sample).best()
    return best.encoding if best is not None else "cp1252"


def _looks_western(sample: bytes) -> bool:
    """Whether *sample* decodes as cp1252 into mostly unaccented letters.

    Cyrillic or Greek bytes also decode as cp1252, but then nearly every letter is
    accented; Western names and words have a few accents at most.
    """
    try:
        text = sample.decode("cp1252")
    except UnicodeDecodeError:
        return False
    letters = _LETTERS.findall(text)
    if not letters:
        return True
    accented = sum(1 for letter in letters if not letter.isascii())
    return accented <= 0.25 * len(letters)


def detect_delimiter(text: str) -> str:
    """Comma, semicolon or tab, by csv.Sniffer on the first lines, else by counting
    each candidate in the header line."""
    lines = text.splitlines()
    if len(lines) > 1:
        lines = lines[:-1]  # the sample may cut the last line short
    lines = lines[:50]
    header = lines[0] if lines else ""
    try:
        found = csv.Sniffer().sniff("\n".join(lines), delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        found = ""
    if found in DELIMITERS and header.count(found) > 0:
        return found
    counts = {delimiter: header.count(delimiter) for delimiter in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def parse_delimiter(value: str) -> str:
    """A delimiter given by a user: the character itself or its name ("tab", "semicolon")."""
    names = {name: char for char, name in DELIMITERS.items()}
    names.update({"\\t": "\t", "t": "\t"})
    char = names.get(value.strip().lower(), value)
    if char not in DELIMITERS:
        raise ValueError(f"{value!r} is not a supported delimiter (comma, semicolon or tab)")
    return char


def check_encoding(value: str) -> str:
    """The codec name for a user-given encoding, or ValueError."""
    try:
        return codecs.lookup(value.strip()).name
    except LookupError:
        raise ValueError(f"{value!r} is not a known encoding (e.g. utf-8, cp1252, latin-1)") from None


@dataclass(frozen=True)
class Dialect:
    """How a file is read: its text encoding and field delimiter."""

    encoding: str
    delimiter: str


def sniff(path: str | Path, encoding: str = "", delimiter: str = "") -> Dialect:
    """Detect what *encoding* and *delimiter* leave unsaid, from the file's first chunk."""
    with open(path, "rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
    encoding = check_encoding(encoding) if encoding else detect_encoding(sample)
    if not delimiter:
        text = sample.decode(encoding, errors="replace")
        delimiter = detect_delimiter(text.lstrip("\ufeff"))
    return Dialect(encoding, parse_delimiter(delimiter))


def _errors_for(encoding: str) -> str:
    return UTF8_FALLBACK if codecs.lookup(encoding).name == "utf-8" else "replace"


# -- Streaming rows -------------------------------------------------------------------


@dataclass(slots=True)
class SourceRow:
    """One CSV record: the physical line it starts on (header = line 1) and its cells."""

    line: int
    cells: list[str]


class CsvSource:
    """A CSV file read one record at a time, with the bytes consumed so far.

    Line numbers count physical lines, so a quoted value with embedded newlines moves
    the next record's line number on by as many lines as it spans.
    """

    def __init__(self, path: str | Path, dialect: Dialect) -> None:
        self.dialect = dialect
        self._binary = open(path, "rb")  # closed by close() or the context manager
        self._text = io.TextIOWrapper(
            self._binary, encoding=dialect.encoding, errors=_errors_for(dialect.encoding), newline=""
        )
        csv.field_size_limit(max(csv.field_size_limit(), FIELD_SIZE_LIMIT))
        # NUL characters are dropped: PostgreSQL cannot store them in text or JSON.
        lines = (line.replace("\x00", "") for line in self._text)
        self._reader = csv.reader(lines, delimiter=dialect.delimiter, strict=False)
        self.header: list[str] = []
        self.header_line = 0
        try:
            self._read_header()
        except csv.Error as exc:
            self.close()
            raise ImportFileError(f"the header cannot be read ({exc})") from None
        except BaseException:
            self.close()
            raise

    def _read_header(self) -> None:
        previous = 0
        for cells in self._reader:
            line, previous = previous + 1, self._reader.line_num
            if any(cell.strip() for cell in cells):
                if cells:
                    cells[0] = cells[0].lstrip("\ufeff")
                self.header = [cell.strip() for cell in cells]
                self.header_line = line
                self._line_num = previous
                return
        raise ImportFileError("the file is empty: no header line")

    def rows(self) -> Iterator[SourceRow]:
        """Each record after the header, with the line it starts on."""
        previous = self._line_num
        reader = self._reader
        try:
            for cells in reader:
                yield SourceRow(previous + 1, cells)
                previous = reader.line_num
        except csv.Error as exc:
            raise ImportFileError(f"line {previous + 1}: the CSV cannot be read further ({exc})") from None

    @property
    def bytes_read(self) -> int:
        """Bytes consumed from the file (the text layer reads ahead by a chunk)."""
        return self._binary.tell()

    def close(self) -> None:
        """Close the file."""
        self._text.close()

    def __enter__(self) -> CsvSource:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# -- Header mapping -------------------------------------------------------------------


@dataclass(frozen=True)
class CustomFieldDef:
    """What the importer needs to know about a custom field."""

    key: str
    label: str
    field_type: str
    choices: tuple[str, ...] = ()


def header_key(name: str) -> str:
    """A header reduced to lower-case letters and digits: "E-mail" and "email" compare equal."""
    return re.sub(r"[\W_]+", "", name.casefold())


CONTACT_ALIASES: dict[str, tuple[str, ...]] = {
    "first_name": ("first name", "firstname", "first", "given name", "forename"),
    "last_name": ("last name", "lastname", "last", "surname", "family name"),
    "name": ("name", "full name", "contact name", "contact"),
    "email": ("email", "email address", "e-mail", "e-mail address", "mail", "work email", "business email"),
    "mobile": (
        "mobile",
        "mobile phone",
        "mobile number",
        "cell",
        "cell phone",
        "phone",
        "phone number",
        "telephone",
        "tel",
    ),
    "job_title": ("job title", "title", "position", "role"),
    "time_zone": ("time zone", "timezone", "tz"),
    "country": ("country", "country code"),
    "account": (
        "account",
        "account name",
        "company",
        "company name",
        "organization",
        "organisation",
        "employer",
        "company domain",
    ),
    "tags": ("tags", "tag", "labels"),
    "email_opt_out": ("email opt out", "email opt-out", "unsubscribed", "do not email"),
    "sms_opt_out": ("sms opt out", "sms opt-out", "do not text"),
}
ACCOUNT_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("name", "account name", "account", "company", "company name", "organization", "organisation"),
    "domain": ("domain", "website", "web site", "url", "web", "company domain", "company website"),
    "industry": ("industry", "sector"),
}
ALIASES = {RECORD_CONTACT: CONTACT_ALIASES, RECORD_ACCOUNT: ACCOUNT_ALIASES}


@dataclass(frozen=True)
class Column:
    """One mapped column: its index, its header and the field it fills."""

    index: int
    header: str
    target: str  # a built-in field name or "custom.<key>"


@dataclass
class ColumnPlan:
    """How the columns of one file map to fields."""

    header: list[str]
    columns: list[Column]
    ignored: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, str]:
        """Header -> field, for the job report."""
        return {column.header: column.target for column in self.columns}


def resolve_target(record_type: str, target: str, custom_fields: Sequence[CustomFieldDef]) -> str | None:
    """The field an explicit mapping names ("first_name", "custom.budget", a custom field's
    key or label), None for "ignore this column"; ValueError when no such field exists."""
    text = target.strip()
    if text.lower() in IGNORE_TARGETS:
        return None
    builtins = ALIASES[record_type]
    if text in builtins:
        return text
    wanted = header_key(text.removeprefix("custom."))
    for custom in custom_fields:
        if wanted in (header_key(custom.key), header_key(custom.label)):
            return f"custom.{custom.key}"
    known = ", ".join([*builtins, *(f"custom.{c.key}" for c in custom_fields)])
    raise ValueError(
        f"no field {target!r} for {record_type}s (known: {known}); a mapping cannot create fields"
    )


def plan_columns(
    record_type: str,
    header: Sequence[str],
    custom_fields: Sequence[CustomFieldDef],
    mapping: Mapping[str, str] | None = None,
) -> ColumnPlan:
    """Map each header to a field: the explicit *mapping* first, then the aliases of the
    built-in fields, then custom fields by key or label; the rest is ignored."""
    mapping = dict(mapping or {})
    by_key = {header_key(h): i for i, h in enumerate(header)}
    for name in mapping:
        if name not in header and header_key(name) not in by_key:
            raise ImportFileError(
                f"mapping {name!r}: the file has no such column (columns: {', '.join(header)})"
            )
    explicit = {header_key(name): target for name, target in mapping.items()}
    aliases = {header_key(alias): target for target, names in ALIASES[record_type].items() for alias in names}
    aliases.update({header_key(target): target for target in ALIASES[record_type]})
    customs: dict[str, str] = {}
    for custom in custom_fields:
        customs.setdefault(header_key(custom.label), f"custom.{custom.key}")
        customs.setdefault(header_key(custom.key), f"custom.{custom.key}")

    plan = ColumnPlan(header=list(header), columns=[])
    taken: dict[str, str] = {}
    for index, name in enumerate(header):
        key = header_key(name)
        if key in explicit:
            try:
                target = resolve_target(record_type, explicit[key], custom_fields)
            except ValueError as exc:
                raise ImportFileError(f"mapping {name!r}: {exc}") from None
        else:
            target = aliases.get(key) or customs.get(key)
        if target is None:
            if name:
                plan.ignored.append(name)
            continue
        if target in taken:
            plan.ignored.append(f"{name} (a second column for {target}, after {taken[target]!r})")
            continue
        taken[target] = name
        plan.columns.append(Column(index, name, target))
    if record_type == RECORD_ACCOUNT and not {"name", "domain"} & set(taken):
        raise ImportFileError("no column for the account name or domain (e.g. 'Name', 'Company', 'Website')")
    return plan


# -- Values ---------------------------------------------------------------------------

_SIMPLE_EMAIL = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}",
    re.ASCII,
)


def normalize_email(value: str) -> str:
    """``fields.normalize_email`` with a fast path for plain ASCII addresses.

    email-validator costs ~75 us a call, which would dominate a million-row import;
    an address that matches a strict subset of the syntax it accepts normalises to
    itself in lower case, and anything else still goes through the library.
    """
    text = value.strip().lower()
    local, _, domain = text.partition("@")
    if (
        len(text) <= 254
        and len(local) <= 64
        and "--" not in domain
        and _SIMPLE_EMAIL.fullmatch(text)
        and domain.rsplit(".", 1)[-1] not in email_validator.SPECIAL_USE_DOMAIN_NAMES
    ):
        return text
    return fields.normalize_email(value)


_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}", re.ASCII)
_URLISH = re.compile(r"^(?:[a-z][a-z0-9+.-]*://)?(?:www\.)?([^/?#:\s]+)(?::\d+)?(?:[/?#].*)?$", re.IGNORECASE)


def domain_of(value: str) -> str | None:
    """The bare domain in "acme.com", "https://www.acme.com/about", "@acme.com" or
    "sam@acme.com", lower-cased; None when *value* is not one of those."""
    text = value.strip().lower()
    if not text or " " in text:
        return None
    if "@" in text:
        text = text.rpartition("@")[2]
    match = _URLISH.match(text)
    if match is None:
        return None
    host = match.group(1).rstrip(".")
    return host if _DOMAIN.fullmatch(host) and len(host) <= 253 else None


@dataclass(frozen=True, slots=True)
class AccountRef:
    """A pointer to an account from a contact row: by domain or by name (case-insensitive)."""

    kind: str  # "domain" or "name"
    key: str  # lower-cased domain or name
    value: str  # as written, used as the name of an account created for it


def account_ref(value: str) -> AccountRef:
    """An "Account" cell as a reference: a domain or an email address points by domain,
    anything else by name."""
    text = " ".join(value.split())
    domain = domain_of(text)
    if domain is not None:
        return AccountRef("domain", domain, domain)
    return AccountRef("name", text.lower(), text)


@functools.lru_cache(maxsize=1024)
def _time_zone(value: str) -> str:
    # fields.normalize_time_zone lists the zone database on every call; a column holds
    # few distinct zones, so remembering the answers keeps a large file fast.
    return fields.normalize_time_zone(value)


COUNTRY_CODES = frozenset(phonenumbers.SUPPORTED_REGIONS)


def _country(value: str) -> str:
    code = value.strip().upper()
    if code not in COUNTRY_CODES:
        raise ValueError(f"{value.strip()!r} is not a two-letter country code (ISO 3166, e.g. FR, US)")
    return code


_TAG_SEPARATOR = re.compile(r"[;,]")


def _tags(value: str) -> list[str]:
    names: dict[str, None] = {}
    for name in _TAG_SEPARATOR.split(value):
        name = " ".join(name.split())
        if len(name) > 100:
            raise ValueError(f"tag {name[:20]!r}... is longer than 100 characters")
        if name:
            names[name] = None
    return list(names)


def _text(max_length: int) -> Callable[[str], str]:
    def convert(value: str) -> str:
        text = value.strip()
        if len(text) > max_length:
            raise ValueError(f"longer than {max_length} characters")
        return text

    return convert


def _domain(value: str) -> str:
    domain = domain_of(value)
    if domain is None:
        raise ValueError(f"{value.strip()!r} is not a domain or web address (e.g. acme.com)")
    return domain


def _custom(definition: CustomFieldDef) -> Callable[[str], Any]:
    def convert(value: str) -> Any:
        return fields.coerce_custom_value(definition.field_type, value, list(definition.choices))

    return convert


def split_full_name(value: str) -> tuple[str, str]:
    """ "Mary Ann Smith" -> ("Mary Ann", "Smith"); a single word is a first name."""
    words = value.split()
    if len(words) < 2:
        return " ".join(words), ""
    return " ".join(words[:-1]), words[-1]


CONTACT_LENGTHS = {"first_name": 150, "last_name": 150, "job_title": 255, "name": 150}
ACCOUNT_LENGTHS = {"name": 255, "industry": 255}


def _converter(record_type: str, target: str, customs: Mapping[str, CustomFieldDef]) -> Callable[[str], Any]:
    if target.startswith("custom."):
        return _custom(customs[target.removeprefix("custom.")])
    if record_type == RECORD_ACCOUNT:
        if target == "domain":
            return _domain
        return _text(ACCOUNT_LENGTHS[target])
    converters: dict[str, Callable[[str], Any]] = {
        "email": normalize_email,
        "mobile": str.strip,  # normalised once the row's country is known
        "time_zone": lambda v: _time_zone(v.strip()),
        "country": _country,
        "account": account_ref,
        "tags": _tags,
        "email_opt_out": fields.parse_bool,
        "sms_opt_out": fields.parse_bool,
    }
    return converters.get(target) or _text(CONTACT_LENGTHS[target])


# -- Rows -----------------------------------------------------------------------------


@dataclass(slots=True)
class RecordRow:
    """A good row: non-empty built-in values, custom values, tags and account reference."""

    line: int
    values: dict[str, Any]
    custom: dict[str, Any]
    tags: list[str]
    account: AccountRef | None


@dataclass(slots=True)
class BadRow:
    """A refused row: the line it starts on, why, and its cells as read."""

    line: int
    reason: str
    cells: list[str]


class RowParser:
    """Turns the cells of one row into a RecordRow or a BadRow, by a ColumnPlan."""

    def __init__(self, record_type: str, plan: ColumnPlan, custom_fields: Sequence[CustomFieldDef]) -> None:
        self.record_type = record_type
        self.width = len(plan.header)
        customs = {c.key: c for c in custom_fields}
        self._columns = [
            (c.index, c.header, c.target, _converter(record_type, c.target, customs)) for c in plan.columns
        ]
        country = [c.header for c in plan.columns if c.target == "country"]
        self._country_header = country[0] if country else ""

    def parse(self, row: SourceRow) -> RecordRow | BadRow | None:
        """The row's values, a BadRow naming each faulty column, or None for an empty row."""
        cells = row.cells
        if not any(cell.strip() for cell in cells):
            return None
        if "\x00" in "".join(cells):
            clean = [cell.replace("\x00", "") for cell in cells]  # databases refuse NUL in text
            return BadRow(row.line, "the row contains NUL characters (is the file UTF-16?)", clean)
        if len(cells) != self.width:
            return BadRow(
                row.line, f"the row has {len(cells)} values but the header has {self.width} columns", cells
            )
        values: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        problems: list[str] = []
        mobile_header = ""
        for index, header, target, convert in self._columns:
            raw = cells[index]
            if not raw or raw.isspace():
                continue
            try:
                value = convert(raw)
            except ValueError as exc:
                problems.append(f"column {header!r}: {exc}")
                continue
            if target.startswith("custom."):
                if value is not None:
                    custom[target[7:]] = value
            else:
                values[target] = value
                if target == "mobile":
                    mobile_header = header
        if mobile_header:
            self._normalize_mobile(values, mobile_header, problems)
        if problems:
            return BadRow(row.line, "; ".join(problems), cells)
        if self.record_type == RECORD_ACCOUNT:
            return self._account_row(row, values, custom)
        tags = values.pop("tags", [])
        account = values.pop("account", None)
        if "name" in values:
            first, last = split_full_name(values.pop("name"))
            values.setdefault("first_name", first)
            if last:
                values.setdefault("last_name", last)
        return RecordRow(row.line, values, custom, tags, account)

    def _normalize_mobile(self, values: dict[str, Any], header: str, problems: list[str]) -> None:
        country = values.get("country", "")
        try:
            values["mobile"] = fields.normalize_phone(values["mobile"], country)
        except ValueError as exc:
            hint = "" if country else " (write it with its +country code, or add a Country column)"
            problems.append(f"column {header!r}: {exc}{hint}")

    def _account_row(
        self, row: SourceRow, values: dict[str, Any], custom: dict[str, Any]
    ) -> RecordRow | BadRow:
        if not values.get("name"):
            values.pop("name", None)
            if "domain" not in values:
                return BadRow(row.line, "the row has neither an account name nor a domain", row.cells)
        return RecordRow(row.line, values, custom, [], None)


def row_text(cells: Sequence[str]) -> str:
    """The cells of a row as one CSV record (comma-separated, quoted where needed)."""
    buffer = io.StringIO()
    # With the default line terminator the writer quotes cells holding CR or LF; the
    # terminator itself is then cut off.
    csv.writer(buffer).writerow(cells)
    return buffer.getvalue().removesuffix("\r\n")


def row_cells(text: str) -> list[str]:
    """The cells of a row stored with ``row_text``."""
    try:
        return next(csv.reader(io.StringIO(text, newline="")), [])
    except csv.Error:  # stored unquoted with a bare CR, before such cells were quoted
        return text.split(",")
