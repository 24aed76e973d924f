"""The layering holds: no import cycles between seqlab's modules, every module imports on its
own, and the inference path (load + predict) never imports Lightning or the CLI's training
flags (which would import torch before it is needed)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(path: Path) -> set[str]:
    """seqlab modules imported when `path` is imported: module-level statements only (imports
    inside functions are lazy on purpose; `if TYPE_CHECKING:` blocks never run)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node) if isinstance(node, ast.Import | ast.ImportFrom | ast.Try) else []:
            if isinstance(sub, ast.ImportFrom) and sub.module and sub.module.startswith("seqlab"):
                found.add(sub.module)
                found.update(f"{sub.module}.{a.name}" for a in sub.names)
            elif isinstance(sub, ast.Import):
                found.update(a.name for a in sub.names if a.name.startswith("seqlab"))
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    return {name: {m for m in _top_level_imports(path) if m in modules and m != name}
            for name, path in modules.items()}


def test_no_import_cycles():
    graph = _graph()
    assert len(graph) > 20
    state: dict[str, int] = {}  # 1 visiting, 2 done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if nxt.startswith(node + "."):  # a package importing its own submodules is not a cycle
                continue
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_low_layers_import_nothing_above_them():
    graph = _graph()
    assert graph["seqlab.files"] <= {"seqlab.errors"}
    assert graph["seqlab.vocab"] == set()
    assert graph["seqlab.graphs"] <= {"seqlab.errors"}
    # the torch-free runtime finds its runner in the export's manifest, never through a task
    runtime = [name for name in graph if name == "seqlab.onnx" or name.startswith("seqlab.onnx.")]
    assert len(runtime) > 5  # the package and its modules, each checked
    for name in runtime:
        assert not any(m.startswith(("seqlab.tasks", "seqlab.families", "seqlab.training",
                                     "seqlab.export", "seqlab.graphs")) for m in graph[name]), name
    for name, imports in graph.items():
        if name.startswith("seqlab.families"):
            assert not any(m.startswith(("seqlab.data", "seqlab.tasks", "seqlab.training")) for m in imports), name
        if name.startswith("seqlab.data"):
            assert not any(m.startswith(("seqlab.tasks", "seqlab.families", "seqlab.bundle")) for m in imports), name


def test_every_module_imports_and_inference_skips_lightning(tmp_path):
    names = sorted(n for n in _graph() if n != "seqlab.__main__")
    script = f"""
import importlib, json, sys
for name in {names!r}:
    if name.startswith(("seqlab.training", "seqlab.serve")):
        continue
    importlib.import_module(name)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "lightning")))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []  # importing every inference module loads no Lightning
    script = ("import sys\nfrom seqlab.cli import main\ntry:\n    main(['predict', '--help'])\n"
              "except SystemExit:\n    pass\nprint('torch loaded:', 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "usage: seqlab predict" in out.stdout and "torch loaded: False" in out.stdout
