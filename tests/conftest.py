"""Shared fixtures. Benchmark data is read in place from SRKIT_DATA or ../shared/datasets; never copied."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Every test runs with one intra-op thread (restored after): the tensors are tiny, so one thread is fastest,
    and CI runs `pytest -n 2` on 2 cores, where more threads per worker only spin-wait in OpenMP."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_sr_model():
    """A tiny x4 model shared by the whole session: FSRCNN-s (finite receptive field), random weights from a fixed
    seed (nudged like `helpers.rand_model`), eval mode. Read it, save it, run it; don't modify it in place (train,
    deploy, cast): take `copy.deepcopy(tiny_sr_model)` for that."""
    from helpers import rand_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return rand_model("fsrcnn-s", 4)


@pytest.fixture()
def srkit_cli(capsys):
    """Run `srkit ARGS` in this process through the app object (`srkit.cli.app.main`): returns a `CliResult`
    (returncode, stdout, stderr), like `subprocess.run(..., capture_output=True, text=True)` would. Arguments are
    passed through `str`, so paths can be given as they are. For what only a real process shows (signals, peak
    RSS, import time, environment read at start-up, the `python -m srkit` entry point) use a subprocess."""
    from helpers import CliResult, run_cli

    def run(*args) -> CliResult:
        capsys.readouterr()  # drop what the test printed before: the result holds this command's output only
        return CliResult(*run_cli(capsys, *map(str, args)))

    return run


def find_data_dir() -> Path | None:
    env = os.environ.get("SRKIT_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "datasets")
    for c in candidates:
        if (c / "Set5" / "HR").is_dir():
            return c
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = find_data_dir()
    if d is None:
        pytest.skip("benchmark datasets not found (set SRKIT_DATA)")
    return d


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Tests never read or write the user's srkit cache (pulled models, degraded LR, output records): one
    private `$SRKIT_CACHE` per test session (tests that need their own still set it with monkeypatch)."""
    old = os.environ.get("SRKIT_CACHE")
    os.environ["SRKIT_CACHE"] = str(tmp_path_factory.mktemp("srkit-cache"))
    yield
    if old is None:
        os.environ.pop("SRKIT_CACHE", None)
    else:
        os.environ["SRKIT_CACHE"] = old
