"""Typed configuration: dataclasses that load strictly from dicts / YAML and say in one line what is wrong.

A config class is a dataclass deriving from :class:`Config`. Its field annotations are the types it accepts;
``check`` metadata adds a range (``field(default=4, metadata=check(ge=1))``). Loading is strict:

- unknown keys are rejected with the list of valid ones;
- ``bool`` fields take only ``true`` / ``false`` (never the string ``"no"``, which Python reads as true);
- ``int`` fields take integers (not ``4.5``, not ``True``, not ``"ten"``); ``float`` fields take numbers;
- ``Literal[...]`` fields take one of their values; ``X | None`` takes ``null`` too;
- nested configs are loaded recursively, and every message names the dotted key (``model.T``).

:func:`apply_overrides` sets dotted keys from ``KEY=VALUE`` strings (``--set model.T=8``), parsing each value as
a YAML scalar and checking it like the rest.

YAML (config files, ``--set`` and ``--neuron-arg`` values) is read with the YAML 1.2 core schema, as JSON reads
numbers: ``1e-3`` is a number, ``010`` is 10, ``1:30`` is a string (not 90, base 60), ``yes`` / ``on`` are strings
(only ``true`` / ``false`` are booleans), dates stay strings. A key given twice in one mapping is an error naming
the key and both lines (PyYAML keeps the last silently). Tags that construct objects are refused (safe loading).
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml

__all__ = ["Config", "ConfigError", "check", "apply_overrides", "parse_value", "load_yaml", "yaml_load", "yaml_dump"]


class ConfigError(ValueError):
    """A configuration value or key is wrong; the message is one line that names it."""


def check(ge: float | None = None, gt: float | None = None, le: float | None = None, lt: float | None = None) -> dict:
    """Field metadata for a numeric range: ``field(default=1, metadata=check(ge=1))``."""
    return {"range": {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt)) if v is not None}}


_UNIONS = (Union, types.UnionType)
_REL = {
    "ge": (">=", lambda a, b: a >= b),
    "gt": (">", lambda a, b: a > b),
    "le": ("<=", lambda a, b: a <= b),
    "lt": ("<", lambda a, b: a < b),
}


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if tp is type(None):
        return "null"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in _UNIONS:
        return " or ".join(_describe(a) for a in get_args(tp))
    if origin in (tuple, list):
        return f"a list of {_describe(get_args(tp)[0])}" if get_args(tp) else "a list"
    if origin is dict or tp is dict:
        return "a mapping"
    if isinstance(tp, type) and issubclass(tp, Config):
        return f"a mapping ({tp.__name__})"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(tp, str(tp))


def _convert(value: Any, tp: Any, where: str) -> Any:
    """``value`` checked against type ``tp`` (and converted: lists -> tuples, ints -> floats, dicts -> configs)."""
    origin = get_origin(tp)
    if origin in _UNIONS:
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except ConfigError:
                pass
        raise ConfigError(f"{where} must be {_describe(tp)}, got {value!r}")
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in get_args(tp)):
            return value
        raise ConfigError(f"{where} must be {_describe(tp)}, got {value!r}")
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} must be {_describe(tp)}, got {value!r}")
        item = get_args(tp)[0] if get_args(tp) else Any
        items = [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is Any:
        return value
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return dict(value)
    if isinstance(tp, type) and issubclass(tp, Config):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be {_describe(tp)}, got {value!r}")
        return tp.from_dict(value, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:
        raise TypeError(f"schema: unsupported annotation {tp!r} at {where}")
    raise ConfigError(f"{where} must be {_describe(tp)}, got {value!r}")


def _check_range(value: Any, rng: dict, where: str) -> None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{where} must be finite, got {value}")
        for rel, bound in rng.items():
            sym, ok = _REL[rel]
            if not ok(value, bound):
                raise ConfigError(f"{where} must be {sym} {_num(bound)}, got {_num(value)}")


def _num(x: float) -> str:
    """A number as written: integers in full (``4294967295``), others short (``0.05``)."""
    return str(x) if isinstance(x, int) else f"{x:g}"


class Config:
    """Mixin for configuration dataclasses: strict ``from_dict``, ``to_dict``, YAML ``save`` / ``load``."""

    @classmethod
    def field_types(cls) -> dict[str, Any]:
        return typing.get_type_hints(cls)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, where: str = "") -> Config:
        """Build from a plain mapping, checking every key and value (``where``: the dotted prefix in messages)."""
        if d is None:
            d = {}
        if not isinstance(d, Mapping):
            raise ConfigError(f"{where or cls.__name__} must be a mapping of keys to values, got {type(d).__name__}")
        d = cls.upgrade(dict(d))
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(d) - set(fields))
        if unknown:
            prefix = f"{where}." if where else ""
            raise ConfigError(
                f"unknown key(s) {', '.join(prefix + k for k in unknown)}; valid: {', '.join(sorted(fields))}"
            )
        types = cls.field_types()
        kwargs = {}
        for name, value in d.items():
            key = f"{where}.{name}" if where else name
            kwargs[name] = _convert(value, types[name], key)
            _check_range(kwargs[name], fields[name].metadata.get("range", {}), key)
        obj = cls(**kwargs)
        obj.validate(where)
        return obj

    @classmethod
    def upgrade(cls, d: dict) -> dict:
        """Convert keys of older versions of this config (override; default: none)."""
        return d

    def validate(self, where: str = "") -> None:
        """Checks that involve several fields (override)."""

    def to_dict(self) -> dict:
        """Plain values (tuples as lists), for YAML and JSON."""

        def plain(v):
            if isinstance(v, Config):
                return v.to_dict()
            if isinstance(v, tuple | list):
                return [plain(i) for i in v]
            if isinstance(v, dict):
                return {k: plain(i) for k, i in v.items()}
            return v

        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def replace(self, **changes: Any) -> Config:
        """A checked copy with ``changes`` (plain values, as in YAML)."""
        return type(self).from_dict({**self.to_dict(), **changes})

    def save(self, path: str | Path) -> Path:
        """Write YAML atomically."""
        from .files import write_text

        return write_text(path, yaml_dump(self.to_dict()))

    @classmethod
    def load(cls, path: str | Path) -> Config:
        return cls.from_dict(load_yaml(path), "")


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with the YAML 1.2 core schema's scalars and duplicate keys refused."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            lines: dict = {}  # key -> the line it first appears on
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    seen = key in lines
                except TypeError:  # an unhashable key: the base class says so
                    continue
                if seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (also on line {lines[key] + 1})", key_node.start_mark
                    )
                lines[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)

    def construct_yaml_int(self, node) -> int:
        text = self.construct_scalar(node)
        sign, digits = (-1, text[1:]) if text[0] == "-" else (1, text.lstrip("+"))
        if digits[:2] in ("0o", "0x"):
            return sign * int(digits[2:], 8 if digits[1] == "o" else 16)
        return sign * int(digits, 10)

    def construct_yaml_float(self, node) -> float:
        text = self.construct_scalar(node).lower()
        if text.lstrip("+-") == ".inf":
            return -math.inf if text[0] == "-" else math.inf
        return math.nan if text == ".nan" else float(text)


_CORE = {
    "bool": (r"true|True|TRUE|false|False|FALSE", "tTfF"),
    "int": (r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+", "-+0123456789"),
    "float": (
        r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|INF|Inf)|\.(?:nan|NaN|NAN)",
        "-+0123456789.",
    ),
    "null": (r"~|null|Null|NULL|", ["~", "n", "N", ""]),
}
_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag.rsplit(":", 1)[-1] not in (*_CORE, "timestamp")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _name, (_pattern, _first) in _CORE.items():
    _Yaml12Loader.add_implicit_resolver(f"tag:yaml.org,2002:{_name}", re.compile(f"^(?:{_pattern})$"), list(_first))
_Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _Yaml12Loader.construct_yaml_int)


class _Yaml12Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper that also quotes strings YAML 1.2 would read as another type (``"1e-3"``)."""


