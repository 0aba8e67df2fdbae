"""``monai-unet bundles``: the shipped bundles, each with its task, inputs, classes, version and terms.

Every command's ``--bundle`` takes one of these names as well as a bundle folder. ``--json`` prints the same as a
JSON list, for scripts.
"""

from __future__ import annotations

import argparse
import json

from monai_unet.cli.bundle import open_bundle, shipped_bundles

__all__ = ["describe", "register", "run"]


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "bundles",
        help="list the shipped bundles (usable by name with --bundle)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of text")
    parser.set_defaults(run=run)


def describe(name: str) -> dict:
    """One shipped bundle as the listing shows it (from its ``configs/metadata.json``)."""
    bundle = open_bundle(name)
    meta = bundle.metadata
    return {
        "name": bundle.root.name,
        "title": meta.get("name", bundle.root.name),
        "version": meta.get("version", ""),
        "task": meta.get("task", ""),
        "inputs": bundle.channel_names or [f"{bundle.input_channels or 1} channel(s)"],
        "classes": list(bundle.label_names.values()),
        "terms": meta.get("intended_use", ""),
        "folder": str(bundle.root),
    }


def run(args: argparse.Namespace) -> list[dict]:
    """Print the shipped bundles; returns their descriptions."""
    found = [describe(path.name) for path in shipped_bundles()]
    if args.json:
        print(json.dumps(found, indent=2))
        return found
    for item in found:
        print(f"{item['name']}  (version {item['version']})")
        print(f"  {item['title']}: {item['task']}")
        print(f"  inputs: {', '.join(item['inputs'])}; classes: {', '.join(item['classes'])}")
        print(f"  terms: {item['terms']}")
    return found
