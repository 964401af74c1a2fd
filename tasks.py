#!/usr/bin/env python3
"""The README's two commands, needing nothing but Python 3.11+:

    python3 tasks.py run    # set up, then start the service on the SQLite default
    python3 tasks.py test   # set up, then run every check: ruff, mypy, pytest
    python3 tasks.py bench  # the benchmark (not a test): ratios against baselines

Each creates the virtual environment ``.venv`` and installs the project into it when
it is missing or older than ``pyproject.toml``. Arguments after the command go to
``casebook serve`` or to ``pytest``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed"


def sh(*args: str | Path) -> int:
    return subprocess.call([str(a) for a in args], cwd=ROOT)


def ensure_venv() -> None:
    if STAMP.exists() and STAMP.stat().st_mtime >= (ROOT / "pyproject.toml").stat().st_mtime:
        return
    if sys.version_info < (3, 11):  # noqa: UP036 - said to whoever runs an older one
        sys.exit(f"casebook needs Python 3.11 or newer, not {sys.version.split()[0]}")
    print("setting up .venv (first run only) ...", flush=True)
    steps = [
        (sys.executable, "-m", "venv", VENV),
        (BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip"),
        (BIN / "python", "-m", "pip", "install", "--quiet", "-e", ".[test]"),
    ]
    for step in steps:
        if sh(*step) != 0:
            sys.exit("setting up the virtual environment failed")
    STAMP.touch()


def run(args: list[str]) -> int:
    ensure_venv()
    casebook = BIN / "casebook"
    print(
        "\nFirst key: in another terminal, in this folder, run\n"
        f"  {casebook.relative_to(ROOT)} keys create --name me --role case_worker --org my-org\n"
        "and send it as 'Authorization: Bearer <key>'. API docs: http://127.0.0.1:8000/docs\n",
        flush=True,
    )
    return sh(casebook, "serve", *(args or ["--host", "127.0.0.1", "--port", "8000"]))


def test(args: list[str]) -> int:
    ensure_venv()
    checks = [
        (BIN / "ruff", "check", "domain", "infrastructure", "api", "tests", "bench", "tasks.py"),
        (BIN / "ruff", "format", "--check", "domain", "infrastructure", "api", "tests", "bench"),
        (BIN / "mypy",),
        (BIN / "python", "-m", "pytest", "-n", "auto", "--maxprocesses", "4", *args),
    ]
    for check in checks:
        print(
            "$",
            " ".join(str(c.relative_to(ROOT)) if isinstance(c, Path) else c for c in check),
            flush=True,
        )
        code = sh(*check)
        if code != 0:
            return code
    return 0


def bench(args: list[str]) -> int:
    ensure_venv()
    return sh(BIN / "python", "-m", "bench", *args)


if __name__ == "__main__":
    commands = {"run": run, "test": test, "bench": bench}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    sys.exit(commands[sys.argv[1]](sys.argv[2:]))
