"""The accelerator's JSON-event-to-CBOR transcoder (accelerator/_cbor.c) gives exactly the
bytes of the pure-Python path (`cbor2.dumps(json.loads(line))`), and leaves to that path
(ValueError) the text it does not handle.  trace.bin is then the same with either core."""
from __future__ import annotations

import json
import os
import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rewind_testing import CORPUS

cbor2 = pytest.importorskip("cbor2")

REQUIRED = os.environ.get("REWIND_REQUIRE_ACCELERATOR") == "1"
try:
    from rewind.accelerator import _cbor
except ImportError:
    if REQUIRED:
        raise
    _cbor = None

needs_c = pytest.mark.skipif(_cbor is None, reason="the C accelerator is not built here")

INT64 = st.integers(-(1 << 63), (1 << 63) - 1)
# Event-like JSON: what the recorder writes (no floats: Float values are strings).
json_values = st.recursive(
    st.none() | st.booleans() | INT64 | st.text(),
    lambda inner: st.lists(inner, max_size=30) | st.dictionaries(st.text(max_size=8), inner, max_size=30),
    max_leaves=60,
)


def python_path(text: str) -> list[bytes]:
    return [cbor2.dumps(json.loads(line)) for line in text[2:].split(",\n")]


def event_text(values) -> str:
    # The recorder's layout: every event after ",\n", strings with non-ASCII kept as is.
    return "".join(",\n" + json.dumps(v, ensure_ascii=False, separators=(",", ":")) for v in values)


@needs_c
@settings(max_examples=400, deadline=None)
@given(st.lists(json_values, min_size=1, max_size=5))
def test_the_same_bytes_as_cbor2(values):
    text = event_text(values)
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in text):
        with pytest.raises(ValueError):
            _cbor.events(text)
        return
    assert _cbor.events(text) == python_path(text)
    assert _cbor.events_joined(text) == b"".join(python_path(text))


# The shapes the transcoder copies from a table (Step, Value, and the values of each kind the
# recorder writes most), with any numbers, strings and values in them.
shape_values = st.one_of(
    st.builds(lambda i, t: {"kind": "Int", "i": i, "type_id": t}, INT64, INT64),
    st.builds(lambda text, t: {"kind": "String", "text": text, "type_id": t}, st.text(), INT64),
    st.builds(lambda f, t: {"kind": "Float", "f": f, "type_id": t}, st.text(), INT64),
    st.builds(lambda r, t: {"kind": "Raw", "r": r, "type_id": t}, st.text(), INT64),
    st.builds(lambda b, t: {"kind": "Bool", "b": b, "type_id": t}, st.booleans() | json_values, INT64),
    st.builds(lambda t: {"kind": "None", "type_id": t}, INT64),
    st.builds(lambda items, t: {"kind": "Struct", "field_values": items, "type_id": t}, json_values, INT64),
    st.builds(lambda items, t: {"kind": "Sequence", "elements": items, "is_slice": False, "type_id": t},
              json_values, INT64),
    st.builds(lambda items, t: {"kind": "Tuple", "elements": items, "type_id": t}, json_values, INT64),
    json_values,
)
shape_events = st.one_of(
    st.builds(lambda path, line: {"Step": {"path_id": path, "line": line}}, INT64, INT64),
    st.builds(lambda var, value: {"Value": {"variable_id": var, "value": value}}, INT64, shape_values),
)


@needs_c
@settings(max_examples=500, deadline=None)
# removing the "b" of "ab" gives {"a":1,"a":2}: a key given twice
@example(event={"Value": {"variable_id": 1, "value": {"ab": 1, "a": 2}}}, at=37, insert=" ")
@given(shape_events, st.integers(0, 10_000), st.sampled_from([" ", "x", "1", "-", ",", "}", "{", '"', ":", "\\"]))
def test_event_shapes_and_their_near_misses(event, at, insert):
    """Each shape gives cbor2's bytes; so does the same text with one character inserted or
    removed anywhere, when it is still JSON (the general parser decides); when it is not,
    ValueError leaves it to the Python path, which refuses it too."""
    line = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in line):
        return
    assert _cbor.events(",\n" + line) == [cbor2.dumps(event)]
    assert _cbor.events_joined(",\n" + line + ",\n" + line) == cbor2.dumps(event) * 2
    at %= len(line)  # never after the last character: a trailing comma separates nothing
    for text in (line[:at] + insert + line[at:], line[:at] + line[at + 1:]):
        try:
            expected = cbor2.dumps(json.loads(text))
        except ValueError:
            with pytest.raises(ValueError):
                _cbor.events(",\n" + text)
            continue
        try:
            got = _cbor.events(",\n" + text)
        except ValueError:
            continue  # JSON the C transcoder does not handle (a float, a big int): Python's
        assert got == [expected]

long_events = st.lists(st.text(min_size=1, max_size=12), min_size=20, max_size=40).map(
    lambda words: {"Value": {"variable_id": 1, "value": {"kind": "Sequence", "elements": words}}})


