"""Typed settings built from TOML tables: unknown keys rejected, errors naming file and key.

A settings class is a frozen dataclass; a field's type says what the TOML
value must be (C{int}, C{float}, C{str}, C{bool}, C{list[...]},
C{dict[str, ...]} or another settings class).  C{field(metadata=...)}
adds C{check} (a function returning an error text or None) and C{path}
(a filesystem path resolved against the config file's folder).
"""
from __future__ import annotations

import dataclasses
import functools
import os
import typing

from core.endpoint_check import server_endpoint_problem


class ConfigError(Exception):
    """The configuration is invalid; the message names the file and the key."""


def setting(default=dataclasses.MISSING, *, check=None, path=False, factory=None):
    """Declare a settings field with an optional C{check} and C{path} flag."""
    meta = {"check": check, "path": path}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@functools.cache
def _hints(cls) -> dict:
    """The resolved field types of the settings class C{cls} (evaluated once per class)."""
    return typing.get_type_hints(cls)


def build(cls, data, *, file: str, key: str, base_dir: str):
    """Build the settings class C{cls} from the TOML table C{data}.

    @param key: the dotted key of C{data} in the file, for messages.
    @param base_dir: folder that relative paths resolve against.
    @raise ConfigError: an unknown or missing key, a wrong type, or a
        failed check, named as C{file: key: problem}.
    """
    where = key or "(top level)"
    if not isinstance(data, dict):
        raise ConfigError("%s: %s: must be a table" % (file, where))
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError("%s: %s: unknown key %r (allowed: %s)"
                          % (file, _join(key, unknown[0]), unknown[0], ", ".join(sorted(fields))))
    values = {}
    for name, f in fields.items():
        full = _join(key, name)
        if name in data:
            value = _convert(hints[name], data[name], file=file, key=full, base_dir=base_dir)
            if f.metadata.get("path"):
                value = resolve_path(value, base_dir)
        elif dataclasses.is_dataclass(hints[name]) and f.default_factory is not dataclasses.MISSING \
                and type(f.default_factory()) is hints[name]:
            # a table left out of the file: build it from nothing, so its own
            # path defaults resolve and its checks run like a written one
            value = build(hints[name], {}, file=file, key=full, base_dir=base_dir)
        elif f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
            value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            if f.metadata.get("path") and isinstance(value, str):
                value = resolve_path(value, base_dir)
        else:
            raise ConfigError("%s: %s: missing (required)" % (file, full))
        check = f.metadata.get("check")
        if check is not None:
            problem = check(value)
            if problem:
                raise ConfigError("%s: %s: %s" % (file, full, problem))
        values[name] = value
    try:
        return cls(**values)
    except ValueError as e:   # cross-field checks in __post_init__
        raise ConfigError("%s: %s: %s" % (file, where, e)) from e


def _join(key: str, name: str) -> str:
    return "%s.%s" % (key, name) if key else name


def resolve_path(value: str, base_dir: str) -> str:
    """C{value} as an absolute path, relative ones against C{base_dir}; '-' is kept."""
    if value == "-" or value == "":
        return value
    value = os.path.expanduser(value)
    return value if os.path.isabs(value) else os.path.normpath(os.path.join(base_dir, value))


def _convert(tp, value, *, file, key, base_dir):
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is getattr(__import__("types"), "UnionType", None):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(args[0], value, file=file, key=key, base_dir=base_dir)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, file=file, key=key, base_dir=base_dir)
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError("%s: %s: must be a list" % (file, key))
        return [_convert(item, v, file=file, key="%s[%d]" % (key, i), base_dir=base_dir)
                for i, v in enumerate(value)]
    if origin is dict:
        _, item = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError("%s: %s: must be a table" % (file, key))
        return {k: _convert(item, v, file=file, key=_join(key, k), base_dir=base_dir)
                for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError("%s: %s: must be a number, got %r" % (file, key, value))
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError("%s: %s: must be an integer, got %r" % (file, key, value))
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError("%s: %s: must be true or false, got %r" % (file, key, value))
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError("%s: %s: must be a string, got %r" % (file, key, value))
        return value
    if tp is typing.Any:
        return value
    raise ConfigError("%s: %s: unsupported setting type %r" % (file, key, tp))


# -- reusable checks -------------------------------------------------------
def positive(v):
    return None if v > 0 else "must be greater than 0"


def non_negative(v):
    return None if v >= 0 else "must not be negative"


def one_of(*choices):
    def check(v):
        return None if v in choices else "must be one of %s, got %r" % (", ".join(map(repr, choices)), v)
    return check


def digits(v):
    return None if isinstance(v, str) and v.isdigit() else "must be a string of digits"


def endpoint(v):
    """A Twisted server endpoint string such as C{tcp:2775:interface=127.0.0.1}: its type,
    port (0-65535), interface (an IP address) and options checked
    (L{core.endpoint_check.server_endpoint_problem})."""
    return server_endpoint_problem(v)
