"""`rewind convert`, and `validate` / `summary` reading trace.bin (its container checked too)."""
from __future__ import annotations

import argparse
import json
import struct
import tracemalloc
from pathlib import Path

import pytest

pytest.importorskip("cbor2")
pytest.importorskip("zstandard")

from rewind import errors  # noqa: E402
from rewind.tools import convert  # noqa: E402
from rewind.tools.convert import convert_trace  # noqa: E402
from rewind.tools.summary import summarize  # noqa: E402
from rewind.tools.trace_reader import TraceSyntaxError, iter_events  # noqa: E402
from rewind.tools.validate import validate_trace  # noqa: E402
from rewind.writer.binary_writer import FRAME_CONTENT_LIMIT  # noqa: E402


def run_cli(argv: list[str]) -> int:
    from rewind.cli import main
    return main(argv)


def events_of(trace: Path) -> list:
    return [e for _, e in iter_events(trace)]


def problems(trace: Path) -> list[str]:
    report = validate_trace(trace)
    return [str(p) for p in report.problems]


def frames_of(data: bytes) -> tuple[int, list[tuple[int, int]]]:
    """(seek table offset, entries) read straight from the bytes."""
    count = struct.unpack("<I", data[-9:-5])[0]
    table_at = len(data) - (8 * count + 9) - 8
    entries = [struct.unpack("<II", data[table_at + 8 + 8 * i:table_at + 16 + 8 * i]) for i in range(count)]
    return table_at, entries


@pytest.fixture
def binary_trace(make_trace, tmp_path, events):
    src = make_trace(events, name="src")
    convert_trace(src, tmp_path / "bin")
    return tmp_path / "bin"


# --- conversion -------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["lines", "indent", "single"])
def test_json_to_binary_to_json_keeps_every_event(make_trace, tmp_path, events, layout):
    compact = "[" + ",\n".join(json.dumps(e, separators=(",", ":")) for e in events) + "\n]\n"
    src = make_trace(events, name="src", layout=layout, events_text=compact if layout == "lines" else None)
    result = convert_trace(src, tmp_path / "bin")
    assert result["format"] == "binary" and result["events"] == len(events)
    assert (tmp_path / "bin" / "trace.bin").is_file() and not (tmp_path / "bin" / "trace.json").exists()
    assert events_of(tmp_path / "bin") == events
    assert validate_trace(tmp_path / "bin").valid
    convert_trace(tmp_path / "bin", tmp_path / "back")
    assert events_of(tmp_path / "back") == events
    if layout == "lines":  # rewind's own layout comes back byte for byte
        assert (tmp_path / "back" / "trace.json").read_bytes() == (src / "trace.json").read_bytes()


def test_recorded_trace_round_trips_byte_for_byte(record, tmp_path):
    from rewind_testing import CORPUS
    rec = record(CORPUS / "values.py")
    src = rec.trace_dir
    assert run_cli(["convert", str(src), str(tmp_path / "bin")]) == 0
    assert run_cli(["validate", str(tmp_path / "bin")]) == 0
    assert run_cli(["convert", str(tmp_path / "bin"), str(tmp_path / "back")]) == 0
    for name in ("trace.json", "trace_paths.json", "trace_metadata.json"):
        assert (tmp_path / "back" / name).read_bytes() == (src / name).read_bytes(), name


def test_side_files_are_copied_with_the_format_updated(make_trace, tmp_path, events):
    meta = {"recording_id": "01949fcc-7d92-7e9c-aaaa-bbbbbbbbbbbb", "program": "main.py", "args": ["x"],
            "workdir": "/home/u/p", "recorder": {"name": "rewind", "format": "json"}, "extra": [1, 2]}
    src = make_trace(events, name="src", metadata=meta)
    convert_trace(src, tmp_path / "bin")
    copied = json.loads((tmp_path / "bin" / "trace_metadata.json").read_text())
    assert copied == dict(meta, recorder={"name": "rewind", "format": "binary"})
    assert (tmp_path / "bin" / "trace_paths.json").read_bytes() == (src / "trace_paths.json").read_bytes()
    assert sorted(p.name for p in (tmp_path / "bin").iterdir()) == [
        "trace.bin", "trace_metadata.json", "trace_paths.json"]


