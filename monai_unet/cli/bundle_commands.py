"""``monai-unet train | evaluate | infer``: thin wrappers over a bundle's configs.

Each runs the bundle's config as ``python -m monai.bundle run --config_file ...`` would (same workflow class, same
``initialize``/``run``/``finalize`` ids), with ``bundle_root`` set to the bundle folder and the options given here
as config overrides:

==========  ======================================================================================
train       ``configs/train.json``
evaluate    ``configs/train.json`` + ``configs/evaluate.json`` (MONAI model-zoo layout: evaluate overrides
            train), or ``configs/evaluate.json`` alone when the bundle has no train config
infer       ``configs/inference.json`` (see ``monai-unet segment`` for one scan to one output file)
==========  ======================================================================================

``--dataset-dir`` sets the id ``dataset_dir``, ``--output-dir`` sets ``output_dir``, ``--device`` sets
``device``; any other config id is set with ``KEY=VALUE`` (VALUE read as JSON when it parses, else as a string;
nested ids with ``#``, e.g. ``network_def#dropout=0.2``). A KEY that is not an id of the merged configs is refused
(exit 2) with the closest existing id, since MONAI would add it silently and nothing would read it.

Training writes into a new run folder, ``runs/train-<date>-<time>/`` (checkpoints, history, the run's best
``model.pt``); the bundle's ``models/model.pt`` changes only with ``--promote`` (or when the bundle has none yet,
e.g. freshly planned). ``resume=true`` without ``--output-dir`` continues the latest run folder with a checkpoint.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from monai_unet.cli.bundle import open_bundle, parse_overrides, run_bundle_config
from monai_unet.errors import UsageError

__all__ = ["CONFIGS", "register", "run"]

#: Command → the configs it merges, in order (``evaluate`` drops ``train`` when the bundle has none).
CONFIGS: dict[str, tuple[str, ...]] = {"train": ("train",), "evaluate": ("train", "evaluate"), "infer": ("inference",)}

_HELP = {
    "train": "train a bundle (configs/train.json)",
    "evaluate": "evaluate a bundle's model on its validation data (configs/evaluate.json)",
    "infer": "run a bundle's inference config over a dataset (configs/inference.json)",
}


def _examples(command: str) -> str:
    bundle = "bundles/brain_tumor_mri_segmentation"
    lines = [
        f"  monai-unet {command} --bundle {bundle} --dataset-dir data/brats --output-dir runs/{command}",
        f"  monai-unet {command} --bundle bundles/em_membrane_segmentation --device cpu",
    ]
    if command == "train":
        lines.append(f"  monai-unet train --bundle {bundle} max_epochs=2 'network_def#dropout=0.2'")
    return "examples:\n" + "\n".join(lines)


def register(commands: argparse._SubParsersAction) -> None:
    for command in CONFIGS:
        parser = commands.add_parser(
            command,
            help=_HELP[command],
            description=__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            epilog=_examples(command),
        )
        parser.add_argument("--bundle", required=True, type=Path, help="the bundle folder")
        parser.add_argument(
            "--dataset-dir", type=Path, help="sets the config id dataset_dir (a folder, or a dataset.json)"
        )
        parser.add_argument("--output-dir", type=Path, help="sets the config id output_dir")
        parser.add_argument("--device", choices=("cpu", "cuda"), help="sets the config id device (a torch.device)")
        if command == "train":
            parser.add_argument(
                "--promote",
                action="store_true",
                help="also write the run's best model to the bundle's models/model.pt (sets the config id promote)",
            )
        parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="any other config id to override")
        parser.set_defaults(run=run)


def overrides_for(args: argparse.Namespace) -> dict[str, Any]:
    """The config overrides given by the options and the ``KEY=VALUE`` items (the items win)."""
    overrides: dict[str, Any] = {}
    if args.dataset_dir is not None:
        is_json = args.dataset_dir.is_file() and args.dataset_dir.suffix.lower() == ".json"
        if not (args.dataset_dir.is_dir() or is_json):
            raise FileNotFoundError(f"{args.dataset_dir}: no such dataset folder or dataset.json")
        overrides["dataset_dir"] = str(args.dataset_dir.resolve())
    if args.output_dir is not None:
        from monai_unet.io.atomic import check_writable_folder

        check_writable_folder(args.output_dir)
        overrides["output_dir"] = str(args.output_dir.resolve())
    if args.device is not None:
        import torch

        if args.device == "cuda" and not torch.cuda.is_available():
            raise UsageError("cuda: no CUDA device is available to torch here; use --device cpu")
        overrides["device"] = torch.device(args.device)
    items = parse_overrides(args.overrides)
    if getattr(args, "promote", False) or ("ckpt_dir" in items and "promote" not in items):
        overrides["promote"] = True  # an explicit ckpt_dir is where the user wants the weights
    overrides.update(items)
    return overrides


def _resume_folder(bundle, overrides: dict[str, Any]) -> None:
    """``resume=true`` without an output folder: continue the latest run folder that holds a checkpoint.

    Raises:
        UsageError: no run folder under ``runs/`` holds ``checkpoint_last.pt``.
    """
    from monai_unet.handlers import latest_run_dir

    if overrides.get("resume") is not True or "output_dir" in overrides:
        return
    folder = latest_run_dir(bundle.root / "runs")
    if folder is None:
        raise UsageError(
            f"{bundle.root / 'runs'}: no run folder holds checkpoint_last.pt, so there is nothing to resume; "
            "train without resume=true, or give the run folder with --output-dir"
        )
    overrides["output_dir"] = str(folder)


def _config_ids(node: Any, prefix: str = "") -> Iterator[str]:
    """Every id of a parsed config, nested ones joined with ``#`` as MONAI writes them."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        name = f"{prefix}{key}"
        yield name
        yield from _config_ids(value, f"{name}#")


