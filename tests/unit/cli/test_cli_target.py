"""Loading of targets: files and dotted modules, with or without an attribute."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from buquet.cli._target import load_target, split_target
from buquet.errors import TargetError


@pytest.fixture(autouse=True)
def restore_import_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]


def write(path: Path, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def test_file_target_module_named_by_stem(tmp_path: Path) -> None:
    path = write(tmp_path / "flows_stem.py", "VALUE = 42\n")
    loaded = load_target(str(path))
    assert loaded.module.__name__ == "flows_stem"
    assert loaded.module.VALUE == 42
    assert loaded.name is None
    assert loaded.value is None
    assert sys.path[0] == str(tmp_path.resolve())


def test_file_target_imports_neighbour(tmp_path: Path) -> None:
    write(tmp_path / "neighbour_helpers.py", "def double(x):\n    return 2 * x\n")
    path = write(tmp_path / "uses_neighbour.py", "from neighbour_helpers import double\n")
    loaded = load_target(f"{path}:double")
    assert loaded.value(4) == 8


def test_file_target_loaded_twice_same_module(tmp_path: Path) -> None:
    path = write(tmp_path / "loaded_twice.py", "import random\nTOKEN = random.random()\n")
    first = load_target(str(path))
    second = load_target(f"{path}:TOKEN")
    assert second.module is first.module
    assert second.value == first.module.TOKEN


def test_file_target_dotted_attribute(tmp_path: Path) -> None:
    path = write(
        tmp_path / "dotted_attr.py",
        """
        class Holder:
            inner = "found"
        """,
    )
    loaded = load_target(f"{path}:Holder.inner")
    assert loaded.name == "Holder.inner"
    assert loaded.value == "found"


def test_file_target_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.py"
    with pytest.raises(TargetError) as caught:
        load_target(f"{missing}:flow")
    assert str(caught.value) == f"target {missing}:flow: {str(missing)!r} does not exist"


def test_file_target_directory(tmp_path: Path) -> None:
    folder = tmp_path / "folder.py"
    folder.mkdir()
    with pytest.raises(TargetError, match="is not a file"):
        load_target(str(folder))


def test_file_target_missing_attribute(tmp_path: Path) -> None:
    path = write(tmp_path / "no_foo.py", "bar = 1\n")
    with pytest.raises(TargetError) as caught:
        load_target(f"{path}:foo")
    assert str(caught.value) == f"target {path}:foo: the module has no attribute 'foo'"


def test_file_target_missing_nested_attribute(tmp_path: Path) -> None:
    path = write(tmp_path / "no_nested.py", "class Holder:\n    pass\n")
    with pytest.raises(TargetError) as caught:
        load_target(f"{path}:Holder.missing")
    assert str(caught.value).endswith("'Holder' has no attribute 'missing'")


def test_file_target_import_error(tmp_path: Path) -> None:
    path = write(tmp_path / "raises_on_import.py", "1 / 0\n")
    with pytest.raises(TargetError) as caught:
        load_target(str(path))
    message = str(caught.value)
    assert message == f"target {path}: import failed: ZeroDivisionError: division by zero"
    assert "raises_on_import" not in sys.modules


def test_file_target_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path / "bad_syntax.py", "def broken(:\n")
    with pytest.raises(TargetError, match="import failed: SyntaxError"):
        load_target(str(path))


def test_file_target_name_taken(tmp_path: Path) -> None:
    path = write(tmp_path / "json.py", "VALUE = 1\n")
    with pytest.raises(TargetError) as caught:
        load_target(str(path))
    assert "module name 'json' is already taken by" in str(caught.value)
    assert str(caught.value).endswith("rename the file")


def test_dotted_target_from_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "cli_target_pkg" / "__init__.py", "")
    write(tmp_path / "cli_target_pkg" / "flows.py", "def flow():\n    return 'ran'\n")
    monkeypatch.chdir(tmp_path)
    loaded = load_target("cli_target_pkg.flows:flow")
    assert loaded.module.__name__ == "cli_target_pkg.flows"
    assert loaded.value() == "ran"


def test_dotted_target_missing_module() -> None:
    with pytest.raises(TargetError) as caught:
        load_target("no_such_package_here.flows")
    assert str(caught.value) == (
        "target no_such_package_here.flows: import failed: "
        "ModuleNotFoundError: No module named 'no_such_package_here'"
    )


def test_split_target_cases() -> None:
    assert split_target("flows.py") == ("flows.py", None)
    assert split_target("dir/flows.py:flow") == ("dir/flows.py", "flow")
    assert split_target("pkg.flows:Holder.flow") == ("pkg.flows", "Holder.flow")
    assert split_target(r"C:\work\flows.py") == (r"C:\work\flows.py", None)
    assert split_target(r"C:\work\flows.py:flow") == (r"C:\work\flows.py", "flow")


def test_split_target_empty() -> None:
    with pytest.raises(TargetError, match="empty target"):
        split_target(" ")
