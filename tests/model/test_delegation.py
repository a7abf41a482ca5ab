"""The delegated task record and its state machine: every pair of states, allowed or not."""

from __future__ import annotations

import itertools
import typing

import msgspec
import pytest

from hubbub import TERMINAL_STATES, DelegatedTask, TaskState
from hubbub.model.delegation import TRANSITIONS, allowed, is_terminal

STATES: tuple[str, ...] = typing.get_args(TaskState)
EXPECTED = {
    ("PENDING", "ASSIGNED"),
    ("PENDING", "FAILED"),
    ("PENDING", "CANCELLED"),
    ("PENDING", "TIMEOUT"),
    ("ASSIGNED", "IN_PROGRESS"),
    ("ASSIGNED", "PENDING"),
    ("ASSIGNED", "FAILED"),
    ("ASSIGNED", "CANCELLED"),
    ("ASSIGNED", "TIMEOUT"),
    ("IN_PROGRESS", "COMPLETED"),
    ("IN_PROGRESS", "PENDING"),
    ("IN_PROGRESS", "FAILED"),
    ("IN_PROGRESS", "CANCELLED"),
    ("IN_PROGRESS", "TIMEOUT"),
}


def test_the_seven_states_and_the_terminal_four() -> None:
    assert STATES == ("PENDING", "ASSIGNED", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT")
    assert set(TERMINAL_STATES) == {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"}
    assert set(TRANSITIONS) == set(STATES)


@pytest.mark.parametrize(("source", "dest"), list(itertools.product(STATES, STATES)))
def test_every_pair_of_states(source: str, dest: str) -> None:
    assert allowed(source, dest) is ((source, dest) in EXPECTED)


def test_terminal_states_go_nowhere_and_unknown_states_nowhere_either() -> None:
    for state in STATES:
        assert is_terminal(state) is (state in TERMINAL_STATES)
        assert (not TRANSITIONS[state]) is is_terminal(state)
    assert not allowed("DONE", "PENDING")
    assert not allowed("PENDING", "DONE")


def test_record_round_trips_through_json_with_any_input_and_result() -> None:
    task = DelegatedTask(
        task_id="0" * 32,
        capability="summarize",
        requester_id="r",
        worker_id="w",
        state="COMPLETED",
        input={"text": "long", "n": [1, 2.5, None]},
        result={"summary": "short"},
        ttl=30.0,
        attempts=1,
        channel_id="c",
        created_at="2026-01-01T00:00:00.000000Z",
        updated_at="2026-01-01T00:00:01.000000Z",
        deadline_at="2026-01-01T00:00:30.000000Z",
    )
    assert msgspec.json.decode(msgspec.json.encode(task), type=DelegatedTask) == task
    assert task.id == task.task_id
    assert task.finished
    assert (task.priority, task.max_retries, task.error, task.idempotency_key) == (0, 2, None, None)


def test_a_state_outside_the_seven_does_not_decode() -> None:
    raw = msgspec.json.encode(
        {
            "task_id": "t",
            "capability": "c",
            "requester_id": "r",
            "worker_id": None,
            "state": "DONE",
            "input": "x",
            "ttl": 1.0,
            "created_at": "",
            "updated_at": "",
            "deadline_at": "",
        }
    )
    with pytest.raises(msgspec.ValidationError, match="state"):
        msgspec.json.decode(raw, type=DelegatedTask)
