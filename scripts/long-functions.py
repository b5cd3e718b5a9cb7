#!/usr/bin/env python3
"""List every non-test Rust function longer than N lines (default 80).

Run from anywhere in the repository:

    python3 scripts/long-functions.py          # functions over 80 lines
    python3 scripts/long-functions.py 60       # over 60 lines
    python3 scripts/long-functions.py --all 0  # every function, with its length

Prints `file:line  length  name`, longest first, and exits 0 (it reports; it
does not judge: a long function may carry a comment saying why).

What counts as a test, and is skipped: `#[cfg(test)]` items (inline modules
and `mod x;` files they name), `#[test]` functions, integration tests
(`*/tests/`), benches, `fuzz/` and `target/`. A function's length runs from
its `fn` line to its closing brace. The scan matches braces after removing
comments, strings and char literals; it is not a Rust parser, which is
enough for a length report. A function nested in another is reported on its
own and also counts in the outer one's length.
"""

import os
import re
import subprocess
import sys

SKIP_DIRS = {"target", "fuzz", "benches", ".git"}


def repo_root():
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run(
        ["git", "-C", here, "rev-parse", "--show-toplevel"],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() if out.returncode == 0 else os.path.dirname(here)


def blank_literals(src):
    """The source with comments, strings and char literals replaced by
    spaces (newlines kept, so line numbers stay right)."""
    out = []
    i, n = 0, len(src)

    def blank(text):
        return "".join("\n" if c == "\n" else " " for c in text)

    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(blank(src[i:j]))
            i = j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(src[i:j]))
            i = j
        elif raw := re.match(r'(?:b|c)?r(#*)"', src[i:]):
            # A raw string: ends at `"` followed by as many `#`.
            if i > 0 and (src[i - 1].isalnum() or src[i - 1] == "_"):
                out.append(c)
                i += 1
                continue
            end = '"' + raw.group(1)
            j = src.find(end, i + raw.end())
            j = n if j < 0 else j + len(end)
            out.append(blank(src[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            out.append(blank(src[i : j + 1]))
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}', '{') or a lifetime ('a).
            lit = re.match(r"'(?:\\(?:u\{[0-9a-fA-F]+\}|x..|.)|[^\\'\n])'", src[i:])
            if lit:
                out.append(blank(lit.group(0)))
                i += lit.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def line_of(text, pos):
    return text.count("\n", 0, pos) + 1


def matching_close(text, open_pos):
    """Position of the brace closing the one at `open_pos`."""
    depth = 0
    for j in range(open_pos, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(text) - 1


ATTR = r"(?:#!?\[[^\]]*\]\s*)*"
CFG_TEST = re.compile(r"#\[cfg\(\s*test\s*\)\]")
TEST_ATTR = re.compile(r"#\[(?:[\w:]+::)?test\b")
FN = re.compile(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)")
MOD_FILE = re.compile(r"\bmod\s+([A-Za-z_][A-Za-z0-9_]*)\s*;")


def attributes_before(text, pos):
    """The outer attributes written just before the item at `pos`
    (after its visibility and qualifiers, which are skipped)."""
    head = text[:pos]
    m = re.search(
        r"((?:#\[[^\]]*(?:\[[^\]]*\][^\]]*)*\]\s*)*)"
        r"(?:pub(?:\s*\([^)]*\))?\s+)?"
        r"(?:(?:const|async|unsafe|extern(?:\s+\"[^\"]*\")?|default)\s+)*$",
        head,
    )
    return m.group(1) if m else ""


def test_regions(text):
    """(start, end) spans of `#[cfg(test)]` items, and the names of
    `#[cfg(test)] mod x;` files."""
    spans, files = [], []
    for m in CFG_TEST.finditer(text):
        rest = text[m.end() :]
        item = re.match(r"\s*" + ATTR + r"(?:pub(?:\([^)]*\))?\s+)?", rest)
        k = m.end() + item.end()
        decl = MOD_FILE.match(text, k)
        if decl:
            files.append(decl.group(1))
            continue
        brace = text.find("{", k)
        semi = text.find(";", k)
        if brace < 0 or (0 <= semi < brace):
            continue  # a `use` or other item without a body
        spans.append((m.start(), matching_close(text, brace)))
    return spans, files


def signature_body(text, start):
    """Position of the `{` opening the body of the fn whose name ends at
    `start`, or None for a declaration without a body (`fn f();`)."""
    depth = 0
    for j in range(start, len(text)):
        c = text[j]
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == ";" and depth == 0:
            return None
        elif c == "{" and depth == 0:
            return j
    return None


def functions(path, excluded_files):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = blank_literals(f.read())
    spans, test_mods = test_regions(text)
    for name in test_mods:
        excluded_files.update(module_files(path, name))
    for m in FN.finditer(text):
        if any(a <= m.start() <= b for a, b in spans):
            continue
        if TEST_ATTR.search(attributes_before(text, m.start())):
            continue
        body = signature_body(text, m.end())
        if body is None:
            continue
        first = line_of(text, m.start())
        last = line_of(text, matching_close(text, body))
        yield first, last - first + 1, m.group(1)


def module_files(path, name):
    """Where `mod name;` written in `path` may live."""
    d, base = os.path.split(path)
    if base not in ("mod.rs", "lib.rs", "main.rs"):
        d = os.path.join(d, base[:-3])
    return {
        os.path.normpath(os.path.join(d, name + ".rs")),
        os.path.normpath(os.path.join(d, name, "mod.rs")),
    }


def rust_files(root):
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        parts = rel.split(os.sep)
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        # Integration tests: `tests/` inside a crate (also the harness
        # crate's own `tests/tests/`), but not the harness library tests/src.
        if "tests" in parts[1:]:
            dirnames[:] = []
            continue
        for name in sorted(filenames):
            if name.endswith(".rs"):
                yield os.path.normpath(os.path.join(dirpath, name))


def main(argv):
    show_all = "--all" in argv
    args = [a for a in argv if a != "--all"]
    limit = int(args[0]) if args else 80
    root = repo_root()
    excluded, found = set(), []
    files = list(rust_files(root))
    # Parents first, so `#[cfg(test)] mod x;` excludes x.rs before it is read.
    files.sort(key=lambda p: (p.count(os.sep), p))
    for path in files:
        if path in excluded:
            continue
        for line, length, name in functions(path, excluded):
            if length > limit or (show_all and length >= limit):
                found.append((length, os.path.relpath(path, root), line, name))
    found.sort(key=lambda f: (-f[0], f[1], f[2]))
    for length, rel, line, name in found:
        print(f"{rel}:{line}\t{length}\t{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
