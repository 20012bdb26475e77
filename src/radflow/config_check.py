"""The one check of the workflow configuration, run by the Snakefile when it loads.

:func:`check_config` rejects retired keys (:func:`radflow.settings.check_retired_keys`), turns the
text that ``snakemake --config`` passes for nested values back into numbers and booleans where
the schema asks for them (:func:`coerce_config_text`), fills the schema's defaults and validates
``config`` against ``config/schema/config.schema.yaml``. A violation is a :class:`ConfigError`
whose message is one line per problem (at most :data:`MAX_PROBLEMS`): the key, what is wrong
and, for a misspelt key or value, the nearest valid one (``difflib``).

:func:`check_config_or_exit` is what the Snakefile calls: it prints that message to stderr and
exits with status 1, so that Snakemake adds no traceback and no dump of the schema and the
configuration. ``RADFLOW_VERBOSE=1`` (or ``snakemake --verbose``) raises the error instead, with
jsonschema's full report (the schema and the offending values) appended.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema import validators
from jsonschema.exceptions import ValidationError

from radflow.errors import ConfigError
from radflow.settings import check_retired_keys

#: Set to 1 for jsonschema's full report (schema and values) with a configuration error.
VERBOSE_ENV = "RADFLOW_VERBOSE"
#: Problems listed in the short message; the rest are counted.
MAX_PROBLEMS = 3
#: The schema, relative to the repository root.
SCHEMA = "config/schema/config.schema.yaml"

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "number": (int, float), "integer": (int,), "boolean": (bool,), "null": (type(None),)}


def load_schema(path: str | Path) -> dict[str, Any]:
    """The configuration schema (YAML) at ``path``."""
    with open(path, encoding="utf-8") as fh:
        schema: dict[str, Any] = yaml.safe_load(fh)
    return schema


def _validator(schema: Mapping[str, Any]) -> Any:
    """A Draft 2020-12 validator that fills ``default`` values of missing properties."""
    base = jsonschema.Draft202012Validator
    check_properties = base.VALIDATORS["properties"]

    def properties_with_defaults(validator: Any, properties: Mapping[str, Any], instance: Any,
                                 schema: Mapping[str, Any]) -> Iterator[ValidationError]:
        if isinstance(instance, MutableMapping):
            for name, sub in properties.items():
                if isinstance(sub, Mapping) and "default" in sub:
                    instance.setdefault(name, sub["default"])
        yield from check_properties(validator, properties, instance, schema)

    return validators.extend(base, {"properties": properties_with_defaults})(schema)


def _type_errors(errors: Sequence[ValidationError]) -> Iterator[ValidationError]:
    """Every ``type`` error, also those nested in ``oneOf``/``anyOf`` contexts."""
    for error in errors:
        if error.validator == "type":
            yield error
        yield from _type_errors(error.context or [])


def _as_json_type(text: str, wanted: Sequence[str]) -> tuple[bool, Any]:
    """``(True, value)`` when ``text`` read as YAML is a value of one of the ``wanted`` types."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return False, None
    for name in wanted:
        types = _JSON_TYPES.get(name, ())
        if isinstance(value, types) and not (name != "boolean" and isinstance(value, bool)):
            return True, value
    return False, None


