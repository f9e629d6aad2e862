"""Checks of the layers (docs/architecture.md "Layers and dependencies"), read from the source with C{ast}."""
from __future__ import annotations

import ast
import functools
import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]

#: The project's own top-level packages.
PROJECT = ("admin", "bench", "billing", "core", "gateway", "protocols", "tests")

#: Folders that hold no project source.
NOT_SOURCE = {".git", ".venv", "node_modules", "__pycache__"}


def sources(*tops: str):
    """(path relative to the repository, parsed module) of every C{.py} under C{tops}."""
    for top in tops:
        yield from parsed(top)


@functools.cache
def parsed(top: str) -> tuple:
    """(path relative to the repository, parsed module) of every C{.py} under C{top}."""
    return tuple(walk(top))


@pytest.fixture(scope="module", autouse=True)
def forget_the_parsed_sources():
    """Drop the parsed sources after this module's tests: hundreds of thousands of
    AST nodes kept for the rest of the run make every later full collection slow."""
    yield
    parsed.cache_clear()


def walk(top: str):
    """Parse every C{.py} under C{top}, leaving out folders that hold no project source."""
    for folder, subfolders, files in os.walk(REPO / top):
        subfolders[:] = sorted(d for d in subfolders if d not in NOT_SOURCE)
        for name in sorted(files):
            if name.endswith(".py"):
                path = pathlib.Path(folder, name)
                yield path.relative_to(REPO).as_posix(), ast.parse(path.read_text(), str(path))


