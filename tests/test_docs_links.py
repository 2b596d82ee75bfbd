"""Documentation links and citations point at things a reader can open.

* Every relative link (inline, image, reference definition or HTML ``href``/``src``) in README.md and docs/*.md
  resolves to a file or folder of the repository (tracked, or new and not ignored by git); a ``#fragment`` must
  name a heading (GitHub's slug rules, duplicates numbered ``-1``, ``-2``, ...) or an explicit ``id``/``name``
  anchor of the target page.
* No tracked .md, .toml, .py or .j2 file cites the project's private notes: paths into a ``research`` folder, the
  private design file or the shared folder beside the checkout. Those are not in the repository, so a reader could
  not follow them; docs/sources.md names the original public sources instead.

The self-tests at the end feed the checkers broken input, so a checker that stopped finding anything would fail.
"""

from __future__ import annotations

import functools
import pathlib
import posixpath
import re
import subprocess
import unicodedata
import urllib.parse

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

# The strings are assembled so that this file does not contain the references it forbids.
PRIVATE_DESIGN = "DESIGN" + ".md"
SHARED_DIR = ".." + "/shared"
RESEARCH_DIR = "research" + "/"
CHECKED_SUFFIXES = (".md", ".toml", ".py", ".j2")


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


@functools.lru_cache(maxsize=1)
def repo_files() -> frozenset[str]:
    """Files of the repository: tracked or new-and-not-ignored, and present in the working tree."""
    names = _git("ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    return frozenset(n for n in names if n and (ROOT / n).is_file())


@functools.lru_cache(maxsize=1)
def repo_dirs() -> frozenset[str]:
    dirs = {""}
    for name in repo_files():
        parent = posixpath.dirname(name)
        while parent and parent not in dirs:
            dirs.add(parent)
            parent = posixpath.dirname(parent)
    return frozenset(dirs)


def markdown_pages() -> list[str]:
    pages = ["README.md"] + sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))
    return [p for p in pages if (ROOT / p).is_file()]


# ---------------------------------------------------------------------------------------------------------------
# Markdown scanning

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def strip_blocks(text: str) -> str:
    """The text with fenced code blocks and HTML comments blanked (line count kept)."""
    out, fence = [], None
    for line in text.split("\n"):
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)
            out.append("")
            continue
        if fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not line.strip()[len(m.group(1)):].strip():
                fence = None
            out.append("")
            continue
        out.append(line)
    text = "\n".join(out)
    return re.sub(r"<!--.*?-->", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)


def strip_code(text: str) -> str:
    """The text with fenced code blocks, HTML comments and inline code spans blanked (line count kept)."""
    text = strip_blocks(text)
    # inline code: a run of N backticks up to the next run of exactly N backticks
    return re.sub(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", lambda m: " " * len(m.group(0)), text, flags=re.S)


INLINE_LINK = re.compile(r"!?\[(?:[^\[\]\\]|\\.|\[(?:[^\[\]\\]|\\.)*\])*\]\(")
REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)", re.M)
HTML_ATTR = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*[\"']([^\"']*)[\"']", re.I)


def _destination(text: str, start: int) -> str | None:
    """The link destination that starts at text[start] (just after the opening parenthesis)."""
    i = start
    while i < len(text) and text[i] in " \t\n":
        i += 1
    if i < len(text) and text[i] == "<":
        end = text.find(">", i)
        return None if end < 0 else text[i + 1:end]
    depth, j = 0, i
    while j < len(text):
        c = text[j]
        if c == "\\":
            j += 2
            continue
        if c in " \t\n":
            break
        if c == "(":
            depth += 1
        elif c == ")":
            if depth == 0:
                break
            depth -= 1
        j += 1
    return text[i:j]


def links(markdown: str) -> list[tuple[int, str]]:
    """(line number, destination) of every link in a Markdown text, outside code."""
    text = strip_code(markdown)
    found = []
    for m in INLINE_LINK.finditer(text):
        dest = _destination(text, m.end())
        if dest is not None:
            found.append((m.start(), dest))
    found += [(m.start(), m.group(1).strip("<>")) for m in REF_DEF.finditer(text)]
    found += [(m.start(), m.group(1)) for m in HTML_ATTR.finditer(text)]
    return sorted((text.count("\n", 0, pos) + 1, dest) for pos, dest in found)


# ---------------------------------------------------------------------------------------------------------------
# GitHub heading anchors

ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")


