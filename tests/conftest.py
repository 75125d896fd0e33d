"""Shared fixtures. Benchmark data is read in place from SRKIT_DATA or ../shared/datasets; never copied."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


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