@needs_c
@settings(max_examples=200, deadline=None)
@given(st.lists(long_events, min_size=1, max_size=4), st.lists(st.tuples(st.integers(0, 3), st.booleans(),
                                                                        st.text(max_size=3)), min_size=1, max_size=12))
def test_repeated_long_events_come_from_the_cache_with_the_same_bytes(bases, uses):
    """Long events repeat at every step (an unchanged container's Value): the transcoder
    keeps their CBOR by text.  Repeated, and changed in one element, across calls and within
    one, each gives exactly cbor2's bytes; so does a line that holds two events."""
    texts = []
    for which, change, word in uses:
        event = json.loads(json.dumps(bases[which % len(bases)]))
        if change:
            event["Value"]["value"]["elements"][-1] += word or "!"
        texts.append(event_text([event]))
    texts.append("".join(texts))  # all in one call
    for text in texts + texts[::-1]:
        if any(0xD800 <= ord(ch) <= 0xDFFF for ch in text):
            continue
        assert _cbor.events(text) == python_path(text)
        assert _cbor.events_joined(text) == b"".join(python_path(text))  # from the cache too
        # Two events on one line (not the recorder's layout): never taken as one cached line.
        pair = text[2:].split(",\n")[0]
        assert _cbor.events(",\n" + pair + "," + pair) == [cbor2.dumps(json.loads(pair))] * 2
    _cbor.forget()
    if not any(0xD800 <= ord(ch) <= 0xDFFF for ch in texts[-1]):
        assert _cbor.events(texts[-1]) == python_path(texts[-1])


@needs_c
def test_the_cache_stays_right_when_it_is_full():
    """More distinct long events than the cache holds (8 MB): it drops the oldest to keep new
    ones, and every event, repeated or not, still gives cbor2's bytes."""
    _cbor.forget()
    events = [{"Value": {"variable_id": i % 7, "value": {"kind": "String", "text": "%d-" % i + "x" * 4000}}}
              for i in range(3000)]
    texts = [event_text(events[i:i + 10]) for i in range(0, len(events), 10)]
    for text in texts + texts[-5:] + texts[:5]:
        assert _cbor.events(text) == python_path(text)
        assert _cbor.events_joined(texts[0] + text) == b"".join(python_path(texts[0] + text))
    _cbor.forget()


@needs_c
def test_every_corpus_trace_event():
    # Real events: the first lines of a recorded trace cover every event kind the recorder writes.
    sample = (CORPUS / "values.py").read_text()
    text = event_text([{"Path": "/a/b.py"}, {"Step": {"path_id": 0, "line": 3}},
                       {"Value": {"variable_id": 1, "value": {"kind": "String", "text": sample, "type_id": 3}}},
                       {"Event": {"kind": 0, "metadata": "", "content": "tab\there\u0001 \"quoted\" \\ é ✓"}},
                       {"Return": {"return_value": {"kind": "None", "type_id": 0}}}])
    assert _cbor.events(text) == python_path(text)


@needs_c
@pytest.mark.parametrize("line", [
    '{"f":1.5}', '{"f":1e3}', '{"big":18446744073709551616}', '{"s":"\\ud83d\\ude00"}',
    '{"s":"lone \udc80"}', '{"a":1', '{"a" 1}', "[1,2", '{"a":tru}', '{"s":"raw\u0001control"}',
    # a key given twice: json.loads keeps the last value only (found by the near-miss test)
    '{"a":1,"a":2}', '{"a":1,"\\u0061":2}', '{"k":[{"x":1,"y":2,"z":3,"w":4,"v":5,"u":6,"t":7,"s":8,"r":9,"x":0}]}',
])
def test_text_it_does_not_handle_is_left_to_python(line):
    with pytest.raises(ValueError):
        _cbor.events(",\n" + line)
    with pytest.raises(ValueError):
        _cbor.events_joined(',\n{"a":1},\n' + line)


@needs_c
@pytest.mark.parametrize("program", ["values.py", "classes.py"])
def test_trace_bin_is_the_same_with_either_core(record, program):
    pytest.importorskip("zstandard")
    traces = [record(CORPUS / program, options=["--format", "binary"], env={"REWIND_CORE": core}, cwd=CORPUS)
              for core in ("python", "c")]
    from rewind.tools.trace_reader import iter_events

    def masked(trace) -> list[str]:  # object addresses in reprs differ between any two runs
        return [re.sub(r" at 0x[0-9a-f]+", " at 0x?", json.dumps(event)) for _, event in iter_events(trace.trace_dir)]

    assert masked(traces[0]) == masked(traces[1])
    if program == "values.py":  # no addresses there: the files are identical byte for byte
        assert (traces[0].trace_dir / "trace.bin").read_bytes() == (traces[1].trace_dir / "trace.bin").read_bytes()
