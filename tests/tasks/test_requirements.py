"""Packages the tasks need only lazily are declared in pyproject.toml and installed.

Neither is imported when the tasks load, so a missing one used to surface only
in the middle of a run: `--tensorboard` after the first epoch, `--dataset imdb`
and `--dataset tiny_shakespeare` inside tfds.
"""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "package, needed_by",
    [
        ("tensorboard", "--tensorboard: TensorFlow 2.21 no longer installs it"),
        (
            "importlib_resources",
            "tfds.load: tfds 4.9 imports it but declares it only for Python < 3.9 "
            "(tensorflow/datasets#11212)",
        ),
    ],
)
def test_lazily_imported_packages_are_declared_and_installed(package, needed_by):
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {
        re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0].lower().replace("-", "_")
        for spec in project["dependencies"]
    }
    assert package in declared, needed_by
    assert importlib.util.find_spec(package) is not None, needed_by
