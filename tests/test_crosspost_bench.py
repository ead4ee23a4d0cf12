"""The cross-post quality gate: bench/crosspost.py on both labelled sets, real pipeline.

Precision and recall are quality figures, not timings. Through the store (candidates from
its index, aggregator.store.stories) both targets must hold on both sets.
"""

from __future__ import annotations

import pytest

from bench.crosspost import SET_NAMES
from bench.crosspost import TARGET_PRECISION
from bench.crosspost import TARGET_RECALL
from bench.crosspost import evaluate
from bench.crosspost import report


@pytest.mark.parametrize("set_name", SET_NAMES)
def test_store_pipeline_meets_the_targets(set_name: str) -> None:
    result = evaluate(set_name)
    assert not result.not_found, report(result)
    assert result.overall.precision >= TARGET_PRECISION, report(result)
    assert result.overall.recall >= TARGET_RECALL, report(result)
