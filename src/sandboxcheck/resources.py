"""Locate the data that ships with sandboxcheck (probes, matrices, presets, schemas)."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    packaged = Path(str(resources.files("sandboxcheck"))) / "_data" / name
    if packaged.is_dir():
        return packaged
    # Source checkout or editable install: the folder sits at the project root.
    source = _PKG.parent.parent / name
    if source.is_dir():
        return source
    raise FileNotFoundError(f"sandboxcheck data folder {name!r} is missing from this install")


def probes_dir() -> Path:
    """Folder holding the probe programs."""
    return _data_dir("probes")


def matrices_dir() -> Path:
    """Folder holding the bundled matrices."""
    return _data_dir("matrices")


def presets_dir() -> Path:
    """Folder holding the bundled target presets."""
    return _PKG / "presets"


def schema_path(name: str) -> Path:
    """Path of a bundled JSON Schema (``matrix`` or ``target``)."""
    return _PKG / "schemas" / f"{name}.schema.json"


def resolve_matrix(ref: str) -> Path:
    """A matrix path, or the name of a bundled matrix (``baseline``)."""
    path = Path(ref)
    bundled = matrices_dir() / (ref if ref.endswith((".yaml", ".yml")) else ref + ".yaml")
    # A folder of the same name (advisories/ in a checkout) does not hide a bundled matrix.
    if path.exists() and not (path.is_dir() and bundled.is_file()):
        return path
    if bundled.exists():
        return bundled
    return path


def bundled_matrices() -> list[str]:
    """Names of the bundled matrices (what ``resolve_matrix`` takes besides a path)."""
    return sorted(p.stem for p in matrices_dir().glob("*.yaml"))
