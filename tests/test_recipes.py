"""The recipes the benchmarks report as each family's default (bench/common.py SUITE_DEFAULTS,
spelled out in bench/suite.py RECIPES) are what `seqlab train --family X` gives a classifier:
a change of default that forgets the other side fails here, not in a reader's hands."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from seqlab.config import build_config

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def suite():
    sys.path.insert(0, str(BENCH))
    try:
        import common
        import suite

        yield suite, common.SUITE_DEFAULTS
    finally:
        sys.path.remove(str(BENCH))


@pytest.mark.parametrize("family", ["linear", "bow", "cnn", "lstm", "gru"])
def test_each_familys_benchmarked_default_is_its_classify_default(suite, family):
    module, defaults = suite
    recipe = module.RECIPES[family][defaults[family]]
    cfg = build_config(task="classify", data="cr", family=family)
    for name, value in recipe.items():
        section, _, key = name.partition(".")
        assert getattr(getattr(cfg, section), key) == value, (family, defaults[family], name)
