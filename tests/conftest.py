"""Shared fixtures: the real datasets beside the repo (../shared/data), read once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# One thread per test process: tiny models run no slower, and timings stay sane when the
# machine's other core is busy (two OpenMP threads on one free core run ~10x slower).
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")  # and the seqlab subprocesses tests start

# The repo root's parent holds shared/ both here and in CI clones: never hard-code it.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (read-only real datasets), or skip when this checkout lacks it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA} (expected shared/ beside the repo)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def imdb_real(shared_data: Path) -> dict[str, list[dict[str, str]]]:
    """The full IMDB archive read once per test session (about 2 s)."""
    from seqlab.data.datasets import load_dataset

    archive = shared_data / "imdb" / "aclImdb_v1.tar.gz"
    if not archive.is_file():
        pytest.skip(f"{archive} not found")
    return load_dataset("imdb", data_dir=shared_data)
