"""docs/protocol.md tells the truth: every op, frame field, envelope field and error code, and
every JSON frame it shows is one the hub would accept or send."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

import hubbub.errors
from hubbub.errors import HubbubError, RateLimitedError
from hubbub.hub import session
from hubbub.model.envelope import Envelope
from hubbub.protocol import ops
from hubbub.protocol.codec import decode_frame
from hubbub.protocol.failures import wire_code
from hubbub.protocol.frames import FRAME_TYPES
from hubbub.protocol.schema import json_schema
from tests.protocol._jsonschema import errors

DOC = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"
TEXT = DOC.read_text()


def _section(title: str) -> str:
    """The text under heading ``title`` up to the next heading of the same or a higher level."""
    match = re.search(rf"^(#+) {re.escape(title)}\n", TEXT, re.MULTILINE)
    assert match is not None, f"no heading {title!r} in {DOC.name}"
    level = len(match[1])
    end = re.compile(rf"^#{{1,{level}}} ", re.MULTILINE).search(TEXT, match.end())
    return TEXT[match.end() : end.start() if end else len(TEXT)]


def _table(section: str) -> list[list[str]]:
    """The rows of the first Markdown table in ``section`` (header and rule left out)."""
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines[start + 2 : end]]


def _codes(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_every_served_op_is_documented_and_only_those() -> None:
    documented = re.findall(r"^#### `(\w+)`$", _section("Operations"), re.MULTILINE)
    not_served = set(_codes(_section("Not served").strip().split("\n\n")[-1]))
    assert len(documented) == len(set(documented))
    assert set(documented) == set(session._OPS)
    assert not_served == ops.OPS - set(session._OPS)
    hubbub_only = set(re.findall(r"^#### `(\w+)`\n\*hubbub\*", _section("Operations"), re.MULTILINE))
    assert hubbub_only == ops.HUBBUB_OPS


def test_frames_table_lists_exactly_each_frames_fields() -> None:
    rows = _table(_section("Frames"))
    assert sorted(_codes(row[0])[0] for row in rows) == sorted(FRAME_TYPES)
    for row in rows:
        kind = _codes(row[0])[0]
        documented = re.findall(r"`(\w+)`:", row[2])
        assert documented == [f.name for f in msgspec.structs.fields(FRAME_TYPES[kind])], kind


def test_envelope_table_lists_exactly_the_envelope_fields() -> None:
    rows = _table(_section("Envelopes and event types"))
    assert [_codes(row[0])[0] for row in rows] == [f.name for f in msgspec.structs.fields(Envelope)]


def test_error_table_has_every_code_and_how_it_travels() -> None:
    rows = _table(_section("Requests and errors").split("The codes")[1])
    classes = [getattr(hubbub.errors, name) for name in hubbub.errors.__all__]
    errors_by_code: dict[str, type[HubbubError]] = {
        cls.code: cls for cls in classes if isinstance(cls, type) and issubclass(cls, HubbubError)
    }
    documented = {_codes(row[0])[0]: _codes(row[1])[0] for row in rows}
    assert set(documented) == set(errors_by_code)
    for code, travels_as in documented.items():
        cls = errors_by_code[code]
        exc = RateLimitedError("x", retry_after=1.0) if cls is RateLimitedError else cls("x")
        assert travels_as == wire_code(exc), code


def _json_blocks() -> list[Any]:
    """Every value shown in a ```json block (a block may hold one value, or one per line)."""
    values: list[Any] = []
    for block in re.findall(r"^```json\n(.*?)^```$", TEXT, re.MULTILINE | re.DOTALL):
        try:
            values.append(json.loads(block))
        except json.JSONDecodeError:
            values += [json.loads(line) for line in block.splitlines() if line.strip()]
    return values


def test_every_json_example_is_a_valid_frame() -> None:
    frames = _json_blocks()
    assert len(frames) > 30
    schema = json_schema()
    for frame in frames:
        decode_frame(json.dumps(frame))
        assert errors(frame, schema, schema) == [], frame


@pytest.mark.parametrize("target", sorted(set(re.findall(r"\]\(#([^)]+)\)", TEXT))))
def test_internal_links_resolve(target: str) -> None:
    slugs: list[str] = []
    for heading in re.findall(r"^#+ (.+)$", TEXT, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = slugs.count(slug) + sum(1 for s in slugs if re.fullmatch(rf"{re.escape(slug)}-\d+", s))
        slugs.append(f"{slug}-{count}" if count else slug)
    assert target in slugs
