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
from srkit.cli import degrade as degrade_cmd
from srkit.cli import eval as eval_cmd
from srkit.cli import export as export_cmd
from srkit.cli import info as info_cmd
from srkit.cli import iqa as iqa_cmd
from srkit.cli import plot as plot_cmd
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
MULTI_VALUE_OPTIONS = {"--sets", "--scales", "--metrics"}

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
}
for _name, (_module, _fn, _example) in _COMMANDS.items():
    app.command(_name, help=_module.HELP, epilog=f"Example: {_example}")(_fn)
# Command groups (sub-apps with their own commands): `srkit iqa score|fit-niqe`.
app.add_typer(iqa_cmd.app, name="iqa", help=iqa_cmd.HELP)


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
        result = app(args=args, prog_name="srkit", standalone_mode=False)
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
