"""Names and text the generated C carries from the model: identifiers, comments and string literals.

Tensor and layer names come from the model file, so they can hold anything; these helpers turn them into C that
compiles warning-free under ``-std=c99 -Wall -Wextra -Werror`` and cannot end a comment or a string early.
"""

from __future__ import annotations

import re

# C99 keywords, plus the C11/C23 and GNU spellings a compiler in another mode would reserve.
C_KEYWORDS = frozenset((
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern",
    "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return", "short", "signed",
    "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void", "volatile", "while",
    "_Bool", "_Complex", "_Imaginary", "_Alignas", "_Alignof", "_Atomic", "_Generic", "_Noreturn",
    "_Static_assert", "_Thread_local", "alignas", "alignof", "bool", "constexpr", "false", "nullptr",
    "static_assert", "thread_local", "true", "typeof", "typeof_unqual", "asm",
))
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def c_identifier(name: str, prefix: str) -> str:
    """A safe C identifier for any tensor/layer name: ``prefix`` + the name with every character outside
    ``[A-Za-z0-9_]`` (non-ASCII letters included) replaced by ``_``.

    The result always matches ``[A-Za-z_][A-Za-z0-9_]*`` and is neither a keyword (:data:`C_KEYWORDS`) nor
    reserved to the implementation (a leading ``__`` or ``_`` + capital): such a result, or one that would be
    empty or start with a digit, gets ``n_`` in front. Distinct names can give the same identifier (``a.b`` and
    ``a-b``), so a caller that needs distinct identifiers puts something unique in ``prefix``: emit.py uses
    ``k<index>_``, which also keeps every result clear of keywords and of the names the C library declares."""
    ident = prefix + re.sub(r"[^A-Za-z0-9_]", "_", name)
    if (not ident or ident[0].isdigit() or ident in C_KEYWORDS or ident.startswith("__")
            or re.match(r"_[A-Z]", ident)):
        ident = "n_" + ident
    return ident


def c_comment(text: str) -> str:
    """``text`` made safe to place inside a C block comment (``/* ... */``), glued to either end or not.

    A comment ends at the first ``*/`` *after* trigraph replacement and line splicing (translation phases 1-2;
    gcc splices a backslash even when spaces separate it from the line break), and ``-Wall -Werror`` refuses a
    ``/*`` inside a comment and a ``??/`` that splices lines. So: a space goes between every ``*`` and ``/`` that
    touch, in either order; newline, carriage return and tab become ``\\n``, ``\\r``, ``\\t``, a backslash
    ``\\x5c``, the second ``?`` of a ``??`` pair ``\\x3f``, and every other non-printable character (controls,
    NUL, separators such as U+2028, lone surrogates) ``\\xNN``, ``\\uNNNN`` or ``\\UNNNNNNNN``: the result
    has no line break and no backslash that is not followed by a letter, so nothing can splice. Printable
    non-ASCII (``名前``) is kept. A result that would start or end with ``*`` or ``/`` gets a space there, so that
    it is safe right after ``/*`` and right before ``*/``."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif ch == "?" and out and out[-1] == "?":
            out.append("\\x3f")
        elif ch.isprintable() and ch != "\\":
            out.append(ch)
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    safe = re.sub(r"(?<=\*)(?=/)|(?<=/)(?=\*)", " ", "".join(out))
    if safe.startswith(("*", "/")):
        safe = " " + safe
    return safe + " " if safe.endswith(("*", "/")) else safe


def c_string_literal(text: str) -> str:
    """``text`` as a C99 string literal (quotes included) that denotes exactly its UTF-8 bytes, whatever they are.

    Letters, digits, space and punctuation other than ``"``, ``\\`` and ``?`` are kept; ``"`` and ``\\`` are
    backslash-escaped; every other byte (controls, non-ASCII, ``?``, which could start a ``??/`` trigraph under
    ``-std=c99``) becomes a three-digit octal escape, which cannot swallow a following digit the way ``\\x``
    escapes do. A NUL byte would end the C string early, so it is rejected. A lone surrogate (a name read from
    JSON may hold one; it has no UTF-8 form) is written as its Python escape ``\\udXXX``, as text."""
    out = []
    for byte in text.encode("utf-8", "backslashreplace"):
        ch = chr(byte)
        if byte == 0:
            raise ValueError(f"{text!r}: a NUL character cannot appear in a C string")
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= byte < 0x7F and ch != "?":
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'
