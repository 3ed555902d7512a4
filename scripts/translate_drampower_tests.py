#!/usr/bin/env python
"""Translate DRAMPower v6.2.0's core unit tests (DDR5, LPDDR4, LPDDR5) into eden's pytest module.

Reads ``tests/tests_drampower/core/{DDR5,LPDDR4,LPDDR5}/*.cpp`` and the test memspecs
``tests/tests_drampower/resources/{ddr5,lpddr4,lpddr5}.json`` of a tukl-msd/DRAMPower checkout at tag
v6.2.0 (commit d8b980ab9e725480787b130798ad7ef675517b34) and writes

* ``tests/unit/test_drampower_v620_core.py``: one pytest function per ``TEST_F``, the command
  patterns, the memspec member assignments of ``SetUp`` and every ``ASSERT_EQ``/``EXPECT_EQ`` of
  the body (loops and conditions kept), run on eden's model through
  ``tests/unit/drampower_harness.py``;
* ``tests/data/drampower/{ddr5,lpddr4,lpddr5}.json``: the test memspecs, verbatim.

The translation is mechanical (a small tokenizer and statement parser for the C++ subset the tests
use); a construct it does not know stops it with the file and statement, so no assertion is
dropped silently. Values and command sequences are DRAMPower's (BSD-3-Clause, (c) Fraunhofer IESE /
TU Kaiserslautern); the generated module says where each test comes from.

Usage:
    python scripts/translate_drampower_tests.py DRAMPOWER_CHECKOUT [--check]
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "unit" / "test_drampower_v620_core.py"
DATA = REPO / "tests" / "data" / "drampower"
STANDARDS = ("DDR5", "LPDDR4", "LPDDR5")
COMMIT = "d8b980ab9e725480787b130798ad7ef675517b34"

TOKEN = re.compile(r"\d+\.\d*(?:[eE][+-]?\d+)?|\d+(?:[eE][+-]?\d+)?|[A-Za-z_]\w*|->|::|<=|>=|==|!=|&&|\|\||\+\+|--"
                   r"|\+=|\S")


class Unsupported(Exception):
    pass


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


def matching(toks: list[str], i: int) -> int:
    """Index of the bracket closing the one at ``toks[i]``."""
    pairs = {"(": ")", "{": "}", "[": "]"}
    depth, want = 0, pairs[toks[i]]
    opener = toks[i]
    for j in range(i, len(toks)):
        if toks[j] == opener:
            depth += 1
        elif toks[j] == want:
            depth -= 1
            if depth == 0:
                return j
    raise Unsupported(f"unbalanced {opener!r}")


def statement_end(toks: list[str], i: int) -> int:
    """Index of the ``;`` ending the expression statement starting at ``i`` (brackets skipped)."""
    j = i
    while j < len(toks):
        if toks[j] in "({[":
            j = matching(toks, j) + 1
            continue
        if toks[j] == ";":
            return j
        j += 1
    raise Unsupported("statement without ';'")


def split_args(toks: list[str]) -> list[list[str]]:
    out, cur, depth = [], [], 0
    for t in toks:
        if t in "({[":
            depth += 1
        elif t in ")}]":
            depth -= 1
        if t == "," and depth == 0:
            out.append(cur)
            cur = []
        else:
            cur.append(t)
    out.append(cur)
    return out


# ----------------------------------------------------------------------------- expressions
MEMSPEC_NAMES = ("memSpec", "spec")


def expr(toks: list[str]) -> str:
    """A C++ expression of the tests as Python."""
    out: list[str] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        if t in MEMSPEC_NAMES and i + 1 < len(toks) and toks[i + 1] in ("->", "."):
            path, i = [], i + 1
            while i < len(toks) and toks[i] in ("->", ".", "["):
                if toks[i] == "[":
                    path[-1] += f"[{toks[i + 1]}]"
                    i += 3
                else:
                    path.append(toks[i + 1])
                    i += 2
            out.append(f"M[{'.'.join(path)!r}]")
            continue
        if t == "std" and toks[i + 1] == "::":
            fn = toks[i + 2]
            out.append({"round": "cround", "abs": "abs"}.get(fn, fn))
            i += 3
            continue
        if t == "(" and toks[i + 1:i + 3] in (["int", ")"], ["uint64_t", ")"], ["int64_t", ")"]):
            j = i + 3
            if toks[j] == "(":
                end = matching(toks, j)
            else:
                end = j
                while end + 1 < len(toks) and toks[end + 1] in (".", "[", "("):
                    end = matching(toks, end + 1) if toks[end + 1] in "[(" else end + 2
            out.append(f"ctrunc({expr(toks[j:end + 1])})")
            i = end + 1
            continue
        if t == "MemSpecLPDDR5" and toks[i + 1] == "::":
            out.append(repr(toks[i + 2]))
            i += 3
            continue
        if t == "testPattern" and toks[i + 1:i + 7] == [".", "back", "(", ")", ".", "timestamp"]:
            out.append("PATTERN[-1][0]")
            i += 7
            continue
        if t == "." and toks[i + 1:i + 4] == ["size", "(", ")"]:
            # X.size() -> len(X): X is the postfix expression just emitted
            j = len(out) - 1
            while j > 0 and (out[j - 1] in (".", "[", "]") or out[j] in ("[", "]", ".")
                             or re.fullmatch(r"\w+", out[j - 1]) and out[j] in ("]",)):
                j -= 1
            # walk back over a.b[c].d
            k = len(out)
            while k > 0 and (re.fullmatch(r"[\w\]\[.]+|M\[.*\]", out[k - 1]) or out[k - 1] in (".", "[", "]")):
                k -= 1
            out[k:] = [f"len({''.join(out[k:])})"]
            i += 4
            continue
        mapped = {"&&": " and ", "||": " or ", "!": " not ", "true": "True", "false": "False", "->": "."}.get(t, t)
        if re.fullmatch(r"\d+(?:[eE][+-]?\d+)?|\d+\.\d*(?:[eE][+-]?\d+)?", t) and i + 1 < len(toks) \
                and toks[i + 1] in ("u", "ul", "ULL", "f"):
            i += 1
        out.append(mapped)
        i += 1
    text = ""
    for piece in out:
        text += piece if not (text and re.fullmatch(r"\w", text[-1]) and re.fullmatch(r"\w.*", piece)) \
            else " " + piece
    return text


def commands(toks: list[str]) -> list[str]:
    """``{t, CmdType::X, {bank, bg, rank, ...}, ...}`` entries of a brace list as Python tuples."""
    text = " ".join(toks)
    out = []
    for m in re.finditer(r"\{\s*(\d+)\s*,\s*CmdType\s*::\s*(\w+)\s*(?:,\s*(?:TargetCoordinate\s*)?\{([^{}]*)\})?",
                         text):
        coord = [int(x) for x in m.group(3).replace(" ", "").split(",")[:3]] if m.group(3) else []
        bank, bg, rank = (coord + [0, 0, 0])[:3]
        out.append(f"({m.group(1)}, {m.group(2)!r}, {bank}, {bg}, {rank})")
    return out


# ----------------------------------------------------------------------------- statements
def block(toks: list[str], indent: str, where: str) -> list[str]:
    lines: list[str] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        if t == ";":
            i += 1
            continue
        if t == "{":
            end = matching(toks, i)
            lines += block(toks[i + 1:end], indent, where)
            i = end + 1
            continue
        if t in ("for", "if"):
            close = matching(toks, i + 1)
            head = toks[i + 2:close]
            body_start = close + 1
            if toks[body_start] == "{":
                body_end = matching(toks, body_start)
                body = toks[body_start + 1:body_end]
                nxt = body_end + 1
            else:
                body_end = statement_end(toks, body_start)
                body = toks[body_start:body_end + 1]
                nxt = body_end + 1
            if t == "for":
                if ":" in head:  # for (const auto& command : testPattern) ddr->doCoreCommand(command);
                    lines.append(f"{indent}core.run(PATTERN)")
                    if head[-1] != "testPattern":
                        raise Unsupported(f"{where}: range-for over {head[-1]}")
                else:
                    parts = split_args([x if x != ";" else "," for x in head])
                    init, cond, step = parts
                    var = init[init.index("=") - 1]
                    if cond[0] != var or cond[1] != "<" or step not in ([var, "++"], ["++", var]):
                        raise Unsupported(f"{where}: for ({' '.join(head)})")
                    start = expr(init[init.index("=") + 1:])
                    lines.append(f"{indent}for {var} in range({start}, {expr(cond[2:])}):")
                    lines += block(body, indent + "    ", where) or [f"{indent}    pass"]
                i = nxt
                continue
            lines.append(f"{indent}if {expr(head)}:")
            lines += block(body, indent + "    ", where) or [f"{indent}    pass"]
            i = nxt
            while i < len(toks) and toks[i] == "else":
                if toks[i + 1] == "if":
                    close = matching(toks, i + 2)
                    head = toks[i + 3:close]
                    bs = close + 1
                    prefix = f"{indent}elif {expr(head)}:"
                else:
                    bs = i + 1
                    prefix = f"{indent}else:"
                if toks[bs] == "{":
                    be = matching(toks, bs)
                    body = toks[bs + 1:be]
                else:
                    be = statement_end(toks, bs)
                    body = toks[bs:be + 1]
                lines.append(prefix)
                lines += block(body, indent + "    ", where) or [f"{indent}    pass"]
                i = be + 1
            continue
        end = statement_end(toks, i)
        lines += simple(toks[i:end], indent, where)
        i = end + 1
    return lines


TYPES = ("auto", "SimulationStats", "const", "Rank", "&", "DRAMPower", "::", "energy_t", "energy_info_t")


def simple(st: list[str], indent: str, where: str) -> list[str]:
    text = " ".join(st)
    if st[0] in ("ASSERT_EQ", "EXPECT_EQ", "ASSERT_DOUBLE_EQ", "EXPECT_DOUBLE_EQ"):
        a, b = split_args(st[2:-1])
        return [f"{indent}check({expr(a)}, {expr(b)}, {text[:90]!r})"]
    if re.search(r"iterate_to_timestamp\s*=\s*\[", text):
        return []  # the tests' helper lambda: Core.iterate_to / iterate_window
    if re.fullmatch(r"auto command = testPattern \. begin \( \)", text) or text == "SimulationStats window":
        return []
    m = re.fullmatch(r"(?:SimulationStats )?window = iterate_to_timestamp \( command , (.+) \)", text)
    if m:
        return [f"{indent}window = core.iterate_window({expr(tokens(m.group(1)))})"]
    m = re.fullmatch(r"iterate_to_timestamp \( command , testPattern , (.+) \)", text)
    if m:
        return [f"{indent}core.iterate_to({expr(tokens(m.group(1)))})"]
    if st[0] == "runCommands":
        return [f"{indent}core.run([{', '.join(commands(st))}])"]
    # declarations: strip the type
    j = 0
    while j < len(st) and st[j] in TYPES:
        j += 1
    st2 = st[j:]
    if len(st2) > 2 and st2[1] == "=":
        name, rhs = st2[0], st2[2:]
        r = " ".join(rhs)
        if r in ("ddr -> getStats ( )",):
            return [f"{indent}{name} = core.stats()"]
        m = re.fullmatch(r"ddr -> getWindowStats \( (.+) \)", r)
        if m:
            return [f"{indent}{name} = core.window({expr(tokens(m.group(1)))})"]
        m = re.fullmatch(r"ddr -> calcCoreEnergy \( (.+) \)", r)
        if m:
            return [f"{indent}{name} = core.energy({expr(tokens(m.group(1)))})"]
        if r == "energy . aggregated_bank_energy ( )":
            return [f"{indent}{name} = energy.aggregated_bank_energy()"]
        m = re.fullmatch(r"internal :: \w+ \. getRanks \( ddr -> getCore \( \) \) \. at \( (\d+) \)", r)
        if m:
            return [f"{indent}{name} = core.rank({m.group(1)})"]
    raise Unsupported(f"{where}: statement {text!r}")


# ----------------------------------------------------------------------------- files
def translate(path: Path, std: str) -> tuple[str, int]:
    src = strip_comments(path.read_text())
    where = path.name
    pat = re.search(r"std::vector<Command>\s+testPattern\s*=\s*(\{.*?\n\s*\});", src, flags=re.S)
    pattern = commands(tokens(pat.group(1))) if pat else []
    json = re.search(r'/\s*"(\w+\.json)"', src)
    if not json:
        raise Unsupported(f"{where}: no test memspec")
    assigns = []
    for setup in re.finditer(r"void\s+(?:SetUp|initSpec)\s*\(\s*\)\s*(?:override\s*)?\{(.*?)\n\s{4}\}", src,
                             flags=re.S):
        toks = tokens(setup.group(1))
        i = 0
        while i < len(toks):
            end = statement_end(toks, i)
            st = toks[i:end]
            i = end + 1
            if st and st[0] in MEMSPEC_NAMES and "=" in st and st[1] in ("->", "."):
                eq = st.index("=")
                lhs = expr(st[:eq])
                assigns.append(f"    {lhs} = {expr(st[eq + 1:])}")
    name_prefix = path.stem
    out = [f"# {where}", f"PATTERN_{name_prefix.upper()} = [{', '.join(pattern)}]", "",
           f"def _setup_{name_prefix}():",
           f"    M = CppMemSpec({std!r}, {json.group(1)!r})",
           *assigns,
           "    CURRENT_BANKS[0] = M['numberOfBanks']",
           f"    return M, Core(M, PATTERN_{name_prefix.upper()})", ""]
    count = 0
    for m in re.finditer(r"TEST_F\s*\(\s*(\w+)\s*,\s*(\w+)\s*\)\s*\{", src):
        start = m.end() - 1
        toks_all = tokens(src[start:])
        body = toks_all[1:matching(toks_all, 0)]
        lines = block(body, "    ", f"{where}::{m.group(2)}")
        out += ["", f"def test_{name_prefix}__{m.group(2)}():",
                f"    \"\"\"DRAMPower v6.2.0 tests/tests_drampower/core/{std}/{where}, TEST_F({m.group(1)}, "
                f"{m.group(2)}).\"\"\"",
                f"    M, core = _setup_{name_prefix}()",
                f"    PATTERN = PATTERN_{name_prefix.upper()}  # noqa: N806",
                "    numberOfDevices = M['numberOfDevices']  # noqa: N806,F841",
                "    checks = Checks()",
                "    check = checks.check",
                *lines,
                "    checks.done()"]
        count += 1
    return "\n".join(out) + "\n", count


HEADER = f'''"""DRAMPower v6.2.0's own core unit tests for DDR5, LPDDR4 and LPDDR5, run on eden's model.

