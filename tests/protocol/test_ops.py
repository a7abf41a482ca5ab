"""Control-plane op names: ag2's set exactly, plus hubbub's own."""

from __future__ import annotations

import inspect
import re

from ag2.network.hub.core import Hub as Ag2Hub

from hubbub.protocol import ops


def test_ag2_ops_are_exactly_those_ag2s_hub_dispatches() -> None:
    source = inspect.getsource(Ag2Hub._dispatch_request_op)
    dispatched = set(re.findall(r'\bop == "(\w+)"', source))
    assert len(dispatched) == 30
    assert dispatched == ops.AG2_OPS


def test_hubbub_ops() -> None:
    assert sorted(ops.HUBBUB_OPS) == [
        "attach",
        "audit_query",
        "broadcast",
        "checkpoint_delete",
        "checkpoint_get",
        "checkpoint_list",
        "checkpoint_put",
        "delegate",
        "discover",
        "hub_agents",
        "hub_channels",
        "hub_status",
        "hub_wal",
        "post_reply",
        "replay",
        "task_cancel",
        "task_event",
        "task_list",
        "task_status",
        "task_wait",
        "turn_context",
    ]
    assert not ops.HUBBUB_OPS & ops.AG2_OPS
    assert ops.OPS == ops.AG2_OPS | ops.HUBBUB_OPS


def test_every_constant_is_its_own_lowercased_name_and_listed() -> None:
    constants = {name: getattr(ops, name) for name in ops.__all__ if not name.endswith("OPS")}
    assert len(constants) == len(ops.OPS)
    for name, value in constants.items():
        assert value == name.lower()
        assert value in ops.OPS
