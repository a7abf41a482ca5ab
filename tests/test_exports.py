"""``hubbub.__all__`` is the public API: every name exists, and every op the hub serves is documented."""

from __future__ import annotations

import hubbub
from hubbub.hub import session
from hubbub.protocol import ops


def test_all_names_resolve() -> None:
    missing = [name for name in hubbub.__all__ if not hasattr(hubbub, name)]
    assert missing == []
    assert len(set(hubbub.__all__)) == len(hubbub.__all__)


def test_public_classes_come_from_their_submodules() -> None:
    for name in hubbub.__all__:
        obj = getattr(hubbub, name)
        module = getattr(obj, "__module__", None)
        if module is not None and isinstance(obj, type):
            assert module.startswith("hubbub."), (name, module)


def test_every_served_op_is_documented_in_protocol_ops() -> None:
    assert set(session._OPS) <= ops.OPS
