"""`trace.bin` (trace-format.md section 6): the container byte by byte, frames decoded one by
one, recordings that decode to exactly the events of the same program recorded as JSON."""
from __future__ import annotations

import io
import json
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

cbor2 = pytest.importorskip("cbor2")
zstandard = pytest.importorskip("zstandard")

from rewind.tools.convert import convert_trace  # noqa: E402
from rewind.tools.trace_reader import iter_events  # noqa: E402
from rewind.writer import binary_writer  # noqa: E402
from rewind.writer.binary_writer import FRAME_CONTENT_LIMIT, BinaryEventSink, JsonToCbor, seek_table  # noqa: E402
from rewind_testing import CORPUS, ROOT, subprocess_env  # noqa: E402

HEADER = bytes.fromhex("C0DE72ACE2010000")
ZSTD_MAGIC = bytes.fromhex("28B52FFD")  # 0xFD2FB528, little-endian
SKIPPABLE_SEEK_TABLE_MAGIC = bytes.fromhex("5E2A4D18")  # 0x184D2A5E
SEEKABLE_FOOTER_MAGIC = bytes.fromhex("B1EA928F")  # 0x8F92EAB1


def parse_container(data: bytes) -> list[tuple[int, int, int]]:
    """Check the layout of section 6 independently of rewind's reader; returns
    (file offset, compressed size, decompressed size) per frame."""
    assert data[:8] == HEADER
    assert data[-4:] == SEEKABLE_FOOTER_MAGIC
    assert data[-5] == 0x00  # descriptor
    count = struct.unpack("<I", data[-9:-5])[0]
    table_size = 8 * count + 9
    table_at = len(data) - table_size - 8
    assert data[table_at:table_at + 4] == SKIPPABLE_SEEK_TABLE_MAGIC
    assert struct.unpack("<I", data[table_at + 4:table_at + 8])[0] == table_size
    entries = [struct.unpack("<II", data[table_at + 8 + 8 * i:table_at + 16 + 8 * i]) for i in range(count)]
    frames = []
    offset = 8
    for compressed, decompressed in entries:
        assert data[offset:offset + 4] == ZSTD_MAGIC, offset
        frames.append((offset, compressed, decompressed))
        offset += compressed
    assert offset == table_at, "the compressed sizes must add up to the frame area"
    return frames


def decode_items(content: bytes) -> list:
    """Concatenated CBOR items -> list (definite lengths only)."""
    stream = io.BytesIO(content)
    decoder = cbor2.CBORDecoder(stream, allow_indefinite=False)
    items = []
    while stream.tell() < len(content):
        items.append(decoder.decode())
    return items


def recorder_text(events: list) -> list[str]:
    """The pieces a recorder hands a sink: the first event, then chunks prefixed with ',\\n'."""
    texts = [json.dumps(e, ensure_ascii=False, separators=(",", ":")) for e in events]
    chunks = [texts[0]]
    for i in range(1, len(texts), 7):
        chunks.append("".join(",\n" + t for t in texts[i:i + 7]))
    return chunks


def sample_events(n: int) -> list:
    events = [{"Path": "/p/m.py"}, {"Function": {"path_id": 0, "line": 1, "name": "<toplevel>"}},
              {"Call": {"function_id": 0, "args": []}},
              {"Type": {"kind": 30, "lang_type": "None", "specific_info": {"kind": "None"}}}]
    for i in range(n):
        events.append({"Step": {"path_id": 0, "line": i % 40 + 1}})
        events.append({"Value": {"variable_id": 0, "value": {"kind": "Int", "i": i, "type_id": 1}}})
        events.append({"Value": {"variable_id": 1, "value": {"kind": "Float", "f": "2.5", "type_id": 2}}})
    events.append("DropLastStep")  # a bare string event keeps its shape (text)
    return events


def write_sink(directory: Path, events: list, **kwargs) -> tuple[BinaryEventSink, bytes]:
    sink = BinaryEventSink(str(directory), **kwargs)
    pieces = recorder_text(events)
    sink.write_first(pieces[0])
    for piece in pieces[1:]:
        sink.write(piece)
    sink.close()
    return sink, (directory / "trace.bin").read_bytes()


# --- the container ------------------------------------------------------------------------------

def test_seek_table_bytes_match_the_layout():
    table = seek_table([(10, 20), (0x01020304, 0x0A0B0C0D)])
    assert table == bytes.fromhex(
        "5E2A4D18"            # u32le 0x184D2A5E: skippable frame magic
        "19000000"            # u32le 8*N + 9 = 25
        "0A000000" "14000000"  # frame 0: compressed 10, decompressed 20
        "04030201" "0D0C0B0A"  # frame 1
        "02000000"            # u32le N
        "00"                  # descriptor
        "B1EA928F")           # u32le 0x8F92EAB1
    assert seek_table([]) == bytes.fromhex("5E2A4D18" "09000000" "00000000" "00" "B1EA928F")