def test_missing_paths_file_is_rebuilt_from_the_path_events(make_trace, tmp_path, events):
    src = make_trace(events, name="src")
    (src / "trace_paths.json").unlink()
    convert_trace(src, tmp_path / "bin")
    assert json.loads((tmp_path / "bin" / "trace_paths.json").read_text()) == ["/home/u/p/main.py"]


def test_explicit_target_format(make_trace, tmp_path, events):
    src = make_trace(events, name="src", layout="indent")
    convert_trace(src, tmp_path / "json", to="json")  # re-layout as rewind writes it
    assert events_of(tmp_path / "json") == events
    assert (tmp_path / "json" / "trace.json").read_text().count("\n") == len(events) + 1


def test_an_empty_event_list_converts_both_ways(make_trace, tmp_path):
    src = make_trace([], name="src")
    convert_trace(src, tmp_path / "bin")
    convert_trace(tmp_path / "bin", tmp_path / "back")
    assert json.loads((tmp_path / "back" / "trace.json").read_text()) == []


# --- destination rules ------------------------------------------------------------------------------

def test_refuses_a_non_empty_destination_unless_forced(make_trace, tmp_path, events, capsys):
    src = make_trace(events, name="src")
    dst = make_trace(events[:5], name="dst")
    assert run_cli(["convert", str(src), str(dst)]) == errors.EXIT_USAGE
    assert "ERR_TRACE_DIR_CONFLICT" in capsys.readouterr().err
    assert (dst / "trace.json").is_file()  # untouched
    assert run_cli(["convert", str(src), str(dst), "--force"]) == 0
    assert not (dst / "trace.json").exists() and events_of(dst) == events
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_an_empty_destination_directory_is_used(make_trace, tmp_path, events):
    (tmp_path / "dst").mkdir()
    convert_trace(make_trace(events, name="src"), tmp_path / "dst")
    assert events_of(tmp_path / "dst") == events


def test_force_never_replaces_a_directory_that_is_not_a_trace(make_trace, tmp_path, events):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "notes.txt").write_text("keep me")
    with pytest.raises(errors.UsageError) as info:
        convert_trace(make_trace(events, name="src"), tmp_path / "home", force=True)
    assert info.value.code == "ERR_TRACE_DIR_CONFLICT"
    assert (tmp_path / "home" / "notes.txt").read_text() == "keep me"


