"""The configuration keys as plain records, read from the dataclasses in bot/config.py."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

from bot.config import ENV_PREFIX, Config, Secrets, toml_value


@dataclass(frozen=True)
class Key:
    section: str  # "" for a top-level key
    name: str
    kind: str  # what to write: "string", "list of strings", …
    default: str  # as TOML
    doc: str

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.name}" if self.section else self.name

    @property
    def env(self) -> str:
        return (ENV_PREFIX + self.dotted.replace(".", "_")).upper()


@dataclass(frozen=True)
class Section:
    name: str  # "" for the top level
    keys: list[Key]


@dataclass(frozen=True)
class SecretDoc:
    env: str
    doc: str


def sections() -> list[Section]:
    """Every key of the TOML file, grouped by [section] in definition order; top level first."""
    config = Config()
    top: list[Key] = []
    found: list[Section] = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name == "secrets" or f.metadata.get("internal"):
            continue
        if dataclasses.is_dataclass(value):
            found.append(Section(f.name, _keys(f.name, value)))
        else:
            top.append(_key("", f, value, typing.get_type_hints(Config)[f.name]))
    return [Section("", top), *found]


def secrets() -> list[SecretDoc]:
    return [
        SecretDoc(f.name.upper(), f.metadata["doc"])
        for f in dataclasses.fields(Secrets)
        if "doc" in f.metadata
    ]


def _keys(section: str, instance: Any) -> list[Key]:
    hints = typing.get_type_hints(type(instance))
    return [
        _key(section, f, getattr(instance, f.name), hints[f.name])
        for f in dataclasses.fields(instance)
    ]


def _key(section: str, f: dataclasses.Field, value: Any, hint: Any) -> Key:
    if "doc" not in f.metadata:
        dotted = f"{section}.{f.name}" if section else f.name
        raise ValueError(f"{dotted}: no documentation; define it with setting(default, doc)")
    return Key(section, f.name, kind_of(hint), toml_value(value), f.metadata["doc"])


def kind_of(hint: Any) -> str:
    names = {str: "string", int: "whole number", float: "number", bool: "true or false"}
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint)
        if item is dict or typing.get_origin(item) is dict:
            return "list of tables"
        return "list of " + {"whole number": "whole numbers"}.get(names[item], names[item] + "s")
    if hint is dict or typing.get_origin(hint) is dict:
        return "table"
    return names[hint]
