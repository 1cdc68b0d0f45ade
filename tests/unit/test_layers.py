"""Arrows point down (ARCHITECTURE.md): mlp -> workloads -> the output contract; stacks -> components.

Every import statement of every module is read (module level and inside functions alike), so a
lazy import that runs back up is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "components": ("stacks", "workloads", "mlp", "policy", "click"),
    "stacks": ("workloads", "mlp", "click"),
    "workloads": ("components", "mlp", "policy", "click"),
}
"""Layer -> top-level packages it may never import (the command line, click included, lives in mlp/)."""
WORKLOADS_FROM_STACKS = {"stacks.outputs", "stacks.files"}
"""What workloads may take from stacks/: the output contract and the guarded file loader (both leaves)."""


def imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import in ``path``; ``from x import y`` counts as ``x.y`` too."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def modules(layer: str) -> list[Path]:
    return sorted(p for p in (ROOT / layer).rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_import_runs_back_up(layer: str) -> None:
    assert modules(layer), f"no modules under {layer}/"
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in modules(layer)
        for line, module in imports(path)
        if module.split(".")[0] in FORBIDDEN[layer]
    ]
    assert not wrong, "\n".join(wrong)


def test_workloads_take_only_the_contract_from_stacks() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in modules("workloads")
        for line, module in imports(path)
        if module.split(".")[0] == "stacks"
        and module != "stacks"
        and not any(
            module == allowed or module.startswith(allowed + ".") for allowed in WORKLOADS_FROM_STACKS
        )
    ]
    assert not wrong, "\n".join(wrong)


def test_the_reader_sees_lazy_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from mlp.common import Failed\n    import components.helm\n")
    assert imports(module) == [(2, "mlp.common"), (2, "mlp.common.Failed"), (3, "components.helm")]
