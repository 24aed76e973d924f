"""An export folder (`seqlab export DIR --format onnx`): finding it, reading its manifest and
config.json (as plain JSON), refusing one that is incomplete, too old or stale (exported from
other weights than the bundle beside it), and opening its graphs in onnxruntime."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from seqlab.errors import SeqlabError

MANIFEST = "onnx.json"  # the same name seqlab.export writes
EXTRA_HINT = "pip install 'seqlab[onnx]'"


def find_export(directory: str | Path) -> Path:
    """The exported folder: `directory` itself, or its onnx/ subfolder (export's default)."""
    directory = Path(directory)
    for candidate in (directory, directory / "onnx"):
        if (candidate / MANIFEST).is_file():
            return candidate
    raise SeqlabError(f"{directory}: no ONNX export here (no {MANIFEST}); make one with "
                      f"'seqlab export {directory} --format onnx'")


def read_export(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The export's manifest and config.json, checked: complete, valid, fresh, recent enough."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        meta = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SeqlabError(f"{folder}: incomplete export ({Path(exc.filename).name} missing); rerun seqlab export") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SeqlabError(f"{folder}: not valid JSON ({exc}); rerun seqlab export") from None
    check_fresh(folder, manifest)
    if manifest.get("format_version", 0) < 2:
        raise SeqlabError(f"{folder}: exported by an older seqlab; export again: seqlab export DIR --format onnx")
    return manifest, meta


def check_fresh(folder: Path, manifest: dict[str, Any]) -> None:
    """An export inside a bundle folder (the default DIR/onnx) must come from the weights
    beside it: a retrained bundle with a stale export is refused. Checked by size, then by
    sha256 only when the size matches (a copied folder keeps both)."""
    made_from = manifest.get("weights")
    if not made_from or not (folder.parent / "config.json").is_file():
        return
    path = folder.parent / made_from["file"]
    if not path.is_file():
        return
    stale = path.stat().st_size != made_from["bytes"]
    if not stale:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        stale = digest.hexdigest() != made_from["sha256"]
    if stale:
        raise SeqlabError(f"{folder}: exported from other weights than {path} (retrained since?); "
                          f"export again: seqlab export {folder.parent} --format onnx")


def open_session(path: Path, threads: int | None):
    """An onnxruntime session of one graph file, on the CPU (`threads`: intra-op threads)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise SeqlabError(f"onnxruntime is not installed: --runtime onnx needs the onnx extra ({EXTRA_HINT})") from None
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if not path.is_file():
        raise SeqlabError(f"{path}: missing; the export is incomplete (rerun seqlab export)")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