for _name, (_pattern, _first) in _CORE.items():
    _Yaml12Dumper.add_implicit_resolver(f"tag:yaml.org,2002:{_name}", re.compile(f"^(?:{_pattern})$"), list(_first))
_Yaml12Loader.add_constructor("tag:yaml.org,2002:float", _Yaml12Loader.construct_yaml_float)


def yaml_dump(data) -> str:
    """``data`` as YAML that :func:`yaml_load` reads back as it was (key order kept)."""
    return yaml.dump(data, Dumper=_Yaml12Dumper, sort_keys=False)


def yaml_load(text: str):
    """``text`` as YAML 1.2 (core schema; duplicate keys refused; no object-constructing tags)."""
    return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 (a SafeLoader)


def load_yaml(path: str | Path) -> dict:
    """A YAML file that holds a mapping; one-line errors for a missing, unreadable, empty or non-mapping file and
    for a duplicate key (naming it and its lines)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"config {path} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise ConfigError(f"cannot read config {path}: {err.strerror or err}") from None
    try:
        d = yaml_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"config {path} is not valid YAML{at}: {getattr(err, 'problem', err)}") from None
    if d is None:
        raise ConfigError(f"config {path} is empty")
    if not isinstance(d, dict):
        raise ConfigError(f"config {path} must hold a mapping of keys to values, not a {type(d).__name__}")
    return d


def parse_value(text: str, where: str = "value") -> Any:
    """A command-line value as a YAML 1.2 scalar: ``8`` -> 8, ``0.5`` / ``1e-3`` -> a float, ``true`` -> True,
    ``null`` -> None, ``[1, 2]`` -> [1, 2]; anything else stays a string. A mapping with a key given twice is a
    :class:`ConfigError` naming ``where`` and the key."""
    try:
        return yaml_load(text)
    except yaml.constructor.ConstructorError as err:
        raise ConfigError(f"{where} {text!r}: {err.problem}") from None
    except yaml.YAMLError:
        return text


def apply_overrides(d: dict, assignments: list[str], cls: type[Config], option: str = "--set") -> dict:
    """Set dotted keys of the plain config ``d`` from ``KEY=VALUE`` strings; unknown keys are rejected with the
    valid ones (checked against ``cls`` and its nested configs). Returns ``d`` (changed in place)."""
    for item in assignments:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{option} expects KEY=VALUE, got {item!r}")
        parts, node, owner = key.split("."), d, cls
        for i, part in enumerate(parts):
            fields = {f.name for f in dataclasses.fields(owner)} if owner is not None else None
            if fields is not None and part not in fields:
                where = ".".join(parts[:i]) or "the config"
                raise ConfigError(f"{option} {key}: {where} has no key {part!r}; valid: {', '.join(sorted(fields))}")
            if i == len(parts) - 1:
                node[part] = parse_value(text, f"{option} {key}")
                break
            tp = owner.field_types()[part] if owner is not None else None
            owner = tp if isinstance(tp, type) and issubclass(tp, Config) else None
            if not isinstance(node.get(part), dict):
                if owner is None and tp is not dict:
                    raise ConfigError(f"{option} {key}: {'.'.join(parts[: i + 1])} is not a mapping")
                node[part] = {} if node.get(part) is None else node[part]
            node = node[part]
    return d