def imported_modules(tree) -> list[tuple[int, str]]:
    """(line, dotted module) of every absolute import in C{tree}, also inside functions."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
            found.extend((node.lineno, "%s.%s" % (node.module, a.name)) for a in node.names)
    return found


def imports_of(tops, forbidden) -> list[str]:
    """C{path:line module} for each import under C{tops} of a package in C{forbidden}."""
    return ["%s:%d %s" % (path, line, module)
            for path, tree in sources(*tops)
            for line, module in imported_modules(tree)
            if module.split(".")[0] in forbidden]


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


@functools.cache
def is_project_module(dotted: str) -> bool:
    """Whether C{dotted} names a module or package of this project."""
    base = REPO.joinpath(*dotted.split("."))
    return dotted.split(".")[0] in PROJECT and (base.with_suffix(".py").is_file()
                                                or (base / "__init__.py").is_file())


def private_uses(tree) -> list[tuple[int, str]]:
    """(line, text) of each private name C{tree} takes from another project module:
    C{from m import _x}, or C{m._x} where C{m} is a project module it imported."""
    found, modules = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module != "__future__":
            for a in node.names:
                if is_private(a.name):
                    found.append((node.lineno, "from %s import %s" % (node.module, a.name)))
                elif is_project_module("%s.%s" % (node.module, a.name)):
                    modules.add(a.asname or a.name)
        elif isinstance(node, ast.Import):
            modules.update(a.asname for a in node.names if a.asname and is_project_module(a.name))
            modules.update(a.name.split(".")[0] for a in node.names
                           if not a.asname and is_project_module(a.name))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr) \
                and isinstance(node.value, ast.Name) and node.value.id in modules:
            found.append((node.lineno, "%s.%s" % (node.value.id, node.attr)))
    return found


def test_no_adapter_or_core_imports_gateway():
    """The composition root (gateway/) is imported by nothing below it."""
    assert imports_of(("protocols", "admin", "core"), {"gateway"}) == []


def test_core_imports_no_adapter_or_billing():
    """The core depends on no adapter, no billing connector and not on the GUI."""
    assert imports_of(("core",), {"billing", "protocols", "admin", "gateway"}) == []


def test_no_private_name_imported_across_modules():
    """A C{_name} is used only in the module that defines it."""
    found = ["%s:%d %s" % (path, line, text)
             for path, tree in sources(*PROJECT, "twisted")
             for line, text in private_uses(tree)]
    assert found == []


def test_cli_command_modules_import_only_the_runtime():
    """Registration runs one way: C{gateway.cli.main} imports the command
    modules, which import L{gateway.cli.runtime} and no other CLI module."""
    for path, tree in sources("gateway/cli"):
        name = pathlib.PurePosixPath(path).stem
        cli = {m for _, m in imported_modules(tree)
               if m.startswith("gateway.cli.") or m == "gateway.cli"}
        if name in ("__init__", "__main__"):
            assert cli <= {"gateway.cli.main", "gateway.cli.main.main"}, path
        elif name == "runtime":
            assert cli == set(), path
        elif name != "main":
            assert {m.rsplit(".", 1)[0] if m.count(".") > 2 else m for m in cli} \
                == {"gateway.cli.runtime"}, path


def test_the_checks_see_a_violation():
    """The checks above would catch what they look for."""
    tree = ast.parse("from core.db import _first\nfrom core import saga\n"
                     "import core.generation as g\ndef f():\n    saga._x\n    g._y\n"
                     "    from gateway.cli import runtime\n")
    assert [t for _, t in private_uses(tree)] == ["from core.db import _first", "saga._x", "g._y"]
    assert (7, "gateway.cli") in imported_modules(tree)


# -- adapters are built from explicit arguments, never from the node --------------

#: What a L{gateway.node.Node} offers; an adapter reading these off a C{node} digs through it.
NODE_PARTS = frozenset({"activation", "billing", "billing_service", "check_schema", "cipher",
                        "clock", "config", "keyring", "loyalty", "numbering", "queries",
                        "reactor", "reconciler", "runner", "store"})

#: Names looked up with C{getattr} to dig through a node or its loaded configuration.
DIGGING = frozenset({"node", "config", "main"})


def node_uses(tree) -> list[tuple[int, str]]:
    """(line, text) of each place C{tree} reaches through a node: C{x.node},
    C{node.<part>}, C{getattr(x, "main"|"config"|"node")}, or an import of
    C{gateway.node} or of the global reactor."""
    found = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Attribute):
            if n.attr == "node":
                found.append((n.lineno, "." + n.attr))
            elif isinstance(n.value, ast.Name) and n.value.id == "node" and n.attr in NODE_PARTS:
                found.append((n.lineno, "node." + n.attr))
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "getattr" \
                and len(n.args) >= 2 and isinstance(n.args[1], ast.Constant) \
                and n.args[1].value in DIGGING:
            found.append((n.lineno, "getattr(.., %r)" % n.args[1].value))
    for line, module in imported_modules(tree):
        if module in ("gateway.node", "twisted.internet.reactor"):
            found.append((line, "import " + module))
    return found


def test_adapters_take_explicit_arguments_not_the_node():
    """Channels and the GUI get what they use (activation service, queries, clock,
    settings) from L{gateway.adapters}: none digs through the node or its config,
    and none falls back to the global reactor."""
    found = ["%s:%d %s" % (path, line, text)
             for path, tree in sources("protocols", "admin")
             for line, text in node_uses(tree)]
    assert found == []


def test_the_node_check_sees_a_violation():
    tree = ast.parse("def make_resource(node):\n    s = getattr(getattr(node.config, 'main'), 'ivr')\n"
                     "    from twisted.internet import reactor as clock\n"
                     "    return ctx.node.runner, node.activation\n"
                     "def element(node):\n    node.text = 'x'\n")
    assert sorted(node_uses(tree)) == [
        (2, "getattr(.., 'main')"), (2, "node.config"), (3, "import twisted.internet.reactor"),
        (4, ".node"), (4, "node.activation")]


# -- adapters reach the store only through the core's queries ---------------------

ROOT = REPO
STORE = ("core.schema", "core.db", "core.units", "sqlalchemy")


def imports(package: str):
    """Yield (module path, imported module name) for every import under C{package}.

    @param package: a top-level package directory name.
    """
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield path.relative_to(ROOT).as_posix(), alias.name
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                yield path.relative_to(ROOT).as_posix(), node.module


def offending(packages, forbidden):
    """The imports under C{packages} of a module in (or under) C{forbidden}."""
    return sorted({(p, m) for pkg in packages for p, m in imports(pkg)
                   if any(m == f or m.startswith(f + ".") for f in forbidden)})


def test_adapters_do_not_import_the_store():
    """Channels and GUI pages reach the store only through the core's query and
    command functions: none imports the schema, the store or SQLAlchemy."""
    assert offending(["protocols", "admin"], STORE) == []


def test_the_checker_sees_imports_inside_functions():
    found = dict(offending(["gateway"], ("core.queries",)))
    assert found.get("gateway/cli/activation.py") == "core.queries"
