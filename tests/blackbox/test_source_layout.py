"""The source tree keeps the shape the README's "Layout" section describes:

- no import cycle among the common crate's modules (a module's own submodules are part of it:
  declaring and re-exporting them is structure, not an import; a submodule using its parent or
  a sibling is an import);
- no Rust source file over 600 lines;
- no function over 80 lines unless a comment right above it says why ("longer than 80 lines
  because ...");
- no comment cites a document outside the repository.

Read from the files themselves; no build needed.
"""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CRATE = REPO / "shared" / "src"
RUST_DIRS = [REPO / "shared" / "src", REPO / "shared" / "tests", REPO / "shared" / "benches",
             REPO / "cli" / "src", REPO / "functions", REPO / "fuzz" / "fuzz_targets"]
MAX_FILE_LINES = 600
MAX_FN_LINES = 80


def rust_files():
    for root in RUST_DIRS:
        yield from sorted(p for p in root.rglob("*.rs") if "target" not in p.parts)


# ------------------------------------------------------------------------------------ imports


def module_of(path: Path) -> tuple[str, ...]:
    parts = list(path.relative_to(CRATE).with_suffix("").parts)
    if parts[-1] in ("mod", "lib"):
        parts.pop()
    return tuple(parts)


MODULES = {module_of(p): p for p in CRATE.rglob("*.rs")}


def code_only(text: str) -> str:
    """Comments, string literals and `#[cfg(test)]` modules removed."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r'r#"(.|\n)*?"#', '""', text)
    text = re.sub(r'"(\\.|[^"\\])*"', '""', text)
    cut = re.search(r"#\[cfg\(test\)\]\s*mod tests", text)
    return text[: cut.start()] if cut else text


def use_trees(text: str):
    """Every `use` declaration as (is_reexport, [path segments...]) leaves, groups expanded."""
    for m in re.finditer(r"(?m)^\s*(pub(?:\([a-z]+\))?\s+)?use\s+([^;]+);", text):
        yield from ((bool(m.group(1)), leaf) for leaf in expand(m.group(2).replace("\n", " ")))


def expand(tree: str, prefix=()):
    tree = tree.strip()
    brace = tree.find("{")
    if brace < 0:
        name = tree.split(" as ")
        segs = [s.strip() for s in name[0].split("::") if s.strip()]
        alias = name[1].strip() if len(name) > 1 else (segs[-1] if segs else "")
        yield (*prefix, *segs), alias
        return
    head = [s.strip() for s in tree[:brace].split("::") if s.strip()]
    inner = tree[brace + 1: tree.rfind("}")]
    depth, start = 0, 0
    for i, ch in enumerate(inner + ","):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            part = inner[start:i].strip()
            if part:
                yield from expand(part, (*prefix, *head))
            start = i + 1


def absolute(module: tuple[str, ...], segs: tuple[str, ...]):
    """A path as written in `module`, from the crate root (None: another crate)."""
    segs = list(segs)
    if not segs:
        return None
    base = list(module)
    if segs[0] == "crate":
        base, segs = [], segs[1:]
    elif segs[0] in ("super", "self"):
        while segs and segs[0] in ("super", "self"):
            if segs.pop(0) == "super":
                base = base[:-1]
    elif (*base, segs[0]) in MODULES:
        pass  # a child module named without `self::`
    else:
        return None
    return tuple(base + segs)


def owning_module(path: tuple[str, ...]):
    for n in range(len(path), 0, -1):
        if path[:n] in MODULES:
            return path[:n]
    return None


def imports_of(module: tuple[str, ...]) -> set[tuple[str, ...]]:
    text = code_only(MODULES[module].read_text())
    aliases: dict[str, tuple[str, ...]] = {}
    targets = set()
    for reexport, (segs, alias) in use_trees(text):
        full = absolute(module, segs)
        if full is None:
            continue
        if segs and segs[-1] == "self":
            full = full[:-1]
        if full in MODULES:
            aliases[alias] = full
        target = owning_module(full)
        if target:
            targets.add(target)
    for m in re.finditer(r"\b((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)+)", text):
        full = absolute(module, tuple(m.group(1).split("::")))
        if full and (target := owning_module(full)):
            targets.add(target)
    for alias, full in aliases.items():
        for m in re.finditer(r"(?<![:\w])" + re.escape(alias) + r"((?:::[A-Za-z_]\w*)+)", text):
            target = owning_module(full + tuple(m.group(1).split("::")[1:]))
            if target:
                targets.add(target)
    # A module's own submodules are part of it.
    return {t for t in targets if t != module and t[: len(module)] != module and t != ()}


def cycles(edges: dict) -> list[list[tuple[str, ...]]]:
    index, low, on, stack, found, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(comp)

    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_a_module_that_imports_it_back():
    edges = {m: imports_of(m) for m in MODULES}
    assert edges[("server",)] >= {("endpoints", "token"), ("app",)}, "the reader sees imports"
    loops = cycles(edges)
    described = []
    for comp in loops:
        inside = set(comp)
        described.append("\n".join(
            f"  {'::'.join(a)} -> {'::'.join(b)}"
            for a in sorted(comp) for b in sorted(edges[a]) if b in inside))
    assert not loops, "import cycles:\n" + "\n\n".join(described)


def test_the_application_state_knows_no_endpoint():
    assert not {m for m in imports_of(("app",)) if m[0] in ("endpoints", "hosted", "server")}


# ------------------------------------------------------------------------------------ sizes


def test_no_source_file_is_over_600_lines():
    long = {str(p.relative_to(REPO)): n for p in rust_files()
            if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES}
    assert not long, f"files over {MAX_FILE_LINES} lines: {long}"


def functions(text: str):
    """(name, first line, line count, the comment lines right above) of every `fn` body."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?"
                     r"fn\s+(\w+)", line)
        if not m:
            continue
        indent = m.group(1)
        end = None
        j = i
        while j < len(lines):
            if lines[j].rstrip().endswith(";") and "{" not in "".join(lines[i:j + 1]):
                break  # a declaration without a body
            if lines[j].startswith(indent + "}") and j > i:
                end = j
                break
            if j == i and lines[j].rstrip().endswith("}") and "{" in lines[j]:
                end = j
                break
            j += 1
        if end is None:
            continue
        above = []
        k = i - 1
        while k >= 0 and lines[k].strip().startswith(("//", "#[")):
            above.append(lines[k])
            k -= 1
        yield m.group(2), i + 1, end - i + 1, "\n".join(above)


