"""Hygiene of the generated C: sanitizers, valgrind, and names that try to inject code.

* The demo digits CNN, the tiny ViT and every bench/layer_suite.py case, built with :data:`SAN_CFLAGS`
  (AddressSanitizer + UndefinedBehaviorSanitizer, every finding fatal, ``-Werror``), exit 0, print nothing but
  the driver's sample count on stderr, and give hwsim's bits; where this CPU has AVX2 and FMA, the x86 template
  family too (the demos and the conv/dense/matmul cases, ``-mavx2 -mfma`` added).
* The digits CNN built as usual (``-O2``; generic, and x86 where it runs) runs under ``valgrind --leak-check=full``
  without an error or a leak.
* Node, tensor, constant and model names such as ``x); system("rm -rf /"); //``, ``*/ #include <evil.h> /*``,
  a backslash-newline or ``??/``-newline that would splice ``*`` and ``/`` into a comment end, ``名前``,
  ``__asm__``, ``int``, ``9start``, and names that sanitize to the same identifier: the project compiles with
  ``-Werror``, runs bit-exact, every identifier made from a name is a valid non-keyword C identifier, distinct
  constants get distinct identifiers, and outside comments and string literals (lexed as the compiler does:
  trigraphs, line splices, then comments) no name, nor anything of one, appears.
"""

import functools
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from bench_modules import bench_module
from conftest import require_tool

from intonly.codegen.c import emit
from intonly.codegen.c.c_names import C_KEYWORDS, IDENTIFIER, c_comment, c_identifier
from intonly.codegen.c.emit import emit_c
from intonly.codegen.c.toolchain import HOST_CFLAGS, build_host, sample_dtype
from intonly.hwsim import simulate
from intonly.workloads import load_workload
from intonly.quantize.ir import IntModel, Node, TensorInfo
from intonly.quantize.lower import quantize

layer_suite = bench_module("layer_suite")

SAN_CFLAGS = ("-std=c99 -O1 -g -Wall -Wextra -Werror -fsanitize=address,undefined -fno-sanitize-recover=all "
              "-fno-omit-frame-pointer")
DEMO_SAMPLES = 4
X86_FLAGS = "-mavx2 -mfma"


