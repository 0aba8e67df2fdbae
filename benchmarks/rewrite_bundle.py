"""Write a trained planned bundle again with the current planner: same plan and weights, new configs.

``python -m benchmarks.rewrite_bundle SOURCE_BUNDLE TARGET_BUNDLE DATASET [--run RUN_DIR]``

How the EM bundle 0.13.0 was made from the 0.12.0 run (``benchmarks/RESULTS.md``, twenty-second session):

1. the plan in ``SOURCE_BUNDLE/configs/plans.json`` is written to ``TARGET_BUNDLE`` by
   :func:`monai_unet.plan.bundle.write_bundle` (the configs of this version; the plan itself, checked, and the
   measured fingerprint of the source kept), with the source's ``models/model.pt``;
2. with ``--run`` (the training's run folder, holding its best ``model.pt``), what training decides after it ends is
   decided again by this version's rules on those weights: the plain validation and the mirroring check of the new
   ``train.json``, then :func:`monai_unet.plan.record.mirroring_decision`; the source's training summary and
   largest-component choice are kept.

Without ``--run`` the target's plans carry no post-processing (as a bundle not yet trained).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import torch
from monai.bundle import ConfigParser

from monai_unet.plan import measure, read_dataset, read_plans
from monai_unet.plan.bundle import write_bundle
from monai_unet.plan.record import mirroring_decision, read_plan


def decide_again(bundle: Path, run: Path) -> dict:
    """The mirroring decision of ``run``'s best weights under ``bundle``'s train config (nothing saved by it)."""
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "train.json"))
    parser.update({"bundle_root": str(bundle), "output_dir": str(run), "validate#handlers": []})
    network = parser.get_parsed_content("network")
    network.load_state_dict(torch.load(run / "model.pt", map_location="cpu", weights_only=True))
    evaluator = parser.get_parsed_content("validate#evaluator")
    evaluator.run()
    plain = {name: float(value) for name, value in evaluator.state.metrics.items()}
    key = parser["validate#history#key_metric"]
    history = SimpleNamespace(
        best_metric=plain[key],
        higher_is_better=parser["validate#history#higher_is_better"],
        key_metric=key,
        best_epoch=0,
        history=[{"epoch": 0, **plain}],
    )
    decision = mirroring_decision(history, parser.get_parsed_content("validate#mirroring"))
    decision["mirroring"]["remeasured"] = (
        "decided again after training by benchmarks.rewrite_bundle: the best weights validated plain and mirrored "
        "with the rewritten train.json"
    )
    return decision


def rewrite(source: Path, target: Path, dataset_path: Path, run: Path | None = None) -> Path:
    """Write ``source``'s plan and weights to ``target`` with this version's configs (see the module docstring)."""
    old = read_plans(source)
    dataset = read_dataset(dataset_path)
    write_bundle(target, read_plan(source), dataset, measure(dataset, progress=False), _name(source))
    plans_path = target / "configs" / "plans.json"
    plans = json.loads(plans_path.read_text())
    if {k: v for k, v in plans["plan"].items() if k != "reasons"} != {
        k: v for k, v in old["plan"].items() if k != "reasons"
    }:
        raise SystemExit(f"{target}: the plan written differs from {source}'s")
    plans["fingerprint"] = old["fingerprint"]
    (target / "models").mkdir(exist_ok=True)
    shutil.copy(source / "models" / "model.pt", target / "models" / "model.pt")
    if run is not None:
        plans["training"] = old["training"]
        plans["postprocessing"] = {**old["postprocessing"], **decide_again(target, run)}
    plans_path.write_text(json.dumps(plans, indent=4) + "\n")
    return target


def _name(bundle: Path) -> str:
    return json.loads((bundle / "configs" / "metadata.json").read_text())["name"]


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a trained planned bundle")
    parser.add_argument("target", type=Path, help="the folder to write (must not exist)")
    parser.add_argument("dataset", type=Path, help="the dataset the plan was made from (dataset.json)")
    parser.add_argument("--run", type=Path, default=None, help="the training's run folder (its best model.pt)")
    args = parser.parse_args(argv)
    run = args.run.resolve() if args.run else None
    target = rewrite(args.source.resolve(), args.target.resolve(), args.dataset.resolve(), run)
    print(target)
    return target


if __name__ == "__main__":
    main()
