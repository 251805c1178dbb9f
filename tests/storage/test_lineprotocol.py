"""Line-protocol escaping and InfluxQL quoting, checked by the rules and against a real InfluxDB.

The property tests write through :class:`kordon.storage.influx.InfluxClient` into the session's
InfluxDB and read the values back: the server's own parser is the judge of the escaping.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kordon.model.topics import NAME_PATTERN
from kordon.storage.influx import (
    InfluxClient,
    InfluxRejected,
    InfluxTarget,
    quote_identifier,
    quote_string,
)
from kordon.storage.lineprotocol import (
    LineProtocolError,
    encode_line,
    escape_key,
    escape_measurement,
    escape_string_field,
    format_field_value,
)
from testkit import InfluxServer

TS0 = 1_790_000_000 * 10**9
_examples = itertools.count()

# --- escaping rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "escaped"),
    [("ups", "ups"), ("a b", r"a\ b"), ("a,b", r"a\,b"), ("a=b", "a=b"), ('q"x', 'q"x')],
)
def test_escape_measurement(name: str, escaped: str) -> None:
    assert escape_measurement(name) == escaped


@pytest.mark.parametrize("name", ["", "#comment", "a\nb"])
def test_escape_measurement_refuses_what_cannot_be_written(name: str) -> None:
    with pytest.raises(LineProtocolError):
        escape_measurement(name)


@pytest.mark.parametrize(
    ("key", "escaped"),
    [
        ("site", "site"),
        ("a b", r"a\ b"),
        ("a,b", r"a\,b"),
        ("a=b", r"a\=b"),
        ("a, b=c", r"a\,\ b\=c"),
        ('q"x', 'q"x'),
        ("kyiv-é", "kyiv-é"),
    ],
)
def test_escape_key(key: str, escaped: str) -> None:
    assert escape_key(key) == escaped


@pytest.mark.parametrize("key", ["a\nb", "ends\\"])
def test_escape_key_refuses_what_cannot_be_written(key: str) -> None:
    with pytest.raises(LineProtocolError):
        escape_key(key)


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("plain", '"plain"'),
        ('say "hi"', r'"say \"hi\""'),
        ("back\\slash", r'"back\\slash"'),
        ("ends\\", r'"ends\\"'),
        ("two\nlines", '"two\nlines"'),
        ("a, b=c", '"a, b=c"'),
        ("", '""'),
    ],
)
def test_escape_string_field(value: str, escaped: str) -> None:
    assert escape_string_field(value) == escaped


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1.0"),
        (0.1, "0.1"),
        (-2.5e-7, "-2.5e-07"),
        (1e16, "1e+16"),
        (5, "5i"),
        (-(2**63), "-9223372036854775808i"),
        (True, "true"),
        (False, "false"),
        ("x", '"x"'),
    ],
)
def test_format_field_value(value: float | int | bool | str, text: str) -> None:
    assert format_field_value(value) == text


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), None, b"x", [1]])
def test_format_field_value_refuses(value: object) -> None:
    with pytest.raises(LineProtocolError):
        format_field_value(value)  # type: ignore[arg-type]


def test_encode_line_sorts_tags_skips_empty_ones_and_appends_the_timestamp() -> None:
    line = encode_line(
        "ups", {"site": "s 1", "device": "d,1", "empty": ""}, {"a": 1.0, "b": "x y"}, 123
    )
    assert line == r'ups,device=d\,1,site=s\ 1 a=1.0,b="x y" 123'
    assert encode_line("m", {}, {"f": 1}) == "m f=1i"


def test_encode_line_needs_a_field() -> None:
    with pytest.raises(LineProtocolError):
        encode_line("m", {"t": "v"}, {})


# --- against the real InfluxDB -----------------------------------------------------------------


@pytest.fixture(scope="module")
def client(influxdb: InfluxServer) -> Iterator[InfluxClient]:
    target = InfluxTarget(url=influxdb.url, database=f"lp_{uuid.uuid4().hex[:10]}")
    with InfluxClient(target) as influx:
        assert influx.create_database()
        yield influx


# Surrogates (category Cs) are excluded because they cannot be encoded as UTF-8 at all, so
# no device can send them; everything else, NUL and other control characters included, is
# stored by InfluxDB 1.6 and must come back.
_any_char = st.characters(blacklist_categories=("Cs",))
_hostile_char = st.sampled_from(list("\"\\,= \n\r\t'#{}é€日\U0001f50b\x00\x7f\u2028"))
hostile_text = st.text(st.one_of(_hostile_char, _any_char), max_size=40)

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(values=st.lists(hostile_text, min_size=1, max_size=8))
def test_string_fields_come_back_exactly(client: InfluxClient, values: list[str]) -> None:
    example = str(next(_examples))
    body = "\n".join(
        encode_line("strings", {"ex": example}, {"v": value}, TS0 + i)
        for i, value in enumerate(values)
    )
    client.write(body.encode())
    rows = client.series(f'SELECT "v" FROM "strings" WHERE "ex" = \'{example}\'')
    assert [row["v"] for row in rows] == values


# Tag values: InfluxDB has no escape for a newline in a tag and a trailing backslash would
# escape the separator after it, so escape_key refuses both (tested above); an empty tag
# is dropped by InfluxDB. Everything else must come back.
tag_values = hostile_text.filter(lambda s: s and "\n" not in s and not s.endswith("\\"))


# InfluxQL string literals cannot hold a carriage return (InfluxQL's reader turns it into a
# newline, which ends a literal) or NUL (its reader's end-of-input mark), and have no escape
# for either: no query can select such a value by equality, so the lookups skip them.
def influxql_can_quote(value: str) -> bool:
    return "\r" not in value and "\x00" not in value


@PROPERTY
@given(values=st.lists(tag_values, min_size=1, max_size=8, unique=True))
def test_tag_values_come_back_exactly(client: InfluxClient, values: list[str]) -> None:
    example = str(next(_examples))
    body = "\n".join(
        encode_line("tags", {"ex": example, "t": value}, {"n": i}, TS0)
        for i, value in enumerate(values)
    )
    client.write(body.encode())
    rows = client.series(f'SELECT "n", "t" FROM "tags" WHERE "ex" = \'{example}\'')
    assert sorted((row["n"], row["t"]) for row in rows) == list(enumerate(values))
    # And each one is found again through a quoted InfluxQL string literal.
    for i, value in enumerate(values):
        if not influxql_can_quote(value):
            continue
        found = client.series(
            f'SELECT "n" FROM "tags" WHERE "ex" = \'{example}\' AND "t" = {quote_string(value)}'
        )
        assert [row["n"] for row in found] == [i]


@settings(max_examples=30, deadline=None)
@given(
    names=st.lists(
        st.tuples(
            st.from_regex(NAME_PATTERN, fullmatch=True), st.from_regex(NAME_PATTERN, fullmatch=True)
        ),
        min_size=1,
        max_size=10,
        unique=True,
    )
)
def test_topic_names_are_tags_that_need_no_escaping(
    client: InfluxClient, names: list[tuple[str, str]]
) -> None:
    example = str(next(_examples))
    lines = []
    for i, (site, device) in enumerate(names):
        assert escape_key(site) == site and escape_key(device) == device
        lines.append(
            encode_line("ups", {"ex": example, "site": site, "device": device}, {"n": i}, TS0)
        )
    client.write("\n".join(lines).encode())
    rows = client.series(f'SELECT "n", "site", "device" FROM "ups" WHERE "ex" = \'{example}\'')
    assert sorted((row["n"], row["site"], row["device"]) for row in rows) == [
        (i, site, device) for i, (site, device) in enumerate(names)
    ]


@PROPERTY
@given(values=st.lists(hostile_text.filter(influxql_can_quote), min_size=1, max_size=5))
def test_quote_string_matches_string_fields_exactly(
    client: InfluxClient, values: list[str]
) -> None:
    """Any text, quoted, selects exactly the points whose string field equals it."""
    example = str(next(_examples))
    body = "\n".join(
        encode_line("quoted", {"ex": example}, {"v": value, "i": i}, TS0 + i)
        for i, value in enumerate(values)
    )
    client.write(body.encode())
    for value in values:
        rows = client.series(
            f'SELECT "i" FROM "quoted" WHERE "ex" = \'{example}\' AND "v" = {quote_string(value)}'
        )
        assert [row["i"] for row in rows] == [i for i, v in enumerate(values) if v == value]


def test_quote_string_escapes_newlines(client: InfluxClient) -> None:
    """A string field may hold a newline; InfluxQL ends a literal at a raw one, so it is sent as
    the escape \\n."""
    example = str(next(_examples))
    value = "two\nlines"
    client.write(encode_line("quoted", {"ex": example}, {"v": value, "i": 0}, TS0).encode())
    q = f'SELECT "i" FROM "quoted" WHERE "ex" = \'{example}\' AND "v" = {quote_string(value)}'
    assert [row["i"] for row in client.series(q)] == [0]


HOSTILE = [
    "'; DROP DATABASE {victim}; --",
    '"; DROP DATABASE {victim}; --',
    "x' OR '1'='1",
    "x\\' OR 1=1; DROP DATABASE {victim}; --",
    "back\\slash\\",
    "\\'",
    "\\\\'; DROP DATABASE {victim}",
    'a "quoted" b',
    "tab\tand 'quote'",
]


@pytest.fixture
def victim(client: InfluxClient) -> Iterator[str]:
    """A database that an injected statement would drop."""
    name = f"victim_{uuid.uuid4().hex[:8]}"
    client.query(f"CREATE DATABASE {quote_identifier(name)}")
    yield name
    client.query(f"DROP DATABASE {quote_identifier(name)}")


def _databases(client: InfluxClient) -> set[str]:
    return {row["name"] for row in client.series("SHOW DATABASES")}


def test_quote_string_with_hostile_values(client: InfluxClient, victim: str) -> None:
    example = str(next(_examples))
    values = [template.format(victim=victim) for template in HOSTILE]
    lines = []
    for i, value in enumerate(values):
        tag = value if not value.endswith("\\") else "refused by escape_key"
        lines.append(
            encode_line("hostile", {"ex": example, "t": tag}, {"n": i, "v": value}, TS0 + i)
        )
    client.write("\n".join(lines).encode())
    for i, value in enumerate(values):
        for column in ("t", "v"):
            if column == "t" and value.endswith("\\"):
                continue
            q = (
                f'SELECT "n" FROM "hostile" WHERE "ex" = \'{example}\' '
                f'AND "{column}" = {quote_string(value)}'
            )
            results = client.query(q)
            assert len(results) == 1, f"{q!r} ran {len(results)} statements"
            assert [row["n"] for row in client.series(q)] == [i], q
    # A value nobody wrote matches nothing, however it is built.
    q = f'SELECT "n" FROM "hostile" WHERE "t" = {quote_string(values[0] + "x")}'
    assert client.series(q) == []
    assert victim in _databases(client)


@pytest.mark.parametrize("bad", ["\r", "\x00"])
def test_unquotable_characters_never_run_a_second_statement(
    client: InfluxClient, victim: str, bad: str
) -> None:
    """InfluxQL cannot express CR or NUL in a literal; such a query may fail, but only fail."""
    value = f"x{bad}'; DROP DATABASE {quote_identifier(victim)}; --"
    try:
        rows = client.series(f'SELECT * FROM "hostile" WHERE "v" = {quote_string(value)}')
    except (InfluxRejected, ValueError):
        rows = []
    assert rows == []
    assert victim in _databases(client)


def test_quote_identifier_with_hostile_names(client: InfluxClient, victim: str) -> None:
    for i, template in enumerate(HOSTILE):
        name = template.format(victim=victim)
        if name.endswith("\\"):
            continue  # escape_key refuses a trailing backslash (field keys cannot end in one)
        line = encode_line(name, {"t": "x"}, {name: i, "plain": i}, TS0)
        client.write(line.encode())
        q = f'SELECT {quote_identifier(name)}, "plain" FROM {quote_identifier(name)}'
        results = client.query(q)
        assert len(results) == 1, f"{q!r} ran {len(results)} statements"
        rows = client.series(q)
        assert [(row[name], row["plain"]) for row in rows] == [(i, i)]
    assert victim in _databases(client)


def test_bad_identifier_is_an_error_not_a_second_statement(
    client: InfluxClient, victim: str
) -> None:
    """Unquoted input would be an injection; this is what quoting prevents."""
    raw = f"x; DROP DATABASE {victim}"
    assert client.series(f"SELECT * FROM {quote_identifier(raw)}") == []
    assert victim in _databases(client)


def test_query_errors_are_rejections(client: InfluxClient) -> None:
    with pytest.raises(InfluxRejected):
        client.query("SELEKT 1")