def x86_runs_here() -> bool:
    """templates/x86 exists and this CPU executes its AVX2/FMA kernels."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return False
    return (emit.TEMPLATES / "x86").is_dir() and {"avx2", "fma"} <= set(flags.split(":", 1)[1].split())


FAMILIES = [pytest.param("generic"), pytest.param("x86", marks=pytest.mark.skipif(
    not x86_runs_here(), reason="no templates/x86 or no AVX2+FMA on this CPU"))]


# ---- helpers --------------------------------------------------------------------------------------------------

def build(model: IntModel, out_dir: Path, cflags: str, family: str = "generic"):
    """Emit and build ``model`` for ``family`` (x86: with :data:`X86_FLAGS` added to ``cflags``)."""
    cflags = f"{cflags} {X86_FLAGS}" if family == "x86" else cflags
    project = emit_c(model, out_dir, family=family, cflags=cflags)
    return project, build_host(out_dir, cflags)


def run_driver(model: IntModel, project, exe: Path, ints: list[np.ndarray], prefix=()) -> tuple:
    """Run ``exe`` (optionally under ``prefix``, e.g. valgrind) on the integer inputs; returns (process, outputs)
    with outputs None when it failed."""
    in_file, out_file = exe.parent / "hyg_in.bin", exe.parent / "hyg_out.bin"
    records = np.empty(len(ints[0]), dtype=sample_dtype([(a.dtype, a.shape[1:]) for a in ints]))
    for i, arr in enumerate(ints):
        records[f"p{i}"] = arr
    records.tofile(in_file)
    out_file.unlink(missing_ok=True)
    proc = subprocess.run([*prefix, str(exe), str(in_file), str(out_file)], capture_output=True, text=True,
                          errors="replace", timeout=600, check=False)
    if proc.returncode != 0 or not out_file.is_file():
        return proc, None
    ports = [(model.tensors[t].dtype, model.tensors[t].shape) for t in project.output_tensors]
    result = np.fromfile(out_file, dtype=sample_dtype(ports))
    return proc, [result[f"p{i}"] for i in range(len(ports))]


def assert_clean_and_exact(model: IntModel, ints: list[np.ndarray], out_dir: Path, family: str = "generic"):
    project, exe = build(model, out_dir, SAN_CFLAGS, family)
    proc, outs = run_driver(model, project, exe, ints)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stderr == f"{len(ints[0])} samples\n", proc.stderr[-4000:]  # no sanitizer report
    expected = simulate(model, ints, quantized=True).int_outputs
    for got, want in zip(outs, expected):
        np.testing.assert_array_equal(got, want)


@functools.cache
def quantized_demo(spec: str) -> tuple[IntModel, list[np.ndarray]]:
    """The demo quantized as ``intonly run`` does, and the integer inputs of its first test samples."""
    work = load_workload(spec)
    model = quantize(work.model, work.calib, work.config, name=work.name)
    return model, simulate(model, [a[:DEMO_SAMPLES] for a in work.x]).int_inputs


@pytest.fixture(scope="module", params=["digits", "vit"])
def demo(request):
    return quantized_demo(request.param)


@pytest.fixture(scope="module")
def digits_model():
    return quantized_demo("digits")


# ---- sanitizers and valgrind ----------------------------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
def test_demo_under_asan_ubsan(demo, family, tmp_path, gcc):
    model, ints = demo
    assert_clean_and_exact(model, ints, tmp_path, family)


@pytest.mark.parametrize("name", list(layer_suite.CASES))
def test_layer_suite_case_under_asan_ubsan(name, tmp_path, gcc):
    (case,) = layer_suite.suite([name], samples=1)
    assert_clean_and_exact(case.int_model, case.x, tmp_path)


# the cases whose kernels the x86 family specialises (conv2d, dense, matmul)
SIMD_CASES = [n for n in layer_suite.CASES if n.startswith(("conv3x3_", "dw3x3_", "pw1x1_", "dense_", "matmul_"))]


@pytest.mark.parametrize("name", SIMD_CASES)
@pytest.mark.skipif(not x86_runs_here(), reason="no templates/x86 or no AVX2+FMA on this CPU")
def test_layer_suite_case_x86_family_under_asan_ubsan(name, tmp_path, gcc):
    (case,) = layer_suite.suite([name], samples=1)
    assert_clean_and_exact(case.int_model, case.x, tmp_path, "x86")


@pytest.mark.parametrize("family", FAMILIES)
def test_digits_under_valgrind_memcheck(digits_model, family, tmp_path, gcc):
    valgrind = require_tool("valgrind", "apt-get install valgrind")
    model, ints = digits_model
    project, exe = build(model, tmp_path, HOST_CFLAGS, family)
    proc, outs = run_driver(model, project, exe, ints,
                            prefix=(valgrind, "--error-exitcode=99", "--leak-check=full", "--track-origins=yes",
                                    "--errors-for-leak-kinds=all"))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "ERROR SUMMARY: 0 errors from 0 contexts" in proc.stderr, proc.stderr[-4000:]
    np.testing.assert_array_equal(outs[0], simulate(model, ints, quantized=True).int_outputs[0])


# ---- a C lexer, as far as comments, strings and identifiers go -----------------------------------------------

TRIGRAPHS = {"=": "#", "(": "[", "/": "\\", ")": "]", "'": "^", "<": "{", "!": "|", ">": "}", "-": "~"}
CODE_CHARS = re.compile(r"[A-Za-z0-9_ \n!%&()*+,\-./:;<=>?\[\]^{|}~#]*")
TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\.?[0-9](?:[eEpP][+-]|[A-Za-z0-9_.])*|\S")


def c_lex(source: str, trigraphs: bool = True) -> tuple[str, list[str], list[str]]:
    """Translation phases 1-3 as far as they matter here: trigraph replacement (``-std=c99`` has them), line
    splicing, then comments (each becomes one space) and string/character literals (a space). Returns (the code
    left, comment bodies, literal bodies); raises AssertionError on an unterminated comment or literal."""
    if trigraphs:
        source = re.sub(r"\?\?([=(/)'<!>-])", lambda m: TRIGRAPHS[m.group(1)], source)
    source = source.replace("\\\n", "")
    code, comments, literals = [], [], []
    i, n = 0, len(source)
    while i < n:
        if source.startswith("/*", i):
            end = source.find("*/", i + 2)
            assert end >= 0, f"unterminated comment at {source[i:i + 80]!r}"
            comments.append(source[i + 2:end])
            code.append(" ")
            i = end + 2
        elif source.startswith("//", i):
            end = source.find("\n", i)
            end = n if end < 0 else end
            comments.append(source[i + 2:end])
            i = end
        elif source[i] in "\"'":
            quote, j = source[i], i + 1
            while j < n and source[j] != quote:
                assert source[j] != "\n", f"unterminated literal at {source[i:i + 80]!r}"
                j += 2 if source[j] == "\\" else 1
            assert j < n, f"unterminated literal at {source[i:i + 80]!r}"
            literals.append(source[i + 1:j])
            code.append(" ")
            i = j + 1
        else:
            code.append(source[i])
            i += 1
    return "".join(code), comments, literals


# ---- hostile names --------------------------------------------------------------------------------------------

HOSTILE = [
    'x); system("rm -rf /"); //',
    "*/ #include <evil.h> /*",
    "a\nb",
    "名前",
    "__asm__",
    "int",
    "9start",
    "w.0",                                   # w.0, w-0 and w 0 all sanitize to w_0
    "w-0",
    "w 0",
    "*\\\n/ int injected_splice; /*",        # a backslash-newline joins * and / into a comment end
    "*??/\n/ int injected_trigraph; /*",     # so does the trigraph of a backslash under -std=c99
    "/*/",
    '" injected_quote "',
    "'",
    "\\",
    "a??/",
    "",
    "tab\tcr\r\x01\x7f",
    "\u2028 line separator",
    "ARENA",
    "input0",
    "main",
    "memcpy",
    "k0_w_0",
    "intonly_model_run",
    "%s%n",
    "??=define injected_macro 1",
]
# names that must not survive as code: every token of the payloads above
PAYLOAD_TOKENS = {"system", "rm", "rf", "evil", "injected_splice", "injected_trigraph", "injected_quote",
                  "injected_macro", "__asm__", "9start", "名前"}


def hostile_names(count: int, extra: list[str] = ()) -> list[str]:
    """``count`` distinct names: ``extra``, then :data:`HOSTILE`, then the same again with a suffix."""
    base = list(dict.fromkeys([*extra, *HOSTILE]))
    names = [base[i % len(base)] + (f" [{i // len(base)}]*/" if i >= len(base) else "") for i in range(count)]
    assert len(set(names)) == count
    return names


def rename(model: IntModel) -> IntModel:
    """``model`` with every node, tensor, constant and the model itself given a hostile name (hwsim and the IR
    take any string)."""
    t_names = dict(zip(model.tensors, hostile_names(len(model.tensors))))
    n_names = hostile_names(len(model.nodes), ["node " + c for c in ("*/", "/*", "\\")])
    # constants: the names that sanitize alike come first, so that three distinct constants share an identifier
    c_names = dict(zip(model.constants, hostile_names(len(model.constants), ["w.0", "w-0", "w 0"])))
    tensors = {}
    for name, info in model.tensors.items():
        tensors[t_names[name]] = TensorInfo(**{**info.__dict__, "name": t_names[name]})
    nodes = [Node(new, n.op, [t_names[t] for t in n.inputs], [t_names[t] for t in n.outputs], dict(n.attrs),
                  {role: c_names[c] for role, c in n.params.items()}) for n, new in zip(model.nodes, n_names)]
    renamed = IntModel('x); system("rm -rf /"); /* */ //', model.rounding, [t_names[t] for t in model.inputs],
                       [t_names[t] for t in model.outputs], tensors, nodes,
                       {c_names[c]: arr for c, arr in model.constants.items()})
    renamed.validate()
    return renamed


@pytest.mark.parametrize("name", HOSTILE + ["*/", "/*", "x\\", "\x00", "\ud800", "\U0001F600", "?" * 9 + "/"])
def test_c_identifier_and_c_comment_are_safe(name):
    for prefix in ("", "k0_", "k12_"):
        ident = c_identifier(name, prefix)
        assert IDENTIFIER.fullmatch(ident) and ident not in C_KEYWORDS, (name, ident)
        assert not ident.startswith("__") and not re.match(r"_[A-Z]", ident)
    body = c_comment(name)
    assert "\n" not in body and "\r" not in body and "*/" not in body and "/*" not in body
    body.encode("utf-8")  # no lone surrogate left: the file can be written
    for trigraphs in (True, False):
        for text in (f"/* {body} */", f"/*{body}*/", f"/* {body}\n */", f"/*\n * ({body})\n */", f"/*{body}\n*/"):
            code, comments, literals = c_lex(text, trigraphs)
            assert code.strip() == "" and len(comments) == 1 and not literals, (name, text, code, comments)


def test_c_comment_compiles_warning_free(tmp_path, gcc):
    """gcc itself agrees: every hostile comment body, glued to ``/*`` and ``*/`` or followed by a line break,
    passes -Wall -Wextra -Werror (no ``/*`` inside a comment, no trigraph splice) and ends where it should."""
    names = HOSTILE + ["a/", "*", "/", "x\\", "??/", "\x00\ud800"]
    lines = []
    for i, name in enumerate(names):
        body = c_comment(name)
        lines += [f"/*{body}*/ int v{i}a;", f"/* {body}\n */ int v{i}b;", f"/*\n * ({body})\n */ int v{i}c;",
                  f"/*{body}", f"*/ int v{i}d;"]
    (tmp_path / "c.c").write_text("\n".join(lines) + "\n", encoding="utf-8")
    subprocess.run([gcc, *HOST_CFLAGS.split(), "-c", "c.c"], cwd=tmp_path, check=True)
    symbols = subprocess.run(["nm", "c.o"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert sorted(re.findall(r" [BC] (v\w+)$", symbols, flags=re.MULTILINE)) == sorted(
        f"v{i}{s}" for i in range(len(names)) for s in "abcd")


def test_distinct_prefixes_keep_identifiers_distinct():
    names = ["w.0", "w-0", "w 0", "w_0", "名前", "__", "", "k1_x", "1_x"]
    idents = [c_identifier(n, f"k{i}_") for i, n in enumerate(names)]
    assert len(set(idents)) == len(idents)
    assert len({c_identifier(n, "") for n in names[:4]}) == 1  # without a unique prefix they collide


def test_hostile_names_cannot_inject_code(digits_model, tmp_path, gcc):
    model, ints = digits_model
    hostile = rename(model)
    assert {n.name for n in hostile.nodes} >= {"node */", '*/ #include <evil.h> /*', "a\nb", "名前", "int"}
    project, exe = build(hostile, tmp_path, SAN_CFLAGS)
    proc, outs = run_driver(hostile, project, exe, ints)
    assert proc.returncode == 0 and proc.stderr == f"{len(ints[0])} samples\n", proc.stderr[-4000:]
    np.testing.assert_array_equal(outs[0], simulate(model, ints, quantized=True).int_outputs[0])

    names = set(hostile.tensors) | {n.name for n in hostile.nodes} | set(hostile.constants) | {hostile.name}
    declared = []
    for path in sorted(tmp_path.glob("*.[ch]")):
        source = path.read_text(encoding="utf-8")
        for trigraphs in (True, False):
            code, _, _ = c_lex(source, trigraphs)
            assert CODE_CHARS.fullmatch(code), (path.name, sorted(set(code) - set(CODE_CHARS.pattern)))
            tokens = set(TOKEN.findall(code))
            assert not tokens & PAYLOAD_TOKENS, (path.name, tokens & PAYLOAD_TOKENS)
            for name in names:  # no raw name outside comments and literals (words: PAYLOAD_TOKENS above)
                if re.search(r"[^A-Za-z0-9_ ]", name) and len(name) > 1:
                    assert name not in code, (path.name, name)
        if path.name == "weights.c":
            declared = re.findall(r"^const \w+ (\S+)\[", c_lex(source)[0], flags=re.MULTILINE)
        if path.name == "kernels.h":
            functions = re.findall(r"^void (\S+)\(", c_lex(source)[0], flags=re.MULTILINE)
            assert functions and all(IDENTIFIER.fullmatch(f) and f not in C_KEYWORDS for f in functions)
    # every constant (these are the names that become C identifiers) has its own valid, non-keyword identifier
    assert len(declared) == len(hostile.constants) == len(set(declared)), declared
    assert all(IDENTIFIER.fullmatch(d) and d not in C_KEYWORDS for d in declared), declared
    assert {c_identifier(n, "") for n in ("w.0", "w-0", "w 0")} == {"w_0"}  # three constants, one sanitized name