def check_override_ids(bundle, configs: Sequence[str], keys: Sequence[str]) -> None:
    """Refuse override ids that no config of ``configs`` defines, naming the closest existing one.

    Raises:
        UsageError: an unknown id (``num_epochs`` where the config has ``max_epochs``).
    """
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(bundle.config(name)) for name in configs])
    ids = set(_config_ids(parser.get()))
    for key in keys:
        if key not in ids:
            close = difflib.get_close_matches(key, sorted(ids), n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]}?" if close else "; see the bundle's configs for the ids it reads"
            raise UsageError(
                f"{key}: no such config id in {bundle.root} ({' + '.join(configs)}), so the override would be "
                f"ignored{hint}"
            )


def run(args: argparse.Namespace) -> Any:
    """Run the command's configs; returns the finished workflow."""
    bundle = open_bundle(args.bundle)
    configs = [name for name in CONFIGS[args.command] if bundle.has_config(name) or name == CONFIGS[args.command][-1]]
    overrides = overrides_for(args)
    check_override_ids(
        bundle, configs, [*parse_overrides(args.overrides), *(["promote"] if "promote" in overrides else [])]
    )
    if args.command == "train":
        _resume_folder(bundle, overrides)
    workflow = run_bundle_config(bundle, configs, overrides)
    if args.command == "train":
        _report_run(bundle, workflow)
    return workflow


def _report_run(bundle, workflow) -> None:
    """One line on stderr: where the run wrote, and whether the bundle's weights changed."""
    import sys

    parser = workflow.parser
    output_dir = parser.get_parsed_content("output_dir")
    history = parser.get_parsed_content("validate#history") if "validate#history" in parser else None
    promoted = bool(getattr(history, "promoting", False)) and getattr(history, "best_epoch", -1) > 0
    weights = bundle.root / "models" / "model.pt"
    note = f"best model also written to {weights}" if promoted else f"{weights} unchanged (--promote replaces it)"
    print(f"monai-unet train: run folder {output_dir}; {note}", file=sys.stderr)
