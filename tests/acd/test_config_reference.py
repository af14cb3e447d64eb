"""docs/configuration.md lists every key the configuration accepts, under its section."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULES = [ROOT / "acd" / "config.py", ROOT / "acd" / "webconfig.py"]


def _literal(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _keys_by_class() -> dict[str, set[str]]:
    """The literal keys each ``from_section`` reads (``s.get("key", ...)``, ``s.section``)."""
    keys: dict[str, set[str]] = {}
    for module in MODULES:
        for cls in ast.parse(module.read_text()).body:
            if not isinstance(cls, ast.ClassDef):
                continue
            found = keys.setdefault(cls.name, set())
            for node in ast.walk(cls):
                if not isinstance(node, ast.Call) or not node.args:
                    pass
                elif isinstance(node.func, ast.Name) and node.func.id == "_secret":
                    name = node.args[-1].value  # _secret(s, "password"): it and its _env
                    found |= {name, f"{name}_env"}
                elif (
                    isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("get", "section")
                    and _literal(node.args[0])
                ):
                    found.add(node.args[0].value)
                if (  # "url" in s.data: a key read under a name chosen at run time
                    isinstance(node, ast.Compare)
                    and _literal(node.left)
                    and ast.unparse(node.comparators[0]).endswith(".data")
                ):
                    found.add(node.left.value)
    return keys


def _section_of_class() -> dict[str, str]:
    """``Config.load``'s ``Cls.from_section(root.section("name"))`` / ``(name_s...)``."""
    source = (ROOT / "acd" / "config.py").read_text()
    found = dict(re.findall(r'(\w+)\.from_section\(root\.section\("(\w+)"\)', source))
    found.update(re.findall(r"(\w+)\.from_section\((\w+)_s\b", source))
    return found


def _doc_sections() -> dict[str, str]:
    """Each ``## `[name...]` `` heading's body, by section name."""
    text = (ROOT / "docs" / "configuration.md").read_text()
    parts = re.split(r"^## ", text, flags=re.M)[1:]
    bodies: dict[str, str] = {}
    for part in parts:
        heading = re.match(r"`\[(\w+)", part)
        if heading:
            bodies[heading.group(1)] = bodies.get(heading.group(1), "") + part
    return bodies


def test_every_section_class_is_loaded_from_a_named_section():
    sections = _section_of_class()
    for cls, keys in _keys_by_class().items():
        if cls in ("Section", "Config") or not keys:
            continue
        assert cls in sections, f"{cls} is not read from a section of Config.load"


def test_every_key_read_is_documented_under_its_section():
    sections, bodies = _section_of_class(), _doc_sections()
    missing = []
    for cls, keys in _keys_by_class().items():
        if cls in ("Section", "Config") or not keys:
            continue
        name = sections[cls]
        assert name in bodies, f"docs/configuration.md has no section [{name}] ({cls})"
        body = bodies[name]
        for key in sorted(keys):
            forms = (f"`{key}`", f"`{key}.", f".{key}`", f".{key}]")
            if not any(form in body for form in forms):
                missing.append(f"[{name}] {key}")
    assert not missing, f"keys read by acd/config.py missing from docs/configuration.md: {missing}"
