"""`srkit serve` and `srkit batch` are registered with their help, and `srkit --help` still imports none of torch,
fastapi, uvicorn or ray (their imports live inside the command functions)."""

from __future__ import annotations

import subprocess
import sys

from helpers import subprocess_env


def test_commands_listed_with_help(srkit_cli):
    r = srkit_cli("--help")
    assert r.returncode == 0 and "serve" in r.stdout and "batch" in r.stdout
    r = srkit_cli("serve", "--help")
    assert r.returncode == 0 and "--workers" in r.stdout and "127.0.0.1" in r.stdout and "--token" in r.stdout
    r = srkit_cli("batch", "--help")
    assert r.returncode == 0 and "--engine" in r.stdout and "--address" in r.stdout and "--num-workers" in r.stdout


def test_help_imports_no_heavy_module():
    code = ("import sys, srkit.cli.app, srkit.cli.serve, srkit.cli.batch; "
            "print(sorted(m for m in ('torch', 'fastapi', 'uvicorn', 'ray', 'starlette') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=subprocess_env())
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
