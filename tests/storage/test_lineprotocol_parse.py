"""The line-protocol parser (used by Kordon's own SQLite store) inverts the encoder."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kordon.storage.lineprotocol import LineProtocolError, encode_line, parse_lines

names = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\\"),
    min_size=1,
    max_size=20,
).filter(lambda s: s.strip() == s)
values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
)


@given(
    measurement=names.filter(lambda s: not s.startswith("#")),
    tags=st.dictionaries(names, names, max_size=4),
    fields=st.dictionaries(names, values, min_size=1, max_size=6),
    ts=st.one_of(st.none(), st.integers(min_value=0, max_value=2**62)),
)
def test_parse_inverts_encode(measurement: str, tags: dict, fields: dict, ts: int | None) -> None:
    line = encode_line(measurement, tags, fields, ts)
    [(m, t, f, parsed_ts)] = parse_lines(line)
    assert (m, t, f, parsed_ts) == (measurement, tags, fields, ts)


def test_several_lines_with_newlines_inside_strings() -> None:
    body = "\n".join(
        [
            encode_line("ups", {"site": "a"}, {"note": "one\ntwo"}, 1),
            encode_line("ups", {"site": "b"}, {"x": 1.0}, 2),
        ]
    )
    points = parse_lines(body)
    assert [p[1]["site"] for p in points] == ["a", "b"]
    assert points[0][2]["note"] == "one\ntwo"


@pytest.mark.parametrize(
    "bad", ["ups", "ups,site=a", "ups x", 'ups x="open', "ups x=1 notanumber", "ups x=abc"]
)
def test_malformed_lines_raise(bad: str) -> None:
    with pytest.raises(LineProtocolError):
        parse_lines(bad)
