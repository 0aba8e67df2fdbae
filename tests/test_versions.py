"""One version: the package's, each shipped bundle's metadata.json and the changelogs agree."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_package_bundles_and_changelog_share_one_version():
    version = re.search(r'^version = "([^"]+)"$', (REPO / "pyproject.toml").read_text(), re.M).group(1)
    shown = subprocess.run(
        [sys.executable, "-m", "monai_unet.cli.main", "--version"], capture_output=True, text=True, check=True
    )
    assert shown.stdout.strip() == f"monai-unet {version}"
    assert re.search(
        rf"^## {re.escape(version)} \(\d{{4}}-\d{{2}}-\d{{2}}\)$", (REPO / "CHANGELOG.md").read_text(), re.M
    )
    for metadata in sorted((REPO / "bundles").glob("*/configs/metadata.json")):
        meta = json.loads(metadata.read_text())
        assert meta["version"] == version, metadata
        assert version in meta["changelog"], f"{metadata}: no changelog entry for {version}"