def test_functions_stay_under_80_lines_unless_their_comment_says_why():
    long = []
    for path in rust_files():
        for name, line, count, above in functions(path.read_text()):
            if count > MAX_FN_LINES and "longer than 80 lines" not in above.lower():
                long.append(f"{path.relative_to(REPO)}:{line} {name} ({count} lines)")
    assert not long, "functions over 80 lines without a reason:\n" + "\n".join(long)


def test_the_function_finder_measures_bodies():
    sample = "fn a() {\n    x();\n}\n\n/// longer than 80 lines because: a test\npub async fn b(\n    y: u8,\n) -> u8 {\n    y\n}\n"
    found = {name: (count, "longer than 80 lines" in above.lower())
             for name, _, count, above in functions(sample)}
    assert found == {"a": (3, False), "b": (5, True)}


# ------------------------------------------------------------------------------------ comments


def test_comments_cite_nothing_outside_the_repository():
    pattern = re.compile(r"hazard \d|seed 00\d|seeds/", re.IGNORECASE)
    hits = []
    for path in [*rust_files(), *REPO.glob("*.md"), *(REPO / "docs").rglob("*.md"),
                 REPO / "infra" / "template.yaml", *(REPO / "tests").rglob("*.py")]:
        if path.resolve() == Path(__file__).resolve() or "node_modules" in path.parts:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not hits, "\n".join(hits)


def test_the_sam_template_sets_no_development_only_setting():
    """`GATEHOUSE_DEV_*` settings (extra CAs, loopback documents, a moved clock) exist for local
    tests only; the deployed functions must never see one."""
    template = (REPO / "infra" / "template.yaml").read_text()
    assert "GATEHOUSE_DEV_" not in template
