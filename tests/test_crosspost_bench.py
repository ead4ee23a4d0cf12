"""The cross-post quality gate: bench/crosspost.py on both labelled sets, real pipeline.

Precision and recall are quality figures, not timings. Through the store as it is today
(candidates by same title key or same link only) precision must hold the target; with every
item of the time window as a candidate (the index the store is to get, see
dedupe.candidate_keys) both targets must hold.
"""

from __future__ import annotations

import pytest

from bench.crosspost import SET_NAMES
from bench.crosspost import TARGET_PRECISION
from bench.crosspost import TARGET_RECALL
from bench.crosspost import evaluate
from bench.crosspost import report


@pytest.mark.parametrize("set_name", SET_NAMES)
def test_rule_meets_the_targets_with_window_candidates(set_name: str) -> None:
    result = evaluate(set_name, candidates="window")
    assert not result.not_found, report(result)
    assert result.overall.precision >= TARGET_PRECISION, report(result)
    assert result.overall.recall >= TARGET_RECALL, report(result)


@pytest.mark.parametrize("set_name", SET_NAMES)
def test_store_pipeline_keeps_precision(set_name: str) -> None:
    result = evaluate(set_name, candidates="store")
    assert not result.not_found, report(result)
    assert result.overall.precision >= TARGET_PRECISION, report(result)
