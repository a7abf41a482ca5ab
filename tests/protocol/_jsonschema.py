"""A small JSON Schema checker for the keywords ``hubbub.protocol.schema`` emits.

The test extras do not include ``jsonschema``; the generated schema uses a handful of
keywords, and :data:`KEYWORDS` lists every one this module understands, so a test can assert
that nothing in the schema goes unchecked.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ANNOTATIONS", "KEYWORDS", "errors", "keywords_in"]

ANNOTATIONS = frozenset({"$schema", "title", "description", "default", "discriminator", "contentEncoding"})
"""Keywords that constrain nothing."""

KEYWORDS = ANNOTATIONS | {
    "$ref",
    "$defs",
    "anyOf",
    "type",
    "enum",
    "properties",
    "required",
    "items",
    "additionalProperties",
}
"""Every keyword :func:`errors` checks or may ignore."""

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def keywords_in(schema: Any) -> set[str]:
    """Every keyword used anywhere in ``schema`` (names under ``properties`` / ``$defs`` excluded)."""
    found: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            found.add(key)
            if key in ("properties", "$defs"):
                for sub in value.values():
                    found |= keywords_in(sub)
            elif key not in ("discriminator", "default", "enum"):
                found |= keywords_in(value)
    elif isinstance(schema, list):
        for item in schema:
            found |= keywords_in(item)
    return found


def _is(value: Any, type_name: str) -> bool:
    if isinstance(value, bool) and type_name in ("integer", "number"):
        return False
    return isinstance(value, _TYPES[type_name])


def errors(instance: Any, schema: dict[str, Any], root: dict[str, Any], path: str = "$") -> list[str]:
    """Why ``instance`` does not match ``schema`` (``$ref``s resolve in ``root``); empty if it does."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        return errors(instance, root["$defs"][name], root, path)
    if "anyOf" in schema:
        branches = [errors(instance, branch, root, path) for branch in schema["anyOf"]]
        if all(branches):
            return [f"{path}: matches none of {len(branches)} alternatives: {branches}"]
        return []
    found: list[str] = []
    type_name = schema.get("type")
    if type_name is not None and not _is(instance, type_name):
        return [f"{path}: expected {type_name}, got {type(instance).__name__}"]
    if "enum" in schema and instance not in schema["enum"]:
        found.append(f"{path}: {instance!r} not one of {schema['enum']}")
    if isinstance(instance, dict):
        for key in schema.get("required", []):
            if key not in instance:
                found.append(f"{path}: missing required {key!r}")
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, value in instance.items():
            if key in properties:
                found += errors(value, properties[key], root, f"{path}.{key}")
            elif isinstance(extra, dict):
                found += errors(value, extra, root, f"{path}.{key}")
            elif extra is False:
                found.append(f"{path}: unexpected field {key!r}")
    if isinstance(instance, list) and "items" in schema:
        for i, item in enumerate(instance):
            found += errors(item, schema["items"], root, f"{path}[{i}]")
    return found
