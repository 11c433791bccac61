"""Configuration: validate against the JSON schema, fill defaults, name bad keys."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import yaml

from saldissect.core.errors import UserError


class ConfigError(UserError, ValueError):
    """A config value or key the schema rejects; the message names the key."""


def load_schema(path: str | Path) -> dict:
    with open(path) as handle:
        return yaml.safe_load(handle)


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def validate_config(config: dict, schema: dict) -> dict:
    """Return ``config`` with defaults filled in; raise `ConfigError` listing every problem.

    Each problem is one line, ``config key 'a.b.c': <reason>``.
    """
    filled = fill_defaults(copy.deepcopy(config), schema, schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(filled), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = []
        for error in errors:
            path = list(error.absolute_path)
            if error.validator == "additionalProperties":
                allowed = sorted(error.schema.get("properties", {}))
                hint = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
                lines.append(f"config key '{_key(path)}': {error.message}{hint}")
            elif error.validator is None:  # a false schema: a key refused in this context
                lines.extend(_refused(filled, path, _at(schema, error.schema_path)))
            else:
                lines.append(f"config key '{_key(path)}': {error.message}")
        lines = list(dict.fromkeys(lines))  # one line per refused key
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines))
    return filled


def _at(node, path):
    for part in path:
        node = node[part]
    return node


def _refused(config: dict, path: list, properties: dict) -> list[str]:
    """One line per key that ``properties`` (a ``{key: false}`` schema) refuses in
    the object at ``path``, naming its architecture or data source where it has one."""
    entry = _at(config, path)
    owner = next((key for key in ("arch", "source") if key in entry), None)
    where = f"to {owner} {entry[owner]}" if owner else "here"
    return [
        f"config key '{_key([*path, key])}': does not apply {where}"
        for key, allowed in properties.items()
        if allowed is False and key in entry
    ]


def _resolve(node: dict, root: dict) -> dict:
    ref = node.get("$ref")
    if not ref:
        return node
    target = root
    for part in ref.lstrip("#/").split("/"):
        target = target[part]
    return {**target, **{k: v for k, v in node.items() if k != "$ref"}}


def fill_defaults(value, node: dict, root: dict):
    """Recursively insert schema defaults for missing keys (objects only)."""
    node = _resolve(node, root)
    if not isinstance(value, dict) or node.get("type") != "object":
        return value
    for key, sub in node.get("properties", {}).items():
        sub = _resolve(sub, root)
        if key not in value and "default" in sub:
            value[key] = copy.deepcopy(sub["default"])
        if key in value:
            value[key] = fill_defaults(value[key], sub, root)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        for key in set(value) - set(node.get("properties", {})):
            value[key] = fill_defaults(value[key], extra, root)
    return value
