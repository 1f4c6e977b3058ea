"""benchmarks/footprint.py: the code run on every order, from callgrind's counts and the code's bytes.

The valgrind run itself (minutes) is left to the benchmark; here its parts on hand-made inputs
whose answers are worked out by hand: machine code whose instructions are known, a callgrind
file in the shape ``--dump-instr=yes --compress-pos=no`` writes, and functions placed so that
their lines fall in chosen cache sets.
"""

from __future__ import annotations

import ctypes
import shutil

import pytest

from tickguard.benchmarks import footprint as fp

needs_objdump = pytest.mark.skipif(shutil.which("objdump") is None, reason="binutils' objdump not on PATH")

# push %rbp (1 byte); mov %rsp,%rbp (3); nop (1); ret (1)
_SMALL = bytes([0x55, 0x48, 0x89, 0xE5, 0x90, 0xC3])


@needs_objdump
def test_disassembly_gives_each_instruction_its_offset_and_size():
    rows = fp.disassemble(_SMALL)
    assert [(off, size) for off, size, _ in rows] == [(0, 1), (1, 3), (4, 1), (5, 1)]
    assert rows[0][2].startswith("push") and rows[-1][2].startswith("ret")


def test_counts_per_address_skip_the_inclusive_cost_after_a_call(tmp_path):
    f = tmp_path / "callgrind.out"
    f.write_text("events: Ir Dr Dw I1mr\n"
                 "fn=0x0000000000001000\n0x1000 5 0 0 2\n0x1004 7\ncalls=3 0x2000\n0x1004 900 0 0 50\n"
                 "fn=0x0000000000002000\n0x2000 4 1 1 1\n0x1000 1 0 0 1\n"
                 "totals: 17\n")
    ir, i1 = fp.instruction_counts(str(f))
    assert ir == {0x1000: 6, 0x1004: 7, 0x2000: 4}  # 900 is the call's inclusive cost
    assert i1 == {0x1000: 3, 0x2000: 1}  # a line may stop before the last events (0x1004)


def test_counts_per_address_refuse_a_file_keyed_by_source_line(tmp_path):
    # without --dump-instr=yes the cost lines carry source lines: nothing to join to the code
    f = tmp_path / "callgrind.out"
    f.write_text("events: Ir\nfl=loop.py\nfn=run_chunk_nb\n16 120\n17 4\ntotals: 124\n")
    with pytest.raises(ValueError, match=r"cost lines carry no instruction addresses \(line '16 120'\)"):
        fp.instruction_counts(str(f))


def _code(tmp_path, placed):
    """``placed``: {start address: machine code}; returns (symbols, folder) as dump_code writes."""
    folder = tmp_path / "code"
    folder.mkdir()
    for start, code in placed.items():
        (folder / f"{start:x}.bin").write_bytes(code)
    return {f"f{k}": start for k, start in enumerate(placed)}, str(folder)


@needs_objdump
def test_per_order_lines_are_the_lines_run_at_least_hot_share_times_per_order(tmp_path):
    # 130 one-byte nops from 0x10000: lines 0x400 (bytes 0-63), 0x401 (64-127), 0x402 (128-129)
    base = 0x10000
    symbols, folder = _code(tmp_path, {base: bytes([0x90] * 130)})
    per = 100  # orders: HOT_SHARE * per = 30 executions make a line per-order
    ir = {base + 0: 100, base + 1: 100, base + 64: 29, base + 129: 30}
    i1 = {base + 0: 100, base + 129: 5}
    res = fp.code_footprint(ir, i1, symbols, folder, per)
    # lines 0x400 and 0x402 (0x401 ran 29 times: below 0.3 per order); their hot bytes: 2 and 1
    assert res["lines"] == 2 and res["packed_lines"] == 1
    (f,) = res["functions"]
    assert f["function"] == "f0" and f["lines"] == 2 and f["packed_lines"] == 1
    assert f["instructions"] == pytest.approx(259 / 100) and f["i1_misses"] == pytest.approx(105 / 100)
    assert res["sets"][0x400 % 64] == 1 and res["sets"][0x402 % 64] == 1 and sum(res["sets"]) == 2
    assert res["overfilled"] == {} and res["beyond_ways"] == 0


@needs_objdump
def test_nine_lines_in_one_set_overfill_its_eight_ways(tmp_path):
    # nine functions 4 KB apart: each one's first line falls in set 0 (bits 6-11 of the address)
    starts = [0x40000 + k * 4096 for k in range(9)]
    symbols, folder = _code(tmp_path, {s: _SMALL for s in starts})
    ir = {s: 10 for s in starts}
    res = fp.code_footprint(ir, {}, symbols, folder, per=10, listing=str(tmp_path / "listing"))
    assert res["sets"][0] == 9 and res["overfilled"] == {0: 9} and res["beyond_ways"] == 1
    assert len(res["functions"]) == 9 and all(f["lines"] == 1 for f in res["functions"])
    listed = sorted((tmp_path / "listing").iterdir())
    assert len(listed) == 9 and "push" in listed[0].read_text()


@needs_objdump
def test_a_count_inside_an_instruction_means_other_code_and_is_refused(tmp_path):
    base = 0x20000
    symbols, folder = _code(tmp_path, {base: _SMALL})
    with pytest.raises(ValueError, match=r"f0.*0x20002.*not the code counted"):
        fp.code_footprint({base + 2: 10}, {}, symbols, folder, per=10)  # inside the 3-byte mov
    with pytest.raises(ValueError, match="per must be > 0"):
        fp.code_footprint({}, {}, symbols, folder, per=0)


def test_the_code_is_read_from_this_process_up_to_the_next_symbol(tmp_path):
    buf = ctypes.create_string_buffer(bytes(range(48)), 48)
    base = ctypes.addressof(buf)
    fp.dump_code(str(tmp_path), {"a": base, "b": base + 16})
    assert (tmp_path / f"{base:x}.bin").read_bytes() == bytes(range(16))
    # the last symbol's code runs to at most 64 KB, or as far as the memory after it can be read
    tail = (tmp_path / f"{base + 16:x}.bin").read_bytes()
    assert tail[:32] == bytes(range(16, 48))