def test_file_layout_byte_by_byte(tmp_path):
    events = sample_events(300)
    sink, data = write_sink(tmp_path, events, frame_limit=1000)
    frames = parse_container(data)
    assert len(frames) == len(sink.frames) > 5
    assert [(c, d) for _, c, d in frames] == sink.frames
    # The seek table is the last 8*N + 17 bytes, exactly as seek_table() builds it.
    assert data[-(8 * len(frames) + 17):] == seek_table(sink.frames)
    assert sink.bytes_written == len(data)


def test_every_frame_decodes_on_its_own_to_whole_events(tmp_path):
    events = sample_events(300)
    _, data = write_sink(tmp_path, events, frame_limit=1000)
    decoded = []
    for offset, compressed, decompressed in parse_container(data):
        frame = data[offset:offset + compressed]
        params = zstandard.get_frame_parameters(frame)
        assert params.content_size == decompressed  # the size is in each frame header
        content = zstandard.ZstdDecompressor().decompress(frame)  # a fresh context per frame
        assert len(content) == decompressed <= 1000
        decoded.extend(decode_items(content))  # frames end at event boundaries
    assert decoded == events


def test_content_is_the_cbor_of_each_event_concatenated(tmp_path):
    events = sample_events(50)
    _, data = write_sink(tmp_path, events)
    frames = parse_container(data)
    assert len(frames) == 1
    offset, compressed, _ = frames[0]
    content = zstandard.ZstdDecompressor().decompress(data[offset:offset + compressed])
    assert content == b"".join(cbor2.dumps(e) for e in events)
    # Text keys, Float.f as text, definite-length maps: {"Step": ...} starts with a 1-entry map.
    assert content.startswith(b"\xa1\x64Path\x67/p/m.py")
    assert cbor2.dumps({"kind": "Float", "f": "2.5", "type_id": 2}) in content


def test_an_event_larger_than_a_frame_is_split_and_still_read(tmp_path):
    big = {"Value": {"variable_id": 0, "value": {"kind": "String", "text": "x" * 5000, "type_id": 3}}}
    events = sample_events(5)[:-1] + [big] + sample_events(5)[4:]
    _, data = write_sink(tmp_path, events, frame_limit=1024)
    frames = parse_container(data)
    assert max(d for _, _, d in frames) <= 1024
    assert [e for _, e in iter_events(tmp_path / "trace.bin")] == events


def test_a_large_write_is_converted_in_pieces(tmp_path, monkeypatch):
    monkeypatch.setattr(binary_writer, "TEXT_PIECE", 100)
    events = sample_events(200)
    texts = [json.dumps(e, separators=(",", ":")) for e in events]
    sink = BinaryEventSink(str(tmp_path), frame_limit=700)
    sink.write_first(texts[0])
    sink.write("".join(",\n" + t for t in texts[1:]))  # one write of ~20 KB
    sink.close()
    assert [e for _, e in iter_events(tmp_path / "trace.bin")] == events


def test_empty_trace_is_a_header_and_an_empty_seek_table(tmp_path):
    sink = BinaryEventSink(str(tmp_path))
    sink.close()
    assert (tmp_path / "trace.bin").read_bytes() == HEADER + seek_table([])
    assert list(iter_events(tmp_path / "trace.bin")) == []


def test_flush_cuts_a_frame_and_abandon_leaves_no_seek_table(tmp_path):
    sink = BinaryEventSink(str(tmp_path))
    sink.write_first('{"Path":"/a.py"}')
    sink.flush()
    assert len(sink.frames) == 1
    sink.write(',\n{"Path":"/b.py"}')
    sink.abandon()
    sink.close()  # after abandon: nothing more is written
    assert not (tmp_path / "trace.bin").read_bytes().endswith(SEEKABLE_FOOTER_MAGIC)


def test_json_to_cbor_handles_other_layouts_and_lone_surrogates():
    converter = JsonToCbor(cbor2)
    # Several events on one line (not rewind's layout): parsed as a whole.
    assert converter.convert('{"Path":"/a"},{"Path":"/b"}') == [cbor2.dumps({"Path": "/a"}),
                                                                   cbor2.dumps({"Path": "/b"})]
    # A raw lone surrogate becomes '?', as JsonEventSink writes it (errors="replace").
    text = ',\n{"VariableName":"caf\udcff"}'
    assert converter.convert(text) == [cbor2.dumps({"VariableName": "caf?"})]
    # Repeated lines come from the cache.
    assert converter.convert(',\n{"Path":"/c"}') == [cbor2.dumps({"Path": "/c"})]
    hits = converter.hits
    assert converter.convert(',\n{"Path":"/c"},\n{"Path":"/c"}') == [cbor2.dumps({"Path": "/c"})] * 2
    assert converter.hits == hits + 2


def test_level_1_reads_back_the_same(tmp_path):
    events = sample_events(2000)
    _, data = write_sink(tmp_path, events, level=1)
    assert len(parse_container(data)) == 1
    assert [e for _, e in iter_events(tmp_path / "trace.bin")] == events


# --- recordings -----------------------------------------------------------------------------------

SINGLE_THREADED = ["values.py", "calls.py", "classes.py", "exceptions.py", "generators.py", "uncaught.py"]


