"""Command-line options generated from a pydantic-settings class.

Every settings field becomes a ``--field-name`` option whose help names its default and its
``MOLSTREAM_FIELD_NAME`` variable, so the CLI, the environment and the docs cannot drift
apart; every such command also takes ``--config FILE`` (TOML, the fields by name) and
``--secrets-dir DIR`` (one file per setting, named like its variable). Flags win over the
environment, the environment over secret files, those over the config file. It lives here
because both CLIs use it and neither may import the other.
"""

from __future__ import annotations

import inspect
import json
import tomllib
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

import typer
from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsError

from schemas.kafka import CONFIG_FILE

S = TypeVar("S", bound=BaseSettings)

TYPER_OPTIONS: dict[str, Any] = {"pretty_exceptions_enable": False, "rich_markup_mode": None}
"""How every molstream command is built: plain tracebacks and plain (never rich) output, so
nothing a command prints is wrapped or decorated for a terminal it may not have."""

_SOURCES = {
    "config": Annotated[
        Path | None,
        typer.Option(
            "--config",
            envvar="MOLSTREAM_CONFIG",
            exists=True,
            dir_okay=False,
            metavar="FILE",
            help="TOML file of settings by field name (e.g. batch_size = 64); "
            "flags and MOLSTREAM_* variables win over it. [env: MOLSTREAM_CONFIG]",
            show_envvar=False,
        ),
    ],
    "secrets_dir": Annotated[
        Path | None,
        typer.Option(
            "--secrets-dir",
            envvar="MOLSTREAM_SECRETS_DIR",
            exists=True,
            file_okay=False,
            metavar="DIR",
            help="Directory of secret files named like their variable, e.g. "
            "MOLSTREAM_SASL_PASSWORD (a Kubernetes or Docker secret mount). "
            "[env: MOLSTREAM_SECRETS_DIR]",
            show_envvar=False,
        ),
    ],
}


def _cli_type(annotation: Any) -> tuple[Any, dict[str, Any]]:
    """The option's Python type and extra typer.Option arguments for a field annotation."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    origin = get_origin(annotation)
    if origin is Literal:
        return annotation, {}
    if origin is dict:
        if get_args(annotation)[1] is str:
            return list[str], {"metavar": "KEY=VALUE"}
        return str, {"metavar": "JSON"}
    if annotation in (int, float, str, bool):
        return annotation, {}
    return str, {}


def shown_default(field: FieldInfo) -> str:
    """A field's default as ``--help`` and the README show it."""
    default = field.get_default(call_default_factory=True)
    if default is None:
        return "unset"
    return json.dumps(default) if isinstance(default, dict) else str(default)


def _describe(name: str, field: FieldInfo, env_prefix: str) -> str:
    shown = shown_default(field)
    return f"{field.description or ''} [default: {shown}; env: {env_prefix}{name.upper()}]"


def source_parameters() -> list[inspect.Parameter]:
    """``--config`` and ``--secrets-dir``, both defaulting to None (= not given)."""
    return [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ann)
        for name, ann in _SOURCES.items()
    ]


def settings_parameters(settings_cls: type[BaseSettings]) -> list[inspect.Parameter]:
    """One keyword parameter per CLI-visible field, each defaulting to None (= not given)."""
    prefix = str(settings_cls.model_config.get("env_prefix", ""))
    params = []
    for name, field in settings_cls.model_fields.items():
        extra = field.json_schema_extra
        if isinstance(extra, dict) and extra.get("cli") is False:
            continue
        py_type, option_args = _cli_type(field.annotation)
        option = typer.Option(
            f"--{name.replace('_', '-')}",
            help=_describe(name, field, prefix),
            show_default=False,
            **option_args,
        )
        params.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[py_type | None, option],
            )
        )
    return params


def build_settings(settings_cls: type[S], given: dict[str, Any]) -> S:
    """Settings from the options given on the command line, the environment, the secret
    files, the config file and defaults.

    Exits with status 2 and a readable message when they do not validate.
    """
    given = dict(given)
    config: Path | None = given.pop("config", None)
    secrets_dir: Path | None = given.pop("secrets_dir", None)
    values = {k: v for k, v in given.items() if v is not None and v != []}
    for name, value in list(values.items()):
        field = settings_cls.model_fields.get(name)
        if field is not None and get_origin(field.annotation) is dict and isinstance(value, str):
            try:
                values[name] = json.loads(value)
            except json.JSONDecodeError as exc:
                raise typer.BadParameter(
                    f"not JSON: {exc}", param_hint=f"--{name.replace('_', '-')}"
                ) from exc
    token = CONFIG_FILE.set(config)
    try:
        return settings_cls(_secrets_dir=secrets_dir, **values)
    except tomllib.TOMLDecodeError as exc:
        typer.secho(f"Invalid settings: --config {config}: not TOML: {exc}", err=True, fg="red")
        raise typer.Exit(2) from None
    except SettingsError as exc:  # an environment variable that is not valid JSON
        typer.secho(f"Invalid settings: {exc}", err=True, fg="red")
        raise typer.Exit(2) from None
    except ValidationError as exc:
        lines = [
            f"--{'.'.join(map(str, e['loc'])).replace('_', '-')}: {e['msg']}"
            if e["loc"]
            else e["msg"]
            for e in exc.errors()
        ]
        typer.secho("Invalid settings:\n  " + "\n  ".join(lines), err=True, fg="red")
        raise typer.Exit(2) from None
    finally:
        CONFIG_FILE.reset(token)


def with_settings_options(
    settings_cls: type[BaseSettings],
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorator: add the settings fields as options to a typer command.

    The command keeps its own declared parameters and receives the settings options that were
    given, with ``--config`` and ``--secrets-dir``, in a ``given`` dict (pass it to
    :func:`build_settings`).
    """

    def decorate(func: Callable[..., None]) -> Callable[..., None]:
        own = inspect.signature(func, eval_str=True)
        own_params = [p for p in own.parameters.values() if p.name != "given"]
        own_names = {p.name for p in own_params}
        generated = [
            p
            for p in [*source_parameters(), *settings_parameters(settings_cls)]
            if p.name not in own_names
        ]
        field_names = {p.name for p in generated}

        def wrapper(**kwargs: Any) -> None:
            given = {k: kwargs.pop(k) for k in list(kwargs) if k in field_names}
            func(given=given, **kwargs)

        wrapper.__signature__ = own.replace(parameters=[*own_params, *generated])  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in [*own_params, *generated]}
        wrapper.__doc__ = func.__doc__
        wrapper.__name__ = func.__name__
        return wrapper

    return decorate
