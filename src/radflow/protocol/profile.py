"""Acquisition-protocol profiles: find, read and check a profile YAML into frozen dataclasses.

A profile (``config/protocols/<name>.yaml``, format ``config/schema/protocol.schema.yaml``) is
checked twice: by the schema (structure, operators, attribute names, required keys) and here
(rule ids unique, each operator with a limit of its kind, each attribute with the operators its
kind allows: :data:`radflow.protocol.attributes.ATTRIBUTES`). Every error is a
:class:`~radflow.errors.ConfigError` naming the profile file and the key
(``series_rules[2].limit``).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radflow.errors import ConfigError
from radflow.protocol.attributes import ATTRIBUTES, BOOL, NUMBER, TEXT

PROFILE_SCHEMA = "protocol.schema.yaml"
#: A shipped profile is named by its file stem in ``config/protocols``.
_SHIPPED_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_OPS_OF_KIND: dict[str, frozenset[str]] = {
    NUMBER: frozenset({"<", "<=", ">", ">=", "==", "!=", "between", "in", "not in"}),
    TEXT: frozenset({"==", "!=", "in", "not in"}),
    BOOL: frozenset({"==", "!="}),
}


@dataclass(frozen=True)
class Condition:
    """``attribute op limit``; ``limit`` is a number, text, boolean or a tuple of them
    (``in``, ``not in``: the allowed values; ``between``: ``(low, high)``, both included)."""

    attribute: str
    op: str
    limit: Any

    def limit_text(self) -> str:
        """The limit as the protocol table shows it (``<= 120``, ``in HFS,FFS``)."""
        limit = self.limit
        if isinstance(limit, tuple):
            text = ("-".join(_plain(v) for v in limit) if self.op == "between"
                    else ",".join(_plain(v) for v in limit))
        else:
            text = _plain(limit)
        return f"{self.op} {text}"


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Rule:
    """One rule of a profile.

    Attributes
    ----------
    id
        Rule name (``tube-voltage``), as written to ``protocol_failed``.
    level
        ``series`` (``conditions`` holds one condition on the series) or ``study`` (some series
        of the study meets every condition).
    conditions
        Empty for an undecidable rule.
    undecidable
        Why headers and image cannot decide the rule ("" for a decidable one): reported
        ``unknown``, never ``pass``.
    """

    id: str
    level: str
    description: str
    source: str
    conditions: tuple[Condition, ...] = ()
    undecidable: str = ""


@dataclass(frozen=True)
class KernelMap:
    """Kernel names of one vendor: case-insensitive shell patterns (:mod:`fnmatch`)."""

    vendor: str
    manufacturer: tuple[str, ...]
    standard: tuple[str, ...] = ()
    sharp: tuple[str, ...] = ()


@dataclass(frozen=True)
class Profile:
    """A checked profile (see module docstring); ``file`` is its file name, for messages."""

    name: str
    title: str
    source: str
    modalities: tuple[str, ...]
    kernels: tuple[KernelMap, ...]
    dose_screens: tuple[str, ...]
    series_rules: tuple[Rule, ...]
    study_rules: tuple[Rule, ...]
    file: str = ""

    @property
    def attributes(self) -> frozenset[str]:
        """Every attribute a rule reads."""
        return frozenset(c.attribute for r in (*self.series_rules, *self.study_rules)
                         for c in r.conditions)


def repository_root() -> Path:
    """The repository (radflow is installed editable; the profiles live in its config/)."""
    return Path(__file__).resolve().parents[3]


def resolve_profile(value: str, repo: str | Path | None = None) -> Path | None:
    """The profile file ``protocol.profile`` names; ``None`` for ``""`` (gates off).

    A bare name (``lung-screening-ldct``) is a shipped profile,
    ``<repo>/config/protocols/<name>.yaml``; anything else is a path, relative to the repository
    root unless absolute.

    Raises
    ------
    ConfigError
        The file does not exist (the message lists the shipped profiles).
    """
    if not value:
        return None
    root = Path(repo) if repo is not None else repository_root()
    shipped = root / "config" / "protocols"
    path = (shipped / f"{value}.yaml" if _SHIPPED_NAME.fullmatch(value)
            else Path(value).expanduser())
    if not path.is_absolute():
        path = root / path
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in shipped.glob("*.yaml"))) or "none"
        raise ConfigError(f"protocol.profile: no profile file {value!r} (a path to a profile "
                          f"YAML, or a shipped name: {names})")
    return path


def checked_profile(value: str, repo: str | Path | None = None) -> str:
    """The profile file ``protocol.profile`` names, read and checked (so that a broken profile
    stops the run before any job); ``""`` when the gates are off. For the Snakefile."""
    path = resolve_profile(value, repo)
    if path is None:
        return ""
    load_profile(path)
    return str(path)


def load_profile(path: str | Path) -> Profile:
    """Read and check the profile at ``path``.

    Raises
    ------
    ConfigError
        The file cannot be read as YAML, breaks ``config/schema/protocol.schema.yaml``, or a
        rule is inconsistent (duplicate id, operator and limit or attribute of different kinds);
        the message names the file and the key.
    """
    import jsonschema
    import yaml

    path = Path(path)
    where = f"protocol profile {path.name}"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{where}: cannot be read as YAML ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
    schema_file = repository_root() / "config" / "schema" / PROFILE_SCHEMA
    schema = yaml.safe_load(schema_file.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.path), list(map(str,
                                                                                     e.path))))
    if errors:
        raise ConfigError(f"{where}: {_schema_message(_deepest(errors[0]))} "
                          f"(config/schema/{PROFILE_SCHEMA})")
    return _build(data, path.name)


def _deepest(error: Any) -> Any:
    """For a ``oneOf`` failure, the sub-error that names the key best."""
    while error.context:
        error = max(error.context, key=lambda e: len(e.absolute_path))
    return error


def _key(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _schema_message(error: Any) -> str:
    key = _key(error.absolute_path)
    if error.validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        name = missing[0] if missing else "?"
        return f"{key + '.' if error.absolute_path else ''}{name}: required key missing"
    if error.validator == "additionalProperties":
        return f"{key}: {error.message}"
    if error.validator == "enum":
        allowed = [str(v) for v in error.validator_value]
        near = difflib.get_close_matches(str(error.instance), allowed, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        what = "attribute" if key.endswith("attribute") else "value"
        return f"{key}: unknown {what} {error.instance!r}{hint}"
    if error.validator == "not":
        return f"{key}: a rule is either attribute/op/limit (any_series for a study rule) or " \
               "undecidable, not both"
    return f"{key}: {error.message}"


def _build(data: dict[str, Any], file: str) -> Profile:
    where = f"protocol profile {file}"
    series = tuple(_rule(r, "series", f"series_rules[{i}]", where)
                   for i, r in enumerate(data["series_rules"]))
    study = tuple(_rule(r, "study", f"study_rules[{i}]", where)
                  for i, r in enumerate(data["study_rules"]))
    seen: set[str] = {"modality"}
    for i, rule in enumerate((*series, *study)):
        if rule.id in seen:
            key = (f"series_rules[{i}]" if i < len(series)
                   else f"study_rules[{i - len(series)}]")
            raise ConfigError(f"{where}: {key}.id: rule id {rule.id!r} is used twice "
                              "('modality' is the built-in rule of the modality key)")
        seen.add(rule.id)
    kernels = tuple(KernelMap(str(k["vendor"]), tuple(k["manufacturer"]),
                              tuple(k.get("standard", ())), tuple(k.get("sharp", ())))
                    for k in data.get("kernels", ()))
    return Profile(name=data["name"], title=data["title"], source=data["source"],
                   modalities=tuple(data["modality"]), kernels=kernels,
                   dose_screens=tuple(data.get("dose_screens", ())), series_rules=series,
                   study_rules=study, file=file)


def _rule(raw: dict[str, Any], level: str, key: str, where: str) -> Rule:
    if "undecidable" in raw:
        return Rule(raw["id"], level, raw["description"], raw["source"], (),
                    str(raw["undecidable"]))
    items = ([(raw, key)] if level == "series"
             else [(c, f"{key}.any_series[{j}]") for j, c in enumerate(raw["any_series"])])
    conditions = tuple(_condition(c, k, where) for c, k in items)
    return Rule(raw["id"], level, raw["description"], raw["source"], conditions)


def _condition(raw: dict[str, Any], key: str, where: str) -> Condition:
    attribute, op, limit = raw["attribute"], raw["op"], raw["limit"]
    kind = ATTRIBUTES[attribute].kind
    if op not in _OPS_OF_KIND[kind]:
        raise ConfigError(f"{where}: {key}.op: {op!r} does not apply to {attribute} (a {kind} "
                          f"attribute: {', '.join(sorted(_OPS_OF_KIND[kind]))})")
    values = limit if isinstance(limit, list) else [limit]
    if op in ("in", "not in") and not isinstance(limit, list):
        raise ConfigError(f"{where}: {key}.limit: {op!r} needs a list of values")
    if op == "between" and not (isinstance(limit, list) and len(limit) == 2):
        raise ConfigError(f"{where}: {key}.limit: 'between' needs [low, high]")
    if op not in ("in", "not in", "between") and isinstance(limit, list):
        raise ConfigError(f"{where}: {key}.limit: {op!r} needs one value, not a list")
    for value in values:
        if not _fits(kind, value):
            raise ConfigError(f"{where}: {key}.limit: {value!r} is not a {kind} value "
                              f"({attribute} is a {kind} attribute)")
    if op == "between" and values[0] > values[1]:
        raise ConfigError(f"{where}: {key}.limit: 'between' needs low <= high")
    if kind == NUMBER:
        values = [float(v) for v in values]
    frozen = tuple(values) if isinstance(limit, list) else values[0]
    return Condition(attribute, op, frozen)


def _fits(kind: str, value: Any) -> bool:
    if kind == NUMBER:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == BOOL:
        return isinstance(value, bool)
    return isinstance(value, str)


__all__ = ["PROFILE_SCHEMA", "Condition", "KernelMap", "Profile", "Rule", "checked_profile",
           "load_profile",
           "repository_root", "resolve_profile"]