def without_addresses(trace: Path) -> list:
    """The events, with the addresses in reprs (`<... at 0x7f...>`) that differ run to run masked."""
    text = json.dumps([e for _, e in iter_events(trace)])
    return json.loads(re.sub(r" at 0x[0-9a-f]+", " at 0x?", text))


@pytest.mark.parametrize("program", SINGLE_THREADED)
def test_a_binary_recording_has_exactly_the_events_of_the_json_one(record, program, tmp_path):
    as_json = record(CORPUS / program)
    as_binary = record(CORPUS / program, options=["--format", "binary"])  # validated by the fixture
    assert not (as_binary.trace_dir / "trace.json").exists()
    assert as_binary.stdout == as_json.stdout
    assert without_addresses(as_binary.trace_dir) == without_addresses(as_json.trace_dir)
    meta = json.loads((as_binary.trace_dir / "trace_metadata.json").read_text())
    assert meta["recorder"]["format"] == "binary"
    assert (as_binary.trace_dir / "trace_paths.json").read_text() == (
        as_json.trace_dir / "trace_paths.json").read_text()
    # The framing depends only on the events: binary -> JSON -> binary gives the same bytes.
    convert_trace(as_binary.trace_dir, tmp_path / "as-json")
    convert_trace(tmp_path / "as-json", tmp_path / "again")
    assert (tmp_path / "again" / "trace.bin").read_bytes() == (as_binary.trace_dir / "trace.bin").read_bytes()


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_never_writes_into_the_trace(record, tmp_path):
    script = tmp_path / "forks.py"
    script.write_text("import os\n"
                      "def work(n):\n    return [i * i for i in range(n)]\n"
                      "data = work(20000)\n"
                      "pid = os.fork()\n"
                      "if pid == 0:\n    work(5000)\n    os._exit(0)\n"
                      "os.waitpid(pid, 0)\n"
                      "print(len(data))\n", encoding="utf-8")
    rec = record(script, options=["--format", "binary"])  # validated: one well-formed container
    assert rec.stdout.strip().endswith("20000")
    parse_container((rec.trace_dir / "trace.bin").read_bytes())


def test_env_selects_the_binary_format(record):
    rec = record(CORPUS / "calls.py", env={"CODETRACER_FORMAT": "binary"})
    assert (rec.trace_dir / "trace.bin").is_file() and not (rec.trace_dir / "trace.json").exists()


def test_frames_stay_bounded_for_a_larger_recording(record, tmp_path):
    script = tmp_path / "big.py"
    script.write_text("def f(i):\n    s = 'v%d' % i\n    return [s, i, {'k': s}]\n\n"
                      "out = [f(i) for i in range(40000)]\n", encoding="utf-8")
    rec = record(script, options=["--format", "binary"])
    data = (rec.trace_dir / "trace.bin").read_bytes()
    frames = parse_container(data)
    assert len(frames) >= 2
    assert max(d for _, _, d in frames) <= FRAME_CONTENT_LIMIT
    assert sum(d for _, _, d in frames[:-1]) / (len(frames) - 1) > FRAME_CONTENT_LIMIT * 0.9
    events = 0
    for offset, compressed, _ in frames:  # each frame on its own, to whole events
        events += len(decode_items(zstandard.ZstdDecompressor().decompress(data[offset:offset + compressed])))
    assert events == sum(1 for _ in iter_events(rec.trace_dir))


# --- the binary extra ------------------------------------------------------------------------------

HIDE_EXTRA = ("import sys\n"
              "sys.modules[{name!r}] = None  # import {name} now raises ImportError\n"
              "from rewind.cli import main\n"
              "sys.exit(main(sys.argv[1:]))\n")


@pytest.mark.parametrize("name", ["zstandard", "cbor2"])
def test_missing_extra_fails_before_the_target_runs(tmp_path, name):
    marker = tmp_path / "ran"
    script = tmp_path / "prog.py"
    script.write_text(f"open({str(marker)!r}, 'w').close()\n", encoding="utf-8")
    out = tmp_path / "trace"
    proc = subprocess.run([sys.executable, "-c", HIDE_EXTRA.format(name=name), "-o", str(out),
                           "--format", "binary", str(script)],
                          cwd=str(tmp_path), env=subprocess_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 10, proc.stderr  # an environment error
    assert "ERR_MISSING_EXTRA" in proc.stderr
    assert "pip install 'rewind[binary]'" in proc.stderr
    assert name in proc.stderr
    assert not marker.exists(), "the target ran"
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if "staging" in p.name] == []


def test_missing_extra_error_from_the_api():
    code = ("import sys\nsys.modules['zstandard'] = None\n"
            "from rewind import errors\nfrom rewind.writer import check_format\n"
            "check_format('json')\n"
            "try:\n    check_format('binary')\n"
            "except errors.EnvironmentError as err:\n    print(err.code, err.exit_code)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), env=subprocess_env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["ERR_MISSING_EXTRA", "10"], proc.stderr


def test_require_modules_returns_the_modules():
    assert binary_writer.require_modules() == (zstandard, cbor2)
