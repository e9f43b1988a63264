"""Developer sessions: ``nox -s tests``, ``nox -s lint``, ``nox -s typecheck``, ``nox -s soak``.

The sessions run in the current environment (``venv_backend="none"``), so
install the project first: ``pip install -e '.[dev]'``.
"""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    """Run the test suite; extra arguments go to pytest."""
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(venv_backend="none")
def lint(session: nox.Session) -> None:
    """Check the code with ruff, and its formatting."""
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(venv_backend="none")
def typecheck(session: nox.Session) -> None:
    """Type-check the package with mypy in strict mode."""
    session.run("mypy")


@nox.session(venv_backend="none")
def soak(session: nox.Session) -> None:
    """Run the chaos soak on SeaweedFS; extra arguments go to bench/soak.py.

    Not a default session: with its defaults it runs for more than 10 minutes.
    A short version: ``nox -s soak -- --workers 2 --runs 20 --minutes 1``.
    """
    session.run("python", "bench/soak.py", *session.posargs)


PEERS = {
    "buquet-orig": "buquet==0.1.0",
    "celery": "celery[redis]>=5,<6",
    "dbos": "dbos>=3,<4",
}


def _install_peers(session: nox.Session) -> None:
    """Create bench/.peers/NAME with each peer; a failed install is reported by the bench run."""
    for name, requirement in PEERS.items():
        venv = f"bench/.peers/{name}"
        if not os.path.exists(f"{venv}/bin/python"):
            session.run("python", "-m", "venv", venv)
            session.run(f"{venv}/bin/pip", "install", "-q", requirement, success_codes=[0, 1])


@nox.session(venv_backend="none")
def bench(session: nox.Session) -> None:
    """Run the benchmarks with their peers; e.g. ``nox -s bench -- --quick``."""
    _install_peers(session)
    session.run("python", "-m", "bench", *session.posargs)


@nox.session(venv_backend="none")
def bench_check(session: nox.Session) -> None:
    """Run the benchmarks and fail when a target in bench/targets.toml is missed."""
    _install_peers(session)
    session.run("python", "-m", "bench", "--check", *session.posargs)
