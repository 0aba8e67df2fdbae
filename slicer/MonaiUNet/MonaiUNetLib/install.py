"""Installing monai-unet into Slicer's Python from a wheel or a source checkout the user picks (not from the package
index, where the name is not ours), without replacing what Slicer ships (its SimpleITK, numpy) or the PyTorch the
user installed for their hardware (e.g. with the PyTorch extension).

:func:`install_plan` checks those first and returns two pip steps: the package itself without dependencies, then
its dependencies (with the ``dicom`` extra) less the provided ones.
"""

from __future__ import annotations

import importlib.util
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PROVIDED", "InstallPlan", "install_plan", "package_requirements"]

#: Distribution name → import name of what must already be in Slicer's Python; never installed by the module.
PROVIDED = {"torch": "torch", "numpy": "numpy", "simpleitk": "SimpleITK"}
#: The package's extras installed with it.
EXTRAS = ("dicom",)
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class InstallPlan:
    """The two ``slicer.util.pip_install`` argument lists, in order."""

    package: list[str]
    requirements: list[str]


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _keep(requirement: str) -> str | None:
    """A requirement line without its ``extra == ...`` marker, or None for an extra not installed."""
    spec, _, marker = requirement.partition(";")
    extra = re.search(r"""extra\s*==\s*["']([^"']+)["']""", marker)
    if extra is not None:
        return spec.strip() if _normalised(extra.group(1)) in EXTRAS else None
    return requirement.strip()


def package_requirements(source: str | Path) -> list[str]:
    """The requirements of monai-unet (with :data:`EXTRAS`) as a wheel's ``METADATA`` or a checkout's
    ``pyproject.toml`` states them.

    Raises:
        ValueError: ``source`` is neither a monai-unet wheel nor a folder holding monai-unet's ``pyproject.toml``.
    """
    source = Path(source)
    if source.is_file() and source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            names = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
            if len(names) != 1:
                raise ValueError(f"{source}: not a wheel (no single .dist-info/METADATA)")
            lines = wheel.read(names[0]).decode("utf-8").splitlines()
        name = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("Name:")), "")
        listed = [line.split(":", 1)[1] for line in lines if line.startswith("Requires-Dist:")]
    elif (source / "pyproject.toml").is_file():
        try:
            import tomllib
        except ImportError as error:  # Python 3.10
            raise ValueError(f"{source}: reading pyproject.toml needs Python 3.11; pick a built wheel") from error
        project = tomllib.loads((source / "pyproject.toml").read_text(encoding="utf-8")).get("project", {})
        name = project.get("name", "")
        optional = project.get("optional-dependencies", {})
        listed = list(project.get("dependencies", []))
        listed += [f'{r}; extra == "{extra}"' for extra in optional for r in optional[extra]]
    else:
        raise ValueError(f"{source}: pick a monai_unet-*.whl file or a monai-unet source folder (with pyproject.toml)")
    if _normalised(name) != "monai-unet":
        raise ValueError(f"{source}: this is {name or 'an unnamed package'}, not monai-unet")
    return [kept for kept in map(_keep, listed) if kept]


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def install_plan(source: str | Path, importable: Callable[[str], bool] = _importable) -> InstallPlan:
    """The pip steps that install monai-unet from ``source`` (a wheel, or a checkout: editable) into this Python.

    Raises:
        ValueError: a provided package (:data:`PROVIDED`) is missing (install PyTorch first), or ``source`` is not
            monai-unet.
    """
    missing = [module for module in PROVIDED.values() if not importable(module)]
    if missing:
        raise ValueError(
            f"{', '.join(missing)} not found in Slicer's Python: install PyTorch first (the PyTorch extension picks "
            "the build for your GPU, or slicer.util.pip_install('torch')); SimpleITK and numpy come with Slicer"
        )
    source = Path(source).resolve()
    requirements = [r for r in package_requirements(source) if _normalised(_NAME.match(r).group(1)) not in PROVIDED]
    package = [str(source), "--no-deps"] if source.is_file() else ["-e", str(source), "--no-deps"]
    return InstallPlan(package=package, requirements=requirements)
