"""The layers stay as the README's architecture section draws them (issue 21).

Read from the code's own syntax tree, imports inside functions included: no import cycle
between medswap's top-level packages and modules, ``evaluate`` never imports ``report``,
``faces`` never imports ``swap``; no source file over 600 lines and no function over 80
lines (docstring excluded), except the offenders listed below with their present size as a
ceiling. An entry that is already within the limit fails too, so the lists only shrink.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "medswap"
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 80

#: Files over the limit today (path under src/medswap -> line count, a ceiling).
LONG_FILES: dict[str, int] = {}
#: Functions over the limit today ("path:qualified name" -> lines without docstring).
LONG_FUNCTIONS: dict[str, int] = {}


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _unit(parts: list[str]) -> str:
    """The top-level package or module of ``medswap.<parts>`` ("__init__" for the root)."""
    return parts[0] if parts else "__init__"


def _imported_units(path: Path) -> set[str]:
    """Top-level units of medswap that ``path`` imports anywhere in its body."""
    rel = path.relative_to(PACKAGE).with_suffix("").parts
    package = list(rel[:-1])  # the package holding this file (itself for an __init__)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "medswap":
                    found.add(_unit(parts[1:]))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                parts = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "medswap":
                parts = node.module.split(".")[1:]
            else:
                continue
            if parts:
                found.add(_unit(parts))
            else:  # from medswap import x: x is a unit when it is a module or a package
                for alias in node.names:
                    is_unit = (PACKAGE / alias.name).is_dir() or (
                        PACKAGE / f"{alias.name}.py"
                    ).is_file()
                    found.add(alias.name if is_unit else "__init__")
    return found


def import_graph() -> dict[str, set[str]]:
    """unit -> the other units it imports."""
    graph: dict[str, set[str]] = {}
    for path in _sources():
        me = _unit(list(path.relative_to(PACKAGE).with_suffix("").parts))
        graph.setdefault(me, set()).update(_imported_units(path) - {me})
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_packages():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize(("lower", "upper"), [("evaluate", "report"), ("faces", "swap")])
def test_a_lower_layer_never_imports_an_upper_one(lower, upper):
    assert upper not in import_graph()[lower]


def test_nothing_imports_the_cli_layer():
    """The command line is the top layer: no feature package reaches up into it."""
    assert sorted(unit for unit, imported in import_graph().items() if "cli" in imported) == []


def _file_lines() -> dict[str, int]:
    return {p.relative_to(PACKAGE).as_posix(): len(p.read_text().splitlines()) for p in _sources()}


def _body_lines(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """A function's lines, its docstring left out."""
    n = fn.end_lineno - fn.lineno + 1
    first = fn.body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        n -= first.end_lineno - first.lineno + 1
    return n


def _walk(node: ast.AST, prefix: str, out: dict[str, int]) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out[f"{prefix}{child.name}"] = _body_lines(child)
            _walk(child, f"{prefix}{child.name}.", out)
        elif isinstance(child, ast.ClassDef):
            _walk(child, f"{prefix}{child.name}.", out)


def _function_lines() -> dict[str, int]:
    """Lines of every function ("path:qualified name"), docstrings left out."""
    out: dict[str, int] = {}
    for path in _sources():
        _walk(ast.parse(path.read_text()), f"{path.relative_to(PACKAGE).as_posix()}:", out)
    return out


def _check(sizes: dict[str, int], allowed: dict[str, int], limit: int) -> list[str]:
    problems = []
    for name, n in sorted(sizes.items()):
        if n > allowed.get(name, limit):
            problems.append(f"{name}: {n} lines (limit {allowed.get(name, limit)})")
    for name in sorted(allowed):
        if name not in sizes or sizes[name] <= limit:
            problems.append(f"{name}: within {limit} lines now; take it off the list")
    return problems


def test_no_file_over_the_limit_but_the_listed_ones_which_only_shrink():
    assert _check(_file_lines(), LONG_FILES, MAX_FILE_LINES) == []


def test_no_function_over_the_limit_but_the_listed_ones_which_only_shrink():
    assert _check(_function_lines(), LONG_FUNCTIONS, MAX_FUNCTION_LINES) == []


def test_the_size_check_flags_growth_and_stale_entries():
    assert _check({"a": 90}, {}, 80) == ["a: 90 lines (limit 80)"]
    assert _check({"a": 90}, {"a": 85}, 80) == ["a: 90 lines (limit 85)"]
    assert _check({"a": 70}, {"a": 85}, 80) == ["a: within 80 lines now; take it off the list"]


#: What ``evaluate`` may take from the file-writing modules: cleaning values for JSON only.
_EVALUATE_MAY_USE = {"medswap.outputs": {"json_safe"}, "medswap.video": {"VideoInfo"}}
#: Calls that write a file, whatever module they come from.
_WRITING_CALLS = {"savefig", "savez", "save", "write_text", "write_bytes", "to_csv", "dump"}


def _writes_in_evaluate() -> list[str]:
    """Every place in ``evaluate`` that imports a writer or calls one."""
    found = []
    for path in sorted((PACKAGE / "evaluate").rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in ("medswap.outputs",):
                extra = {a.name for a in node.names} - _EVALUATE_MAY_USE[node.module]
                found += [f"{rel}: imports {name} from {node.module}" for name in sorted(extra)]
            elif isinstance(node, ast.ImportFrom) and node.module == "medswap.video":
                if "VideoWriter" in {a.name for a in node.names}:
                    found.append(f"{rel}: imports VideoWriter")
            elif isinstance(node, ast.Attribute) and node.attr in _WRITING_CALLS:
                found.append(f"{rel}:{node.lineno}: .{node.attr}")
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "open":
                modes = [a.value for a in node.args[1:2] if isinstance(a, ast.Constant)]
                if any(set("wax") & set(str(m)) for m in modes):
                    found.append(f"{rel}:{node.lineno}: open for writing")
    return found


def test_evaluate_computes_and_returns_and_writes_no_file():
    assert _writes_in_evaluate() == []
