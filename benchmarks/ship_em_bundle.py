"""Make the shipped EM bundle from a measured planned-vs-stock ISBI run.

``python -m benchmarks.ship_em_bundle RUN_DIR [--other-seed RUN_DIR ...] [--previous DIR] [--output DIR]``

RUN_DIR is the output of ``python -m benchmarks.planned_vs_stock isbi`` (fold 4: trained on slices 00-19 for
20 minutes, validated on 20-24, the split of issue 12's EM target). Its planned bundle and the weights it trained
are the ones scored against the stock recipe in ``benchmarks/RESULTS.md``, so they are shipped as they are, not
retrained. What the planner cannot know is added here:

1. training's ``dataset_dir`` is ``benchmarks/datasets/isbi2012`` of this checkout (the split names files relative
   to it), inference reads the demo slices in ``sample_data/isbi2012_em/images`` and writes overlays;
2. the paper's own recipe stays runnable beside it: the hand-written configs of version 0.2.0 (valid U-Net,
   overlap-tile, border weight map, one 508² tile per step, elastic deformation) become ``train_paper.json``,
   ``evaluate_paper.json`` and ``inference_paper.json``, with their weights in ``models/paper/model.pt``;
3. the package version, the changelog, the licence and a README section with the measured tables.

``--previous`` is the bundle's previous release (default ``bundles/em_membrane_segmentation``): its licence,
references and changelog carry over, and its paper recipe (its ``*_paper.json``, or, for 0.2.0, its own configs).

The folder is written to ``--output`` (default ``outputs/shipped/em_membrane_segmentation``); check it, then
replace ``bundles/em_membrane_segmentation`` with it.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.ship_mri_bundle import edit_json, keep_terms

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "bundles" / "em_membrane_segmentation"
NAME = "EM membrane segmentation (planned 2D U-Net, ISBI 2012)"


def _change(plan: dict) -> str:
    """The changelog entry of a release made from ``plan`` (plans.json's ``plan``)."""
    patch = "x".join(str(p) for p in plan["patch_size"])
    return (
        f"re-planned by monai-unet plan (same-padding U-Net, {plan['network']['norm']} norm, {patch} patches of "
        f"{plan['batch_size']}, "
        f"{plan['loss']['name']}, one patch in three centred on membrane, time-driven poly decay) and trained on "
        "slices 00-19 for 20 minutes on 2 CPU cores; the paper's recipe stays as train_paper.json / "
        "inference_paper.json"
    )


#: The measures the README and metadata report: metadata key, README row, where a comparison side holds it.
MEASURES = [
    ("val_mean_dice", "membrane Dice", lambda side: side["mean_dice"]),
    ("val_pixel_error", "ISBI pixel error", lambda side: side["isbi"]["pixel_error"]),
    ("val_rand_error", "ISBI Rand error at 0.5", lambda side: side["isbi"]["rand_error"]),
    ("val_rand_error_best_threshold", "ISBI Rand error, best threshold", lambda side: side["isbi"]["best_rand_error"]),
]
#: The paper's recipe on slices 20-24, 20 minutes (``benchmarks/RESULTS.md``): SGD with momentum 0.99 (what
#: ``train_paper.json`` runs and ``models/paper`` holds) and, for reference, the Adam variant of version 0.2.0.
PAPER_METRICS = {
    "sgd": {
        "val_mean_dice": 0.758,
        "val_pixel_error": 0.116,
        "val_rand_error": 0.313,
        "val_rand_error_best_threshold": 0.195,
    },
    "adam": {
        "val_mean_dice": 0.796,
        "val_pixel_error": 0.091,
        "val_rand_error": 0.311,
        "val_rand_error_best_threshold": 0.202,
    },
}
PAPER_NOTE = (
    "The paper's recipe: valid-padding U-Net, overlap-tile inference, border weight map, one 508² tile per step, SGD "
    "with momentum 0.99. Its weights are in models/paper/model.pt."
)


def _paper_configs(previous: Path, bundle: Path) -> None:
    """The paper's recipe as ``*_paper.json`` reading and writing ``models/paper/``: taken over from ``previous``,
    or made from its configs where ``previous`` is the hand-written 0.2.0 bundle."""
    (bundle / "models" / "paper").mkdir(parents=True, exist_ok=True)
    if (previous / "configs" / "train_paper.json").is_file():
        for name in ("train", "evaluate", "inference"):
            shutil.copy(previous / "configs" / f"{name}_paper.json", bundle / "configs" / f"{name}_paper.json")
        shutil.copy(previous / "models" / "paper" / "model.pt", bundle / "models" / "paper" / "model.pt")
        return
    for name in ("train", "evaluate", "inference"):
        config = json.loads((previous / "configs" / f"{name}.json").read_text())
        if "ckpt_dir" in config:
            config["ckpt_dir"] = "$os.path.join(@bundle_root, 'models', 'paper')"
        if "ckpt_path" in config:
            config["ckpt_path"] = "$os.path.join(@bundle_root, 'models', 'paper', 'model.pt')"
        config = {"_desc_": PAPER_NOTE, **config} if name == "train" else config
        (bundle / "configs" / f"{name}_paper.json").write_text(json.dumps(config, indent=4) + "\n")
    shutil.copy(previous / "models" / "model.pt", bundle / "models" / "paper" / "model.pt")


def ship(
    run: Path, output: Path, previous: Path = SHIPPED, other_seeds: Sequence[Path] = (), change: str | None = None
) -> Path:
    """Write the bundle of ``run`` (a ``planned_vs_stock isbi`` folder) to ``output``; each of ``other_seeds``, the
    same plan run with another seed against the stock's run of that seed, adds both to the README's table (not
    shipped). ``change``: the changelog entry, when it is not new weights of a new plan."""
    from monai_unet import __version__

    source = run / "bundle"
    if output.exists():
        shutil.rmtree(output)
    for part in ("configs", "docs", "models"):
        shutil.copytree(source / part, output / part)
    keep_terms(previous, output)
    shutil.copy(previous / "configs" / "logging.conf", output / "configs" / "logging.conf")
    _paper_configs(previous, output)
    edit_json(
        output / "configs" / "train.json",
        dataset_dir="$os.path.join(@bundle_root, '..', '..', 'benchmarks', 'datasets', 'isbi2012')",
    )
    edit_json(
        output / "configs" / "inference.json",
        dataset_dir="$os.path.join(@bundle_root, '..', '..', 'sample_data', 'isbi2012_em', 'images')",
        save_overlays=True,
    )
    plans = json.loads((output / "configs" / "plans.json").read_text())
    edit_json(output / "configs" / "plans.json", dataset="benchmarks/datasets/isbi2012/dataset.json")

    meta_path = output / "configs" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    old = json.loads((previous / "configs" / "metadata.json").read_text())
    comparison = json.loads((run / "comparison.json").read_text())
    meta.update(
        version=__version__,
        changelog={
            __version__: change or _change(plans["plan"]),
            **{k: v for k, v in old["changelog"].items() if k != __version__},
        },
        name=NAME,
        references=old["references"],
        data_source=old["data_source"],
        intended_use=old["intended_use"],
        eval_metrics={key: round(value(comparison["ours"]), 4) for key, _, value in MEASURES},
    )
    meta_path.write_text(json.dumps(meta, indent=4) + "\n")

    others = [json.loads((folder / "comparison.json").read_text()) for folder in other_seeds]
    readme = output / "docs" / "README.md"
    text = readme.read_text().replace(str(source), "bundles/em_membrane_segmentation")
    text = text.replace(plans["dataset"], "benchmarks/datasets/isbi2012/dataset.json")
    readme.write_text(text + _results([comparison, *others], PAPER_METRICS, plans))
    return output


def _seed_means(comparisons: list[dict]) -> str:
    """A sentence with the means of ours and the stock over the seeds of ``comparisons``, where there are several."""
    if len(comparisons) < 2:
        return ""
    means = ", ".join(
        f"{name} {np.mean([value(c['ours']) for c in comparisons]):.4f} against "
        f"{np.mean([value(c['stock']) for c in comparisons]):.4f}"
        for _, name, value in MEASURES
    )
    return f"\nMeans over the {len(comparisons)} seeds, planned against stock: {means}.\n"


def _results(comparisons: list[dict], paper: dict, plans: dict) -> str:
    """The README's performance section: ours and the stock for each of ``comparisons`` (the shipped run first, then
    the same plan's other seeds), then the paper's recipe."""
    columns = []
    for index, comparison in enumerate(comparisons):
        seed, shipped = comparison["seed"], "these weights" if index == 0 else "not shipped"
        columns += [(f"planned, seed {seed} ({shipped})", comparison["ours"])]
        columns += [(f"stock, seed {seed}", comparison["stock"])]
    header = " | ".join(name for name, _ in columns)
    table = "\n".join(
        f"| {name} | "
        + " | ".join(f"{value(side):.4f}" for _, side in columns)
        + f" | {paper['sgd'][key]:.3f} | {paper['adam'][key]:.3f} |"
        for key, name, value in MEASURES
    )
    training, norm = plans["training"], plans["plan"]["network"]["norm"]
    option = " --norm batch" if norm == "batch" else ""
    mirroring = plans["postprocessing"].get("mirroring", {})
    tta = "on" if plans["postprocessing"].get("tta_axes") else "off"
    return f"""
## Performance: how the shipped weights were made and what they scored

`models/model.pt` is the best network (by validation Dice) of one planned run, `python -m benchmarks.planned_vs_stock
isbi --minutes 20`: `monai-unet plan --fold 4{option}` on `benchmarks/datasets/isbi2012/dataset.json` ({norm} norm),
trained on slices 00-19 for 20 minutes on 2 CPU cores ({training["iterations"]} iterations, {training["validations"]}
validations on slices 20-24, as the stock recipe's), scored on slices 20-24 against the stock MONAI recipe
(`BasicUNet`, `benchmarks/baseline_em_basicunet.py`) trained on the same split for the same minutes (for these
weights on the same machine: `benchmarks/RESULTS.md`), with the same scoring code; `python -m
benchmarks.ship_em_bundle` made this folder from that run. The paper's recipe (`configs/train_paper.json`: valid
U-Net without normalisation, border weight map w0 = 10 and sigma = 5 px, one 508² tile per step, SGD with momentum
0.99 at learning rate 0.001, elastic 3×3 grid with sigma = 10 px; `evaluate_paper.json`, `inference_paper.json` and
`models/paper/model.pt`, the best of a 20-minute run, `python -m benchmarks.paper_recipe`) is beside it:

    python -m monai.bundle run --config_file bundles/em_membrane_segmentation/configs/inference_paper.json \\
        --bundle_root bundles/em_membrane_segmentation --output_dir OUT
    python -m monai.bundle run --config_file bundles/em_membrane_segmentation/configs/train_paper.json \\
        --bundle_root bundles/em_membrane_segmentation

Test-time mirroring is {tta} for these weights: {mirroring.get("reason", "not checked")}.

| slices 20-24 | {header} | paper's recipe, SGD 0.99 | the same with Adam (0.2.0) |
|---|{"---|" * len(columns)}---|---|
{table}
{_seed_means(comparisons)}
Lower is better for the errors. Other seeds and every run that lost are in `benchmarks/RESULTS.md`. Output PNGs hold
class indices (1 = membrane); the ISBI files' own convention is the opposite (0 = membrane). Data terms:
non-commercial research use (Cardona et al. 2010; see `LICENSE`). Not for clinical use.
"""


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a planned_vs_stock isbi output folder")
    parser.add_argument(
        "--other-seed",
        type=Path,
        action="append",
        default=[],
        help="the same plan's run with another seed (its scores join the table; repeatable)",
    )
    parser.add_argument("--previous", type=Path, default=SHIPPED, help="the previous release of the bundle")
    parser.add_argument("--change", default=None, help="the changelog entry (default: new weights of a new plan)")
    parser.add_argument("--output", type=Path, default=ROOT / "outputs" / "shipped" / "em_membrane_segmentation")
    args = parser.parse_args(argv)
    others = [folder.resolve() for folder in args.other_seed]
    output = ship(args.run.resolve(), args.output.resolve(), args.previous.resolve(), others, args.change)
    print(output)
    return output


if __name__ == "__main__":
    main()
