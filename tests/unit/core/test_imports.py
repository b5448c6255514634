"""The package's layering, read from its source: no import cycles (imports inside functions
count too), and core, the part the Snakefile imports, stays torch-free and self-contained."""
import ast
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "workflow" / "rethink"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {m: {i for i in imports(p) if i in MODULES and i != m and not MODULES[i].name == "__init__.py"}
         for m, p in MODULES.items()}


def test_no_module_imports_one_that_imports_it_back():
    cycles = []

    def visit(m, stack, on_stack, done):
        on_stack.add(m)
        stack.append(m)
        for n in sorted(GRAPH[m]):
            if n in on_stack:
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in done:
                visit(n, stack, on_stack, done)
        stack.pop()
        on_stack.discard(m)
        done.add(m)

    done = set()
    for m in sorted(GRAPH):
        if m not in done:
            visit(m, [], set(), done)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_core_imports_only_core_and_no_torch():
    for m, path in MODULES.items():
        if not m.startswith("rethink.core"):
            continue
        names = imports(path)
        assert not {n for n in names if n.split(".")[0] in ("torch", "torchvision")}, m
        outside = {n for n in names if n.startswith("rethink.") and not n.startswith("rethink.core")}
        assert not outside, f"{m} imports {sorted(outside)}"


def test_the_snakefiles_imports_load_no_torch():
    code = ("import importlib, pkgutil, sys, rethink.core as c\n"
            "[importlib.import_module(m.name) for m in pkgutil.iter_modules(c.__path__, 'rethink.core.')]\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "workflow", capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