def test_refuses_the_source_itself_and_a_file(make_trace, tmp_path, events):
    src = make_trace(events, name="src")
    with pytest.raises(errors.UsageError, match="the source directory"):
        convert_trace(src, src, force=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(errors.UsageError, match="not a directory"):
        convert_trace(src, tmp_path / "file")


def test_source_that_is_not_a_trace(tmp_path, capsys):
    assert run_cli(["convert", str(tmp_path / "missing"), str(tmp_path / "out")]) == errors.EXIT_USAGE
    assert "ERR_TRACE_MISSING" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unreadable_source_leaves_no_destination(make_trace, tmp_path, events):
    src = make_trace(events, name="src", events_text=json.dumps(events)[:-40])
    with pytest.raises(errors.UsageError) as info:
        convert_trace(src, tmp_path / "bin")
    assert info.value.code == "ERR_UNSUPPORTED_FORMAT"
    assert not (tmp_path / "bin").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["src"]


def test_source_without_metadata(make_trace, tmp_path, events):
    src = make_trace(events, name="src")
    (src / "trace_metadata.json").unlink()
    with pytest.raises(errors.TargetError) as info:
        convert_trace(src, tmp_path / "bin")
    assert info.value.code == "ERR_TRACE_INCOMPLETE"


# --- large traces: streaming, frames bounded ----------------------------------------------------------

def test_large_trace_converts_in_bounded_memory_with_bounded_frames(large_trace: Path, tmp_path):
    tracemalloc.start()
    try:
        convert_trace(large_trace, tmp_path / "bin")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = (large_trace / "trace.json").stat().st_size
    assert peak < 16_000_000 < size, peak  # a frame (4 MiB) and a batch, never the trace
    data = (tmp_path / "bin" / "trace.bin").read_bytes()
    _, entries = frames_of(data)
    assert len(entries) >= 3
    assert max(d for _, d in entries) <= FRAME_CONTENT_LIMIT
    report = validate_trace(tmp_path / "bin")
    assert report.valid and report.events == 300_011


def test_summary_reads_binary_like_json(large_trace: Path, tmp_path):
    convert_trace(large_trace, tmp_path / "bin")
    as_json, as_binary = summarize(large_trace), summarize(tmp_path / "bin")
    assert as_binary["format"] == "binary" and as_binary["complete"]
    for key in ("events", "events_by_variant", "calls", "steps", "values", "functions", "hottest_by_calls"):
        if key in as_json:
            assert as_binary[key] == as_json[key], key


# --- validate: the binary container --------------------------------------------------------------------

def test_validate_cli_on_binary(binary_trace, capsys):
    assert run_cli(["validate", str(binary_trace)]) == 0
    assert capsys.readouterr().out.startswith("OK: 23 events")


def test_wrong_header(binary_trace):
    path = binary_trace / "trace.bin"
    data = bytearray(path.read_bytes())
    data[5] = 2
    path.write_bytes(bytes(data))
    assert problems(binary_trace) == [
        "event #0: unsupported binary trace version: header C0 DE 72 AC E2 02 00 00, expected C0 DE 72 AC E2 01 00 00 "
        "(version 1) at byte offset 5 (validation stopped here)"]
    path.write_bytes(b"{json?" + bytes(data[6:]))
    assert "not a CodeTracer binary trace" in problems(binary_trace)[0]


def test_missing_seek_table_is_reported_and_events_still_read(binary_trace):
    path = binary_trace / "trace.bin"
    data = path.read_bytes()
    path.write_bytes(data[:-(8 * len(frames_of(data)[1]) + 17)])  # cut the table off
    report = validate_trace(binary_trace)
    assert report.events == 23
    assert [str(p) for p in report.problems] == [
        f"trace.bin: no seek table: the file must end with the seekable-format magic 0x8F92EAB1, found "
        f"0x{int.from_bytes(data[-(8 * 1 + 17) - 4:-(8 * 1 + 17)], 'little'):08X} at byte offset "
        f"{len(data) - 8 - 17 - 4} (the trace was not finished)"]


def test_seek_table_entry_that_does_not_match_its_frame(binary_trace):
    path = binary_trace / "trace.bin"
    data = bytearray(path.read_bytes())
    table_at, entries = frames_of(bytes(data))
    compressed, decompressed = entries[0]
    struct.pack_into("<II", data, table_at + 8, compressed, decompressed + 1)
    path.write_bytes(bytes(data))
    assert problems(binary_trace) == [
        f"trace.bin: seek table entry #0 (byte offset {table_at + 8}) gives {decompressed + 1} decompressed "
        f"bytes, the frame at byte offset 8 holds {decompressed}"]
    struct.pack_into("<II", data, table_at + 8, compressed + 3, decompressed)
    path.write_bytes(bytes(data))
    found = problems(binary_trace)
    assert found[0] == (f"trace.bin: seek table: the compressed sizes add up to {compressed + 3} bytes, but the "
                        f"frames span {compressed} (byte offsets 8 to {table_at})")
    assert found[1] == (f"trace.bin: seek table entry #0 (byte offset {table_at + 8}) gives {compressed + 3} "
                        f"compressed bytes, the frame at byte offset 8 has {compressed}")


def test_seek_table_frame_count_and_magic(binary_trace):
    path = binary_trace / "trace.bin"
    good = path.read_bytes()
    table_at, entries = frames_of(good)
    data = bytearray(good)
    data[table_at] ^= 0xFF  # skippable magic
    path.write_bytes(bytes(data))
    assert problems(binary_trace) == [
        f"trace.bin: seek table: expected the skippable-frame magic 0x184D2A5E at byte offset {table_at} "
        f"(where 1 entries put it), found 0x184D2AA1"]
    data = bytearray(good)
    struct.pack_into("<I", data, len(data) - 9, 1000)  # N too large for the file
    path.write_bytes(bytes(data))
    assert problems(binary_trace) == [
        f"trace.bin: the seek table footer at byte offset {len(data) - 9} lists 1000 frame(s): 8017 bytes of "
        "table, more than the file holds"]
    data = bytearray(good)
    data[-5] = 0x80  # checksum flag: a different table layout than this file has
    path.write_bytes(bytes(data))
    found = problems(binary_trace)
    assert found[0] == (f"trace.bin: seek table descriptor at byte offset {len(data) - 5} is 0x80, "
                        "expected 0x00")


def test_truncated_and_corrupt_frames(binary_trace):
    path = binary_trace / "trace.bin"
    good = path.read_bytes()
    table_at, entries = frames_of(good)
    path.write_bytes(good[:table_at - 10])
    found = problems(binary_trace)
    assert found[0].startswith("trace.bin: no seek table")
    assert found[1] == ("event #0: zstd frame #0 at byte offset 8 is truncated (the frame area ends at byte offset "
                        f"{table_at - 10}) at byte offset 8 (validation stopped here)")
    for where in (table_at - 2, table_at - 6):  # the frame's checksum, its compressed data
        data = bytearray(good)
        data[where] ^= 0xFF
        path.write_bytes(bytes(data))
        found = problems(binary_trace)
        assert len(found) == 1 and found[0].startswith("event #0: zstd frame #0 at byte offset 8 is corrupt: "), found


def test_malformed_cbor_inside_a_valid_frame(tmp_path):
    import zstandard

    from rewind.writer.binary_writer import HEADER, seek_table
    good = b"\xa1\x64Path\x62/a"
    content = good + b"\xa1\x64Step\x1c"  # 0x1c: a reserved additional-info value
    frame = zstandard.ZstdCompressor().compress(content)
    (tmp_path / "trace.bin").write_bytes(HEADER + frame + seek_table([(len(frame), len(content))]))
    with pytest.raises(TraceSyntaxError) as info:
        events_of(tmp_path)
    assert info.value.event_index == 1 and info.value.byte_offset == 8
    assert info.value.message.startswith(
        f"malformed CBOR event at decompressed content offset {len(good)} (zstd frame #0 starts at byte offset 8)")


def test_events_may_span_frames_and_indefinite_lengths_are_reported(tmp_path):
    import cbor2
    import zstandard

    from rewind.writer.binary_writer import HEADER, seek_table
    content = cbor2.dumps({"Path": "/a"}) + b"\xbf\x64Path\x62/b\xff"  # the second map: indefinite
    pieces = [content[:5], content[5:11], content[11:]]
    frames = [zstandard.ZstdCompressor().compress(p) for p in pieces]
    table = seek_table([(len(f), len(p)) for f, p in zip(frames, pieces)])
    (tmp_path / "trace.bin").write_bytes(HEADER + b"".join(frames) + table)
    found = []
    events = [e for _, e in iter_events(tmp_path, on_problem=lambda i, m: found.append((i, m)))]
    assert events == [{"Path": "/a"}, {"Path": "/b"}]
    assert found == [(None, "trace.bin: event #1 uses indefinite-length CBOR (decompressed content offset 9); "
                            "trace-format.md section 6 asks for definite lengths")]
    # Cut in the middle of an event: the data ends inside it.
    (tmp_path / "trace.bin").write_bytes(HEADER + b"".join(frames[:2])
                                         + seek_table([(len(f), len(p)) for f, p in zip(frames[:2], pieces)]))
    with pytest.raises(TraceSyntaxError, match="the event data ends inside an event: 2 byte"):
        events_of(tmp_path)


def test_missing_extra_when_reading(tmp_path):
    import subprocess
    import sys

    from rewind_testing import subprocess_env
    (tmp_path / "trace.bin").write_bytes(b"\xc0\xde\x72\xac\xe2\x01\x00\x00")
    code = ("import sys\nsys.modules['cbor2'] = None\nfrom rewind.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    for argv, status in ((["validate", str(tmp_path)], 2), (["convert", str(tmp_path), str(tmp_path / "o")], 10)):
        proc = subprocess.run([sys.executable, "-c", code, *argv], env=subprocess_env(), capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == status, proc.stderr
        assert "pip install 'rewind[binary]'" in proc.stderr


def test_register_adds_the_subcommand():
    parser = argparse.ArgumentParser(prog="rewind")
    convert.register(parser.add_subparsers())
    args = parser.parse_args(["convert", "a", "b", "--force", "--to", "json", "--level", "1"])
    assert (args.src, args.dst, args.force, args.to, args.level, args.func) == ("a", "b", True, "json", 1,
                                                                              convert.run)
