"""docs/architecture.md cannot drift: its worked examples run, its layer rules hold."""

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from acd.core import strategies
from acd.runtime import pbx, store
from protocols import messages

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
EXAMPLES = re.findall(r"^<!-- run -->\n```python\n(.*?)^```$", DOC, flags=re.M | re.S)
HEADINGS = [  # the section of each example: the last heading above it (outside code)
    re.findall(
        r"^#+ (.*)$", re.sub(r"^```.*?^```$", "", DOC[: run.start()], flags=re.M | re.S), re.M
    )[-1]
    for run in re.finditer(r"^<!-- run -->$", DOC, flags=re.M)
]

IO_MODULES = {
    "asyncio", "socket", "sqlite3", "threading", "time", "selectors", "subprocess",
    "serial", "aiomqtt", "paho", "psycopg", "drivers",
}  # fmt: skip
PROJECT = {"acd", "drivers", "protocols", "firmware_sim"}


def _registries() -> list[dict]:
    """Every registry the examples add to (restored in place: other modules hold them)."""
    return [
        strategies.REGISTRY,
        messages.MESSAGE_TYPES,
        messages.OPCODES,
        messages._BY_OPCODE,
        messages._BY_CLASS,
        pbx._registered,
        store._BACKENDS,
    ]


@pytest.fixture
def registries_kept():
    kept = [dict(r) for r in _registries()]
    yield
    for registry, before in zip(_registries(), kept, strict=True):
        registry.clear()
        registry.update(before)


def test_each_extension_point_has_a_worked_example():
    assert HEADINGS == [
        "Adding a routing strategy",
        "Adding a CTI message",
        "Adding a driver",
        "Adding a store",
    ]
    assert len(EXAMPLES) == len(HEADINGS)


@pytest.mark.parametrize("code", EXAMPLES, ids=HEADINGS)
def test_worked_example_runs(code, registries_kept):
    exec(compile(code, "docs/architecture.md", "exec"), {"__name__": "architecture_example"})


def test_a_message_taken_by_name_or_opcode_is_refused(registries_kept):
    with pytest.raises(ValueError, match="opcode 71 or name taken by MonitorStart"):
        messages.register(type("Other", (messages.MonitorStart,), {"__slots__": ()}), request=True)


def test_a_registered_message_is_answered_when_invalid_only_if_it_is_a_request(
    registries_kept,
):
    @dataclass(frozen=True, slots=True)
    class Ask(messages.Message):
        OPCODE: ClassVar[int] = 251
        device: str

    @dataclass(frozen=True, slots=True)
    class Tell(messages.Message):
        OPCODE: ClassVar[int] = 252
        device: str

    ask = messages.register(Ask, request=True)
    tell = messages.register(Tell, request=False)
    for cls in (ask, tell):  # both still decode
        assert messages.decode_message(messages.encode_message(cls(9, "201"))) == cls(9, "201")
    nak = messages.refusal(bytes([251, 0, 9, 5]), "truncated: Ask.device")
    assert nak == messages.NegativeAck(
        9, messages.ErrorCode.invalid_parameter, "truncated: Ask.device"
    )
    assert messages.refusal(bytes([252, 0, 9, 5]), "truncated: Tell.device") is None


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (anywhere in it, also under TYPE_CHECKING)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            if node.module in PROJECT:  # from acd import pbx
                found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _modules(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / "acd" / package).glob("*.py") if p.name != "__init__.py")


def test_every_module_of_acd_is_placed_in_the_layers():
    layers = DOC[: DOC.index("## Adding")]
    unplaced = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "acd").glob("**/*.py")
        if not p.name.startswith("__")
        and "cli" not in p.parts
        and not re.search(rf"[`/]{re.escape(p.name)}`", layers)
    ]
    assert not unplaced, f"docs/architecture.md does not place {unplaced}"


def test_the_wire_layer_imports_nothing_of_the_project():
    for path in (ROOT / "protocols").glob("*.py"):
        outside = {m for m in _imports(path) if m.split(".")[0] in PROJECT - {"protocols"}}
        assert not outside, f"{path.name} imports {outside}"


@pytest.mark.parametrize("path", _modules("core"), ids=lambda p: p.name)
def test_the_core_does_no_io_and_imports_only_the_core_and_the_configuration(path):
    imports = _imports(path)
    assert not {m for m in imports if m.split(".")[0] in IO_MODULES}
    outside = {
        m
        for m in imports
        if m.split(".")[0] in PROJECT
        and m not in {"acd", "acd.config", "acd.errors"}
        and not m.startswith("acd.core")
    }
    assert not outside, f"{path.name} imports {outside}"


# what each package of acd/ may not import: the rows above it
ABOVE = {
    "runtime": ("acd.planning", "acd.tools", "acd.cli", "firmware_sim"),
    "planning": ("acd.tools", "acd.cli"),
    "tools": ("acd.cli",),
}


@pytest.mark.parametrize("package", ABOVE)
def test_a_package_imports_nothing_from_the_rows_above_it(package):
    for path in _modules(package):
        bad = {m for m in _imports(path) if m.startswith(ABOVE[package])}
        assert not bad, f"acd/{package}/{path.name} imports {bad}"


def test_below_the_tools_nothing_imports_the_simulator_or_the_command_line():
    below = [*(ROOT / "drivers").glob("*.py"), *(ROOT / "protocols").glob("*.py")]
    for path in below:
        bad = {m for m in _imports(path) if m.startswith(("firmware_sim", "acd.cli"))}
        assert not bad, f"{path.name} imports {bad}"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_references_point_at_documents_in_the_repository():
    sources = [
        p
        for pattern in ("acd/**/*.py", "drivers/*.py", "protocols/*.py", "firmware-sim/*.py",
                        "bench/*.py", "tests/**/*.py", "docs/*.md", "README.md")
        for p in ROOT.glob(pattern)
    ]  # fmt: skip
    cited = "DESIGN" + " §"  # not spelled out here: this file would cite it
    outside = [p.name for p in sources if cited in p.read_text(encoding="utf-8")]
    assert not outside, f"{outside} cite the design guide, which is not in the repository"
    for doc in (ROOT / "docs").glob("*.md"):
        for target, anchor in re.findall(r"\]\(([\w-]+\.md)(?:#([\w-]+))?\)", doc.read_text()):
            assert (ROOT / "docs" / target).exists(), f"{doc.name} links to {target}"
            headings = re.findall(r"^#+ (.*)$", (ROOT / "docs" / target).read_text(), re.M)
            if anchor:
                assert anchor in map(_anchor, headings), f"{doc.name} links to {target}#{anchor}"
