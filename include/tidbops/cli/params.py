"""Command-line values turned into their types without pydantic.

typer 0.29 converts every value of a command line (other than a flag) through a pydantic ``TypeAdapter``
built on first use, so the first option of any command imports pydantic: some 60 ms and 12 MiB before
the command starts, more than ``tidbops slowlog digest`` of a small file takes in all. The types our
commands take (``bool``; ``str``; ``int`` and ``float`` with ``min``/``max``; ``Path``; an ``Enum`` or
``Literal`` of choices; lists of these) are converted here instead, as typer converts them and with its messages
(a bad choice says ``'xml' is not one of 'text', 'json'.`` without pydantic's ``Value error,``). A
parameter of any other kind (a ``parser``, ``clamp``, a datetime, a tuple, a file) is left to typer.

:func:`install` hands a loaded command's parameters their converters; ``tidbops.cli.commands`` calls it
on every command it loads. It relies on two details of typer 0.29 (``_TyperParameter._runtime_param``
and ``typer._coercion.RuntimeParam``): the tests compare its results and messages with typer's own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from typer import _click
from typer._click.exceptions import BadParameter
from typer._coercion import RuntimeParam
from typer._param_types import choice_coercion_annotation, coerce_cli_choice, coerce_cli_path
from typer.core import TyperGroup, _TyperParameter
from typer.models import ParameterInfo

Convert = Callable[[Any, _TyperParameter, _click.Context], Any]
_ZERO_FRACTION = re.compile(r"([+-]?\d[\d_]*)\.0+")  # "3.0" is the integer 3, as pydantic reads it


class Invalid(ValueError):
    """A value the type does not take; the message is shown after ``Invalid value for '--x':``."""


@dataclass(frozen=True)
class PlainRuntimeParam(RuntimeParam):
    """typer's conversion contract, kept by a plain function (``convert``) of each value."""

    convert: Convert
    many: bool

    def _coerce_value(self, value: Any, param: _TyperParameter, ctx: _click.Context) -> Any:
        try:
            if not self.many:
                return self.convert(value, param, ctx)
            items = value if isinstance(value, list | tuple) else [value]
            return [self.convert(item, param, ctx) for item in items]
        except Invalid as exc:
            raise BadParameter(str(exc), ctx=ctx, param=param) from None


def _text(value: Any, param: _TyperParameter, ctx: _click.Context) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"", "0", "off", "f", "false", "n", "no"})


def _flag(value: Any, param: _TyperParameter, ctx: _click.Context) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
    raise Invalid("Input should be a valid boolean, unable to interpret input")


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isascii():  # int() also reads other scripts' digits; pydantic does not
        text = value.strip()
        whole = _ZERO_FRACTION.fullmatch(text)
        try:
            return int(whole.group(1) if whole else text)
        except ValueError:
            pass
    raise Invalid("Input should be a valid integer, unable to parse string as an integer")


def _number(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        if isinstance(value, str) and value.isascii():
            return float(value.strip())
    except ValueError:
        pass
    raise Invalid("Input should be a valid number, unable to parse string as a number")


def _bound(limit: float) -> str:
    """A limit as pydantic's messages write it (``0``, not ``0.0``)."""
    return str(int(limit)) if isinstance(limit, float) and limit.is_integer() else str(limit)


def _ranged(kind: type[Any], info: ParameterInfo) -> Convert:
    read = _integer if kind is int else _number

    def convert(value: Any, param: _TyperParameter, ctx: _click.Context) -> Any:
        number = read(value)
        if info.min is not None and not number >= info.min:  # NaN is neither
            raise Invalid(f"Input should be greater than or equal to {_bound(info.min)}")
        if info.max is not None and not number <= info.max:
            raise Invalid(f"Input should be less than or equal to {_bound(info.max)}")
        return number

    return convert


def _choice(choices: tuple[Any, ...], case_sensitive: bool) -> Convert:
    def convert(value: Any, param: _TyperParameter, ctx: _click.Context) -> Any:
        try:
            return coerce_cli_choice(value, choices=choices, case_sensitive=case_sensitive, ctx=ctx)
        except ValueError as exc:
            raise Invalid(str(exc)) from None

    return convert


def _path(kind: type[Path], info: ParameterInfo) -> Convert:
    def convert(value: Any, param: _TyperParameter, ctx: _click.Context) -> Any:
        if not isinstance(value, str | Path):
            raise Invalid("Input is not a valid path")
        # a Path already: typer's own checks (exists, file_okay …) without its pydantic conversion
        return coerce_cli_path(kind(value), info, path_type=kind, param=param, ctx=ctx)

    return convert


def converter(annotation: Any, info: ParameterInfo) -> Convert | None:
    """How to convert one value of ``annotation`` as typer would; None: leave it to typer."""
    if info.parser is not None or info.clamp:
        return None
    choices = choice_coercion_annotation(annotation, info)
    if choices is not None:
        return _choice(*choices)
    if annotation is bool:
        return _flag
    if annotation is str:
        return None if info.allow_dash or info.path_type is not None or info.resolve_path else _text
    if annotation in (int, float):
        return _ranged(annotation, info)
    if isinstance(annotation, type) and issubclass(annotation, Path) and info.path_type is None:
        return _path(annotation, info)
    return None


def plain_runtime_param(param: _TyperParameter) -> PlainRuntimeParam | None:
    """The conversion of ``param`` done here, or None (a kind left to typer)."""
    desc = param.type_descriptor
    annotation, many = desc.annotation, False
    if desc.is_file or desc.is_tuple:
        return None
    if desc.is_list:
        (annotation,) = get_args(annotation)
        many = True
    convert = converter(annotation, desc.parameter_info)
    if convert is None:
        return None
    return PlainRuntimeParam(parameter_info=desc.parameter_info, annotation=desc.annotation, convert=convert, many=many)


def _commands(command: _click.Command) -> Iterator[_click.Command]:
    yield command
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            yield from _commands(sub)


def install_param(param: _click.Parameter | None) -> bool:
    """Give ``param`` its converter, if it is of a kind converted here."""
    if not isinstance(param, _TyperParameter) or param._runtime_param is not None:
        return False
    plain = plain_runtime_param(param)
    if plain is not None:
        param._runtime_param = plain
    return plain is not None


def install(command: _click.Command) -> int:
    """Give every parameter of ``command`` and of its subcommands that is converted here its converter,
    their ``--help`` options included (click makes one per command on first use and keeps it; it is made
    here with the default name, ``--help``, which no command of ours changes). How many were given one."""
    count = 0
    for each in _commands(command):
        count += sum(install_param(param) for param in each.params)
        count += install_param(each.get_help_option(_click.Context(each)))
    return count