def heading_text(raw: str) -> str:
    """The plain text GitHub renders for a heading's inline Markdown."""
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", raw)           # images: their alt text
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)           # links: their text
    text = re.sub(r"\[([^\]]*)\]\[[^\]]*\]", r"\1", text)          # reference links
    text = re.sub(r"<[^>]+>", "", text)                            # inline HTML tags
    text = re.sub(r"(`+)(.+?)\1", r"\2", text)                     # code spans: their content
    text = re.sub(r"(\*\*|__)(\S(?:.*?\S)?)\1", r"\2", text)       # strong
    text = re.sub(r"(?<![\w*])\*(\S(?:.*?\S)?)\*(?![\w*])", r"\1", text)  # emphasis
    text = re.sub(r"(?<!\w)_(\S(?:.*?\S)?)_(?!\w)", r"\1", text)
    return re.sub(r"\\(.)", r"\1", text).strip()


def slug(text: str) -> str:
    """GitHub's anchor for a heading text (github-slugger): lower case, punctuation and symbols removed except '-'
    and '_', each space a '-'."""
    kept = []
    for c in text.lower():
        if c in " -_" or unicodedata.category(c)[0] in "LMN" or unicodedata.category(c) == "Pc":
            kept.append(c)
    return "".join(kept).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every anchor a rendered page offers: heading slugs (numbered when repeated) and HTML id/name attributes."""
    lines = strip_blocks(markdown).split("\n")
    seen: dict[str, int] = {}
    result: set[str] = set()
    for i, line in enumerate(lines):
        title = None
        m = ATX.match(line)
        if m:
            title = m.group(2) or ""
        elif (i > 0 and SETEXT.match(line) and lines[i - 1].strip() and not ATX.match(lines[i - 1])
              and not lines[i - 1].lstrip().startswith(("|", ">", "-", "*", "+"))):
            title = lines[i - 1]
        if title is None:
            continue
        base = slug(heading_text(title))
        n = seen.get(base, 0)
        seen[base] = n + 1
        result.add(base if n == 0 else f"{base}-{n}")
    result.update(re.findall(r"<[a-zA-Z]+\b[^>]*?\b(?:id|name)\s*=\s*[\"']([^\"']+)[\"']", markdown))
    return result


# ---------------------------------------------------------------------------------------------------------------
# The link check

SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def broken_links(page: str, markdown: str, files: frozenset[str], dirs: frozenset[str],
                 read=lambda name: (ROOT / name).read_text(encoding="utf-8")) -> list[str]:
    """Problems with the relative links of `markdown`, the text of the repository file `page`."""
    problems = []
    for line, dest in links(markdown):
        if not dest or SCHEME.match(dest) or dest.startswith("//"):
            continue                                   # absolute URL (http:, https:, mailto:, ...)
        path, _, fragment = dest.partition("#")
        path = urllib.parse.unquote(path.split("?", 1)[0])
        if path:
            target = posixpath.normpath(posixpath.join(posixpath.dirname(page), path))
            if target == "." :
                target = ""
            if target == ".." or target.startswith("../") or posixpath.isabs(path):
                problems.append(f"{page}:{line}: link '{dest}' leaves the repository")
                continue
            if target not in files and target not in dirs:
                problems.append(f"{page}:{line}: link '{dest}' names no file of the repository ({target})")
                continue
        else:
            target = page
        if fragment and target in files and target.endswith(".md"):
            text = markdown if target == page else read(target)
            if urllib.parse.unquote(fragment) not in anchors(text):
                problems.append(f"{page}:{line}: link '{dest}': no heading or anchor '#{fragment}' in {target}")
    return problems


@pytest.mark.parametrize("page", markdown_pages())
def test_relative_links_resolve(page):
    problems = broken_links(page, (ROOT / page).read_text(encoding="utf-8"), repo_files(), repo_dirs())
    assert not problems, "\n".join(problems)


def test_the_docs_index_links_every_page():
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    linked = {posixpath.normpath(posixpath.join("docs", d.partition("#")[0])) for _, d in links(index)}
    missing = [p for p in markdown_pages() if p.startswith("docs/") and p not in linked | {"docs/index.md"}]
    assert not missing, f"docs/index.md does not link {missing}"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/index.md" in {d for _, d in links(readme)}, "README.md does not link docs/index.md"


# ---------------------------------------------------------------------------------------------------------------
# No citation of files outside the repository

def private_references(text: str) -> list[str]:
    """The references in `text` to the private notes: the design file, the shared folder, a research folder."""
    found = []
    for needle in (PRIVATE_DESIGN, SHARED_DIR):
        start = 0
        while (i := text.find(needle, start)) >= 0:
            found.append(text[max(0, i - 30):i + len(needle) + 30])
            start = i + 1
    for m in re.finditer(re.escape(RESEARCH_DIR), text):
        i = m.start()
        before = text[max(0, i - 200):i]
        token = re.split(r"[\s\"'`()\[\]<>{},;|]", before)[-1]      # the path this occurrence continues
        if token and not token.endswith("/"):
            continue                                   # part of a longer name, e.g. owner-research/...
        if "://" in token or re.match(r"^(www\.)?[\w-]+(\.[\w-]+)+/", token):
            continue                                   # a public web address whose path has such a folder
        found.append(text[max(0, i - 30):i + len(RESEARCH_DIR) + 30])
    return found


def test_no_tracked_file_cites_the_private_notes():
    tracked = [n for n in _git("ls-files", "-z").split("\0") if n.endswith(CHECKED_SUFFIXES)]
    assert len(tracked) > 50, "git ls-files found too few files to check"
    offenders = []
    for name in tracked:
        path = ROOT / name
        if not path.is_file():
            continue                                   # deleted in the working tree, not committed yet
        for context in private_references(path.read_text(encoding="utf-8", errors="replace")):
            offenders.append(f"{name}: ...{context.strip()}...")
    assert not offenders, "cite the original public source instead:\n" + "\n".join(offenders)


# ---------------------------------------------------------------------------------------------------------------
# The checkers find what they should (so the tests above can fail)

def test_slugs_follow_github():
    assert slug(heading_text("`log2_softmax` (FQ-ViT log-int-softmax)")) == "log2_softmax-fq-vit-log-int-softmax"
    assert slug(heading_text("Trust: what a target file can and cannot make intonly do")) == \
        "trust-what-a-target-file-can-and-cannot-make-intonly-do"
    assert slug(heading_text("`embedding`, `constant`, `slice`, `mean_pool`")) == "embedding-constant-slice-mean_pool"
    assert slug(heading_text("Jacob et al. 2018")) == "jacob-et-al-2018"
    assert slug(heading_text("A & B: **bold** [link](x.md) ×2")) == "a--b-bold-link-2"
    assert anchors("# Title\n\n## Part\n\n## Part\n\nText\n===\n\n```\n# not a heading\n```\n## `op_name` (x)\n") == \
        {"title", "part", "part-1", "text", "op_name-x"}


def test_link_checker_reports_broken_links():
    files = frozenset({"README.md", "docs/a.md", "docs/b.md", "pkg/mod.py"})
    dirs = frozenset({"", "docs", "pkg"})
    pages = {"docs/b.md": "# B\n\n## Real heading\n"}
    page = "\n".join([
        "# A", "",
        "[ok](b.md) [ok](b.md#real-heading) [ok](../README.md) [ok](../pkg/) [ok](#a) [ok](https://x.org/y)",
        "[gone](missing.md)", "[bad anchor](b.md#nope)", "[outside](../../etc/passwd)", "[self](#nowhere)",
        "![img](pic.png)", "[ref]: ../nothing.md", '<a href="c.md">c</a>',
        "`[in code](nothing.md)`", "```", "[in fence](nothing.md)", "```",
    ])
    problems = broken_links("docs/a.md", page, files, dirs, read=pages.__getitem__)
    assert len(problems) == 7, problems
    for needle in ("missing.md", "#nope", "leaves the repository", "#nowhere", "pic.png", "../nothing.md", "c.md"):
        assert any(needle in p for p in problems), (needle, problems)


def test_private_reference_check_reports_each_form():
    assert private_references("see " + RESEARCH_DIR + "notes.md") and \
        private_references("(" + SHARED_DIR + "/x/" + RESEARCH_DIR + "a.md)") and \
        private_references("/work/shared/" + RESEARCH_DIR + "a.md") and private_references("`" + PRIVATE_DESIGN + "`")
    assert not private_references("megvii-" + RESEARCH_DIR + "FQ-ViT @ 5daf591")
    assert not private_references("https://www.microsoft.com/en-us/" + RESEARCH_DIR + "?p=964476")