def coerce_config_text(config: MutableMapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """Read text values as YAML where the schema wants a number, an integer or a boolean.

    ``snakemake --config 'geometry={slice_spacing_rtol: 0.05}'`` reads nested values (and
    ``true``/``false``) as text; the schema would then reject ``'0.05'``. Each such value is
    replaced in place when its YAML reading has a type the schema allows there.

    Returns
    -------
    list of str
        The dotted keys whose values were converted.
    """
    changed: list[str] = []
    for _ in range(100):  # one pass per nesting level is enough; bounded against surprises
        fixes = []
        for error in _type_errors(list(_validator(schema).iter_errors(config))):
            wanted = error.validator_value
            wanted = [wanted] if isinstance(wanted, str) else list(wanted)
            if isinstance(error.instance, str):
                ok, value = _as_json_type(error.instance, wanted)
                if ok:
                    fixes.append((tuple(error.absolute_path), value))
        if not fixes:
            return changed
        for path, value in fixes:
            node: Any = config
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = value
            changed.append(key_name(path))
    return changed


def key_name(path: Sequence[str | int]) -> str:
    """``('extract', 'image_types', 0, 'kernel')`` -> ``extract.image_types[0].kernel``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _all_keys(schema: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """Dotted names of every key the schema declares (sections and their keys)."""
    for name, sub in schema.get("properties", {}).items():
        yield prefix + name
        if isinstance(sub, Mapping) and "properties" in sub:
            yield from _all_keys(sub, prefix + name + ".")


def _nearest(word: str, choices: Sequence[str]) -> str:
    """The choice closest to ``word``, ignoring case (``Mr`` -> ``MR``); "" when none is close."""
    lowered = {c.lower(): c for c in choices}
    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else ""


def _unknown_key(error: ValidationError, root: Mapping[str, Any]) -> list[str]:
    """One line per key that ``additionalProperties: false`` rejects, with the nearest key."""
    declared = list(error.schema.get("properties", {})) if isinstance(error.schema, Mapping) else []
    instance = error.instance if isinstance(error.instance, Mapping) else {}
    lines = []
    for key in [k for k in instance if k not in declared]:
        where = list(error.absolute_path)
        guess = _nearest(str(key), declared)
        if guess:
            guess = key_name([*where, guess])
        else:  # a key of one section written in another (or at the top level)
            everywhere = list(_all_keys(root))
            leaves = {k.rsplit(".", 1)[-1]: k for k in everywhere}
            guess = leaves.get(str(key), "") or _nearest(key_name([*where, key]), everywhere)
        hint = f" (did you mean '{guess}'?)" if guess else ""
        lines.append(f"unknown key '{key_name([*where, key])}'{hint}")
    return lines


def describe(error: ValidationError, root: Mapping[str, Any]) -> list[str]:
    """Short lines for one schema violation: the key, what is wrong, the nearest valid value."""
    while error.context:  # oneOf / anyOf: the alternative that got deepest into the value
        # (on a tie, one whose type matched: {Mr: ...} is an unknown key, not "not a string")
        error = max(error.context, key=lambda e: (len(e.absolute_path), e.validator != "type"))
    key = key_name(list(error.absolute_path))
    value = error.instance
    if error.validator == "additionalProperties":
        return _unknown_key(error, root)
    if error.validator == "type":
        wanted = error.validator_value
        wanted = " or ".join([wanted] if isinstance(wanted, str) else wanted)
        hint = ""
        if isinstance(value, str) and wanted in ("array", "object"):
            hint = " (snakemake --config passes this as text: set it in a --configfile)"
        elif wanted == "string" and isinstance(value, int | float) and not isinstance(value, bool):
            hint = f" (snakemake --config read a number: quote it, --config '{key}=\"{value}\"')"
        return [f"'{key}' must be of type {wanted}, got {value!r}{hint}"]
    if error.validator in ("enum", "const"):
        allowed = error.validator_value if error.validator == "enum" else [error.validator_value]
        guess = _nearest(str(value), [str(a) for a in allowed])
        hint = f" (did you mean '{guess}'?)" if guess else ""
        return [f"'{key}' must be one of {', '.join(map(str, allowed))}, got {value!r}{hint}"]
    return [f"'{key}': {error.message}"]


def _problems(config: MutableMapping[str, Any], schema: Mapping[str, Any]
              ) -> list[ValidationError]:
    errors = _validator(schema).iter_errors(config)
    return sorted(errors, key=lambda e: [str(p) for p in e.absolute_path])


def check_config(config: MutableMapping[str, Any], schema_path: str | Path, *,
                 verbose: bool = False) -> None:
    """Check ``config`` in place: retired keys, ``--config`` text, schema (filling defaults).

    Parameters
    ----------
    config
        The merged configuration (``config/config.yaml``, ``--configfile``, ``--config``);
        defaults are filled and ``--config`` text converted in place.
    schema_path
        ``config/schema/config.schema.yaml``.
    verbose
        Append jsonschema's full report (schema and values) to the message.

    Raises
    ------
    ConfigError
        A retired key, or a schema violation: one line per problem (at most
        :data:`MAX_PROBLEMS`, then a count), each naming the key and, for a misspelt key or
        value, the nearest valid one.
    """
    check_retired_keys(config)
    schema = load_schema(schema_path)
    coerce_config_text(config, schema)
    errors = _problems(config, schema)
    if not errors:
        return
    lines = [line for error in errors for line in describe(error, schema)]
    shown = lines[:MAX_PROBLEMS]
    more = f"{len(lines) - len(shown)} more problem(s) not shown; " if lines[len(shown):] else ""
    message = shown[0] if len(lines) == 1 else f"{len(lines)} problems:\n  " + "\n  ".join(shown)
    message += f"\n  ({more}every key: {SCHEMA}; {VERBOSE_ENV}=1 for the full report)"
    if verbose:
        message += "\n\n" + "\n\n".join(str(e) for e in errors)
    raise ConfigError(message)


def check_config_or_exit(config: MutableMapping[str, Any], schema_path: str | Path, *,
                         verbose: bool = False) -> None:
    """:func:`check_config` for the Snakefile: on an error print it briefly and exit.

    The message goes to stderr as ``radflow: config error: ...`` and the process exits with
    status 1 (``SystemExit``): Snakemake then prints nothing more. With ``verbose`` or
    ``RADFLOW_VERBOSE=1`` the :class:`ConfigError` is raised with the full report instead
    (Snakemake shows it with its traceback).
    """
    verbose = verbose or os.environ.get(VERBOSE_ENV, "") not in ("", "0")
    try:
        check_config(config, schema_path, verbose=verbose)
    except ConfigError as error:
        if verbose:
            raise
        print(f"radflow: config error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
