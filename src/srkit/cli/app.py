"""The `srkit` command: a thin typer shell over the Python API.

Errors: bad arguments print one line and exit 2; failures (srkit errors, unreadable files) print one line and
exit 1; a traceback is shown only with `--verbose`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any, Optional

import typer

from srkit import __version__
from srkit.cli import batch as batch_cmd
from srkit.cli import degrade as degrade_cmd
from srkit.cli import eval as eval_cmd
from srkit.cli import export as export_cmd
from srkit.cli import info as info_cmd
from srkit.cli import iqa as iqa_cmd
from srkit.cli import models as models_cmd
from srkit.cli import plot as plot_cmd
from srkit.cli import pull as pull_cmd
from srkit.cli import serve as serve_cmd
from srkit.cli import train as train_cmd
from srkit.cli import upscale as upscale_cmd

app = typer.Typer(
    name="srkit",
    help="Image super-resolution toolkit: evaluate, upscale, train.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Options that take several values after one flag (`--sets Set5 Set14`); expanded to repeated flags for click.
MULTI_VALUE_OPTIONS = {"--sets", "--scales", "--metrics", "--bands", "--models"}

_state = {"verbose": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"srkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show tracebacks on errors."),
    version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True,
                                           help="Print the version."),
) -> None:
    """srkit: image super-resolution toolkit."""
    _state["verbose"] = verbose


# name -> (command module, example shown under --help); one table so every command is registered the same way.
_COMMANDS: dict[str, tuple[ModuleType, Callable[..., Any], str]] = {
    "eval": (eval_cmd, eval_cmd.eval_command,
             "srkit eval --model bicubic --data ../shared/datasets --sets Set5 Set14 --scales 2 4"),
    "info": (info_cmd, info_cmd.info_command, "srkit info edsr-baseline --scale 4"),
    "upscale": (upscale_cmd, upscale_cmd.upscale_command,
                "srkit upscale photos/ -o photos_x4/ --model tiny-x4 ; srkit upscale in.png -o out.png"),
    "export": (export_cmd, export_cmd.export_command,
               "srkit export bicubic --scale 4 -o bicubic_x4.onnx ; srkit export model.safetensors -o m.pt"),
    "train": (train_cmd, train_cmd.train_command,
              "srkit train configs/tiny-x4.yaml --set train.steps=2000 --out runs/tiny ; "
              "srkit train --resume runs/tiny"),
    "plot": (plot_cmd, plot_cmd.plot_command, "srkit plot runs/tiny -o runs/tiny/curves.png"),
    "degrade": (degrade_cmd, degrade_cmd.degrade_command,
                "srkit degrade photos/ -o lr/ --preset realesrgan --scale 4 --seed 0 --sheet sheet.png"),
    "models": (models_cmd, models_cmd.models_command,
               "srkit models ; srkit models --catalog --arch esrgan --scale 4 ; srkit models --refresh"),
    "pull": (pull_cmd, pull_cmd.pull_command,
             "srkit pull 4x-realesrgan-x4plus ; srkit upscale in.png -o out.png --model 4x-realesrgan-x4plus"),
    "serve": (serve_cmd, serve_cmd.serve_command,
              "srkit serve --workers 2 --models balanced-x4 bicubic ; srkit serve --host 0.0.0.0 --token SECRET"),
    "batch": (batch_cmd, batch_cmd.batch_command,
              "srkit batch photos/ -o photos_x4/ --engine ray --address auto --num-workers 8"),
}
for _name, (_module, _fn, _example) in _COMMANDS.items():
    app.command(_name, help=_module.HELP, epilog=f"Example: {_example}")(_fn)
# Command groups (sub-apps with their own commands): `srkit iqa score|fit-niqe`.
app.add_typer(iqa_cmd.app, name="iqa", help=iqa_cmd.HELP)


# What typer 0.2x prints as a value's type, -> what the help shows instead (click's names; flags show none).
_TYPE_LABELS = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "path": "PATH", "int range": "INTEGER",
                "float range": "FLOAT", "bool": ""}


def _plain_label(param: Any, ctx: Any) -> str | None:
    """The help's value label of one parameter: TEXT, PATH, [a|b], TEXT... (lists) or nothing (flags)."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    raw = param.display_type(ctx).strip("<>")
    many = raw.startswith("list[") or getattr(param, "multiple", False) or param.nargs != 1
    raw = raw[5:-1] if raw.startswith("list[") else raw
    label = _TYPE_LABELS.get(raw, f"[{raw}]" if "|" in raw else raw.upper())
    return f"{label}..." if many and label else label


