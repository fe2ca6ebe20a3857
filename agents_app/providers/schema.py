"""A small JSON Schema validator for the structured outputs the brain asks models for.

It covers the subset Morvo's schemas use: ``type`` (one or a list), ``required``, ``enum``,
``properties``, ``additionalProperties: false``, ``items``, ``minimum``/``maximum``,
``minLength``/``maxLength`` and ``minItems``/``maxItems``. The first problem found is reported
with its path, in words a model can act on when asked to repair its answer.
"""

from __future__ import annotations

import json
import re
from typing import Any


class SchemaError(ValueError):
    pass


_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def _is_type(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(name, (object,)))


def validate(value: Any, schema: dict[str, Any], path: str = "$") -> None:
    """Raise ``SchemaError`` describing the first place ``value`` breaks ``schema``."""
    expected = schema.get("type")
    if expected is not None:
        names = expected if isinstance(expected, list) else [expected]
        if not any(_is_type(value, name) for name in names):
            raise SchemaError(f"{path} must be of type {' or '.join(names)}, got {json.dumps(value)[:80]}")
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaError(f"{path} must be one of {json.dumps(schema['enum'], ensure_ascii=False)}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise SchemaError(f"{path} must be at least {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise SchemaError(f"{path} must be at most {schema['maximum']}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            raise SchemaError(f"{path} must have at least {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise SchemaError(f"{path} must have at most {schema['maxLength']} characters")
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                raise SchemaError(f"{path} is missing the required property {name!r}")
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is False:
            extra = sorted(set(value) - set(properties))
            if extra:
                raise SchemaError(f"{path} has properties the schema does not allow: {', '.join(extra)}")
        for name, subschema in properties.items():
            if name in value:
                validate(value[name], subschema, f"{path}.{name}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            raise SchemaError(f"{path} must have at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise SchemaError(f"{path} must have at most {schema['maxItems']} items")
        if isinstance(schema.get("items"), dict):
            for index, item in enumerate(value):
                validate(item, schema["items"], f"{path}[{index}]")


def parse_and_validate(content: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The JSON object in ``content`` (a surrounding code fence is tolerated), validated."""
    match = _FENCE.match(content or "")
    text = match.group(1) if match else (content or "").strip()
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise SchemaError(f"the reply is not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise SchemaError("the reply must be one JSON object")
    validate(value, schema)
    return value
