"""bench/rounds.py finds the round function it times by name, newest first, and says clearly
when a tree has none it knows (or one it cannot call), instead of timing something else."""

from __future__ import annotations

import pytest

from aggregator.ingest.poll import poll_all
from bench.rounds import ROUND_FUNCTIONS
from bench.rounds import RoundFunctionError
from bench.rounds import round_arguments
from bench.rounds import round_function


def test_today_s_tree_is_timed_through_poll_all() -> None:
    name, function = round_function(ROUND_FUNCTIONS)
    assert name == "aggregator.ingest.poll:poll_all"
    assert function is poll_all


def test_the_first_existing_name_wins() -> None:
    name, _ = round_function(["aggregator.ingest.nothing:round", "aggregator.ingest.poll:poll_all"])
    assert name == "aggregator.ingest.poll:poll_all"


def test_no_known_function_names_every_one_tried() -> None:
    with pytest.raises(RoundFunctionError) as raised:
        round_function(["aggregator.ingest.nothing:poll_round", "aggregator.ingest.poll:nothing"])
    message = str(raised.value)
    assert "aggregator.ingest.nothing:poll_round (no module aggregator.ingest.nothing)" in message
    assert "aggregator.ingest.poll:nothing (no such function)" in message


def test_arguments_are_the_ones_the_signature_names() -> None:
    def round_of(config: object, store: object, *, batch: int = 10) -> None:
        pass

    available: dict[str, object] = {"config": 1, "store": 2, "fetcher": 3, "sources": 4}
    assert round_arguments(round_of, available) == {"config": 1, "store": 2}


def test_a_required_argument_it_cannot_give_is_an_error() -> None:
    def round_of(config: object, writer: object) -> None:
        pass

    with pytest.raises(RoundFunctionError, match="requires 'writer'"):
        round_arguments(round_of, {"config": 1})
