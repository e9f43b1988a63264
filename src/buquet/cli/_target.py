"""Loading of the modules and objects named on the command line.

A target is one of::

    path/to/file.py            path/to/file.py:name
    package.module             package.module:name

A file is imported as a module named after the file's stem (``flows.py`` is
module ``flows``), with the file's directory first on ``sys.path`` so that it
can import its neighbours. Every process that loads the same file therefore
gives it the same module name, and objects defined in it get the same
qualified names in the worker and in the process that started a run.
A dotted module is imported with the current directory on ``sys.path``, as
``python -m`` does. ``name`` may be dotted to reach an attribute of an
attribute.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from buquet.errors import TargetError

logger = logging.getLogger(__name__)

_MISSING = object()


@dataclass(frozen=True)
class LoadedTarget:
    """A loaded target: its module and, when the target names one, the attribute."""

    text: str
    """The target as written on the command line."""
    module: ModuleType
    name: str | None = None
    """The attribute name after ``:``, or None."""
    value: Any = None
    """The named attribute, or None when the target names only a module."""


def load_target(text: str) -> LoadedTarget:
    """Import the module of ``text`` and look up the attribute it names.

    Raises TargetError, with one line naming the target, when the file or
    module is missing, its import raises, or the attribute does not exist.
    """
    location, name = split_target(text)
    if is_file_location(location):
        module = _import_file(text, Path(location))
    else:
        module = _import_dotted(text, location)
    if name is None:
        return LoadedTarget(text, module)
    return LoadedTarget(text, module, name, _get_attribute(text, module, name))


def split_target(text: str) -> tuple[str, str | None]:
    """Split ``location:name`` into its parts. The name is None when there is no ``:name``.

    A colon followed by something that is not a dotted identifier (as in a
    Windows drive letter) is part of the location.
    """
    location, colon, name = text.rpartition(":")
    if colon and location and all(part.isidentifier() for part in name.split(".")):
        return location, name
    if not text.strip():
        raise TargetError("empty target: give a file (flows.py) or a module (pkg.flows)")
    return text, None


def is_file_location(location: str) -> bool:
    """Return whether ``location`` names a file rather than a dotted module."""
    return location.endswith(".py") or "/" in location or os.sep in location


def _import_file(text: str, path: Path) -> ModuleType:
    if not path.is_file():
        reason = "is not a file" if path.exists() else "does not exist"
        raise TargetError(f"target {text}: {str(path)!r} {reason}")
    path = path.resolve()
    module_name = path.stem
    existing = sys.modules.get(module_name)
    if existing is not None:
        return _reuse_module(text, existing, path)
    _put_first_on_sys_path(str(path.parent))
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"target {text}: {str(path)!r} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as error:
        del sys.modules[module_name]
        if isinstance(error, KeyboardInterrupt | SystemExit):
            raise
        raise _import_failed(text, error) from error
    logger.debug("imported %s as module %s", path, module_name)
    return module


def _reuse_module(text: str, module: ModuleType, path: Path) -> ModuleType:
    loaded_from = getattr(module, "__file__", None)
    if loaded_from is not None and Path(loaded_from).resolve() == path:
        return module
    raise TargetError(
        f"target {text}: module name {module.__name__!r} is already taken by "
        f"{loaded_from or 'a built-in module'}; rename the file"
    )


def _import_dotted(text: str, module_name: str) -> ModuleType:
    _put_first_on_sys_path(os.getcwd())
    try:
        return importlib.import_module(module_name)
    except Exception as error:
        raise _import_failed(text, error) from error


def _import_failed(text: str, error: BaseException) -> TargetError:
    return TargetError(f"target {text}: import failed: {type(error).__name__}: {error}")


def _put_first_on_sys_path(directory: str) -> None:
    if not sys.path or sys.path[0] != directory:
        if directory in sys.path:
            sys.path.remove(directory)
        sys.path.insert(0, directory)


def _get_attribute(text: str, module: ModuleType, name: str) -> Any:
    value: Any = module
    owner = "the module"
    walked: list[str] = []
    for part in name.split("."):
        value = getattr(value, part, _MISSING)
        if value is _MISSING:
            raise TargetError(f"target {text}: {owner} has no attribute {part!r}")
        walked.append(part)
        owner = repr(".".join(walked))
    return value