GENERATED by scripts/translate_drampower_tests.py from tukl-msd/DRAMPower @ {COMMIT}
(tag v6.2.0), tests/tests_drampower/core/{{DDR5,LPDDR4,LPDDR5}}/*.cpp; do not edit by hand.
Command patterns, memspec assignments and expected values are DRAMPower's (BSD-3-Clause). Each
``check`` is one ASSERT_EQ/EXPECT_EQ of the C++ test: exact equality of counts, cycles and of the
energies as the C++ test rounds them (``std::round`` -> ``cround``, ``(int)`` -> ``ctrunc``).
"""
# ruff: noqa: E501,E701,E702,N806,F841,E712,SIM

from __future__ import annotations

from drampower_harness import Core, CppMemSpec, cround, ctrunc  # noqa: F401 (tests/unit/, on sys.path)


def bankIndex(bank, rank):  # noqa: N802 (the C++ tests' helper)
    return rank * CURRENT_BANKS[0] + bank


CURRENT_BANKS = [16]


class Checks:
    """Collects every mismatch of a test, so a failure lists all of them."""

    def __init__(self):
        self.failed, self.count = [], 0

    def check(self, got, want, what):
        self.count += 1
        if got != want:
            self.failed.append(f"{{what}}: eden {{got!r}} != DRAMPower {{want!r}}")

    def done(self):
        assert self.count > 0, "a translated test without assertions"
        assert not self.failed, "\\n".join(self.failed)

'''


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkout", type=Path, help="a tukl-msd/DRAMPower checkout at v6.2.0")
    ap.add_argument("--check", action="store_true", help="fail if the generated files would change")
    args = ap.parse_args(argv)
    root = args.checkout / "tests" / "tests_drampower"
    parts, total, files = [HEADER], 0, 0
    for std in STANDARDS:
        for path in sorted((root / "core" / std).glob("*.cpp"), key=lambda p: (len(p.stem), p.stem)):
            text, n = translate(path, std)
            parts.append(text)
            total += n
            files += 1
    new = "\n".join(parts)
    if args.check:
        if OUT.read_text() != new:
            print(f"{OUT} is out of date", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(new)
    DATA.mkdir(parents=True, exist_ok=True)
    for name in ("ddr5.json", "lpddr4.json", "lpddr5.json"):
        shutil.copyfile(root / "resources" / name, DATA / name)
    print(f"wrote {OUT.relative_to(REPO)}: {total} tests from {files} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
