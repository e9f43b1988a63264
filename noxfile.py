"""Developer sessions: ``nox -s tests``, ``nox -s lint``, ``nox -s typecheck``.

The sessions run in the current environment (``venv_backend="none"``), so
install the project first: ``pip install -e '.[dev]'``.
"""

from __future__ import annotations

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
