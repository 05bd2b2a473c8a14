"""The patch registry: history as checked, each patch read only where its commit
changed the code, presets in release order, and the generated docs table in step."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import vcoresim
from vcoresim.kvm.catalog import patches_markdown, presets_markdown
from vcoresim.kvm.patches import ORDER, PATCHES, PRESETS, resolve_kernel

SRC = Path(vcoresim.__file__).parent
DOCS = SRC.parent.parent / "docs" / "scenarios.md"


def _patch_reads() -> dict[str, set[str]]:
    """For every ``*.patch("name")`` call in the model, the function that makes it."""
    found: dict[str, set[str]] = {}
    for path in sorted([*(SRC / "kvm").glob("*.py"), *(SRC / "machine").glob("*.py")]):
        tree = ast.parse(path.read_text())

        def visit(node: ast.AST, where: str) -> None:
            for child in ast.iter_child_nodes(node):
                name = where
                if isinstance(child, ast.FunctionDef):
                    name = child.name if not isinstance(node, ast.ClassDef) else f"{node.name}.{child.name}"
                if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute) and child.func.attr == "patch" and child.args and isinstance(child.args[0], ast.Constant):
                    found.setdefault(child.args[0].value, set()).add(where)
                visit(child, name)

        visit(tree, "<module>")
    return found


def test_each_patch_is_read_exactly_where_its_commit_changed_the_code() -> None:
    reads = _patch_reads()
    assert set(reads) <= set(PATCHES), f"unknown patch names read: {set(reads) - set(PATCHES)}"
    for name, p in PATCHES.items():
        assert reads.get(name, set()) == set(p.sites), f"{name}: read in {sorted(reads.get(name, set()))}, registry says {sorted(p.sites)}"


def test_history_as_checked_against_kernel_sources() -> None:
    """Issue 14's review, verified release by release (notes in docs/scenarios.md)."""
    assert PATCHES["stray-ipi-guard"].release == "v3.5" and PATCHES["stray-ipi-guard"].commit == "4e769eb247e9"
    assert (PATCHES["late-join-release-after-wait"].commit, PATCHES["late-join-release-after-wait"].release) == ("2f12f0343684", "v3.8")
    assert (PATCHES["start-secondary-races"].commit, PATCHES["start-secondary-races"].release) == ("7b444c6710c6", "v3.8")
    assert (PATCHES["idle-wakeup-test-req"].commit, PATCHES["idle-wakeup-test-req"].seed_commit) == ("56376c5864f8", "6db6d3658a3b")
    assert (PATCHES["entry-irq-hard-disable"].commit, PATCHES["entry-irq-hard-disable"].seed_commit) == ("8b24e69fc47e", "bf9f6c86b1f6")
    assert PATCHES["rm-cede"].release == "v3.2" and PATCHES["rm-cede"].commit_checked  # seen in a blame of powerpc.c
    assert "v3.3" not in PRESETS and "v3.6" not in PRESETS
    assert PRESETS["v3.1"].patches == {"smt-guests"}
    assert PRESETS["v3.5"].patches == PRESETS["v3.7"].patches == {"smt-guests", "rm-cede", "late-join-first-run", "stray-ipi-guard"}
    assert PRESETS["v3.8"].patches == PRESETS["v3.18"].patches == PRESETS["v3.7"].patches | {"late-join-release-after-wait", "late-join-every-run", "start-secondary-races"}
    assert PRESETS["v3.19"].patches == PRESETS["v3.8"].patches | {"idle-nap-real-mode"}
    from vcoresim.kvm.config import KVM_MAX_VCORES, NR_CPUS

    assert KVM_MAX_VCORES == NR_CPUS


def test_presets_in_release_order_each_adding_its_release() -> None:
    names = list(PRESETS)
    keys = [tuple(int(x) for x in n[1:].split(".")) for n in names]
    assert keys == sorted(keys) and names[-1] == "v4.17"
    for a, b in zip(names, names[1:]):
        assert PRESETS[a].patches <= PRESETS[b].patches
    assert list(ORDER) == sorted(ORDER, key=lambda n: tuple(int(x) for x in PATCHES[n].release[1:].split(".")))


@pytest.mark.parametrize("name", sorted(PATCHES))
def test_requires_is_enforced(name: str) -> None:
    for req in PATCHES[name].requires:
        with pytest.raises(Exception, match=f"{name} needs"):
            resolve_kernel("v4.17", {req: False, name: True}, "kernel")


def test_docs_tables_are_generated_from_the_registry() -> None:
    text = DOCS.read_text()
    for tag, table in (("patches", patches_markdown()), ("presets", presets_markdown())):
        begin = text.index(f"<!-- {tag}:begin")
        body = text[text.index("\n", begin) + 1 : text.index(f"<!-- {tag}:end -->")]
        assert body == table, f"docs/scenarios.md's {tag} table is stale: run 'vcoresim list --markdown'"