def _prose(text: str) -> str:
    """Help text for rich: paragraphs re-flowed (the source's line breaks are not the terminal's) and brackets
    kept literally (rich markup would eat `[default: ...]` and leave a stray space)."""
    from rich.markup import escape

    paragraphs = text.strip().split("\n\n")
    return escape("\n\n".join(p if p.startswith("\b") else " ".join(p.split()) for p in paragraphs))


def _tidy_help(command: Any) -> Any:
    """Help as written: no `<bool>` / `<list[str]>` type labels, no stray spaces (see `_prose`). Applied to every
    command and group of the tree `typer.main.get_command` built."""
    ctx = typer.Context(command)
    stack = [command]
    while stack:
        cmd = stack.pop()
        stack.extend(getattr(cmd, "commands", {}).values())
        for attr in ("help", "epilog", "short_help"):
            if isinstance(getattr(cmd, attr, None), str):
                setattr(cmd, attr, _prose(getattr(cmd, attr)))
        params = list(cmd.params)
        if hasattr(cmd, "get_help_option"):
            params.append(cmd.get_help_option(ctx))
        for param in params:
            if param is None:
                continue
            if isinstance(getattr(param, "help", None), str):
                param.help = _prose(param.help)
            if param.metavar is not None or not hasattr(param, "display_type"):
                continue
            label = _plain_label(param, ctx)
            if param.param_type_name == "argument":
                param.metavar = param.name.upper()
                param.display_type_rich = lambda ctx, label=label: label  # its value label, as options have
            else:
                param.metavar = label
    return command


def expand_multi_value(argv: list[str]) -> list[str]:
    """`--sets A B --scales 2 3` -> `--sets A --sets B --scales 2 --scales 3`."""
    out: list[str] = []
    current: str | None = None
    for tok in argv:
        if tok in MULTI_VALUE_OPTIONS:
            current = tok
            continue
        if current is not None and not tok.startswith("-"):
            out.extend([current, tok])
            continue
        if current is not None and tok.startswith("-") and not out[-2:-1] == [current]:
            out.append(current)  # flag given without a value: let click report it
        current = None
        out.append(tok)
    if current is not None and not out[-2:-1] == [current]:
        out.append(current)
    return out


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    from srkit.errors import SrkitError

    args = expand_multi_value(list(sys.argv[1:] if argv is None else argv))
    verbose = "--verbose" in args or "-v" in args
    try:
        command = _tidy_help(typer.main.get_command(app))
        result = command.main(args=args, prog_name="srkit", standalone_mode=False)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print("srkit: interrupted", file=sys.stderr)
        sys.exit(130)
    except SrkitError as e:
        if verbose:
            raise
        print(f"srkit: error: {e}", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 - last line of defence: one line, no traceback
        # typer ships its own copy of click, so its usage errors are recognised by shape, not by class.
        if hasattr(e, "format_message") and getattr(e, "exit_code", None) == 2:
            ctx = getattr(e, "ctx", None)
            if type(e).__name__ == "NoArgsIsHelpError":
                sys.exit(0)  # typer has printed the help already
            cmd = ctx.command_path if ctx is not None else "srkit"
            print(f"{cmd}: error: {e.format_message()} (see '{cmd} --help')", file=sys.stderr)
            sys.exit(2)
        exit_code = getattr(e, "exit_code", None)
        if hasattr(e, "format_message") and isinstance(exit_code, int):
            print(f"srkit: error: {e.format_message()}", file=sys.stderr)
            sys.exit(exit_code)
        if verbose:
            raise
        print(f"srkit: internal error: {type(e).__name__}: {e} (rerun with --verbose for a traceback)", file=sys.stderr)
        sys.exit(1)
    if isinstance(result, int) and result:
        sys.exit(result)
