"""``monai-unet export``: a bundle's trained network as TorchScript or ONNX, checked against the eager network.

The network is ``network_def`` of the bundle's ``configs/inference.json`` (parsed with ``bundle_root`` set, as
MONAI's ``ckpt_export`` does) with the weights of ``models/model.pt`` (a state dict, or a checkpoint holding one
under ``"model"`` or ``"network"``), in eval mode.

- ``torchscript``: ``torch.jit.script`` (``torch.jit.trace`` on the example input when the network cannot be
  scripted), saved by MONAI's ``save_net_with_metadata`` with ``metadata.json`` and ``inference.json`` as extra
  files, the archive ``ckpt_export`` writes, so ``monai.bundle`` tools and MONAI Deploy can read it. Any input
  shape the network accepts works.
- ``onnx``: ``torch.onnx.export`` (TorchScript-based exporter, opset of the installed torch) with input ``image``
  and output ``pred``; the batch axis is dynamic, the spatial shape is the example's (``--input-shape``), so
  export at the tile size the inference uses.

The example input is random normal noise of shape ``(1, in_channels, *input_shape)``; the exported model is run
on it (TorchScript in torch, ONNX in ONNX Runtime) and the largest absolute difference from the eager output is
printed. Above ``--atol`` the export is refused and no file is written.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monai_unet.cli.bundle import Bundle, open_bundle, unloadable_weights
from monai_unet.errors import UsageError

__all__ = ["example_input_shape", "export_network", "load_bundle_network", "register", "run"]

EXAMPLES = """examples:
  monai-unet export --bundle bundles/em_membrane_segmentation --format torchscript
  monai-unet export --bundle bundles/brain_tumor_mri_segmentation --format onnx --input-shape 96 96 96 -o tumour.onnx"""

_SUFFIX = {"torchscript": ".ts", "onnx": ".onnx"}


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "export",
        help="export a bundle's network to TorchScript or ONNX and check it against eager PyTorch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXAMPLES,
    )
    parser.add_argument("--bundle", required=True, type=Path, help="the bundle folder")
    parser.add_argument("--format", required=True, choices=tuple(_SUFFIX), help="torchscript or onnx")
    parser.add_argument("-o", "--output", type=Path, help="output file; default <bundle>/models/model.ts or model.onnx")
    parser.add_argument("--checkpoint", type=Path, help="weights to load; default <bundle>/models/model.pt")
    parser.add_argument(
        "--input-shape",
        type=int,
        nargs="+",
        metavar="N",
        help="spatial shape of the example input (voxels); default the metadata's spatial_shape, made valid",
    )
    parser.add_argument("--atol", type=float, default=1e-4, help="largest accepted |exported - eager| (logits)")
    parser.set_defaults(run=run)


def load_bundle_network(bundle: Bundle, checkpoint: Path | None = None) -> Any:
    """``network_def`` of the inference config with the checkpoint's weights, on the CPU, in eval mode.

    Raises:
        FileNotFoundError: no checkpoint file.
        UsageError: the checkpoint's weights do not fit the network (the message names the file).
    """
    import torch
    from monai.bundle import ConfigParser

    path = checkpoint or bundle.root / "models" / "model.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint; train the bundle first or pass --checkpoint")
    parser = ConfigParser()
    parser.read_config(str(bundle.config("inference")))
    parser.read_meta(str(bundle.root / "configs" / "metadata.json"))
    parser["bundle_root"] = str(bundle.root)
    network = parser.get_parsed_content("network_def")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, pickle.UnpicklingError) as error:
        raise unloadable_weights(path, error) from None
    for key in ("model", "network"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    try:
        network.load_state_dict(state)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise UsageError(f"{path}: weights do not fit the bundle's network_def ({first})") from None
    return network.eval()


def example_input_shape(network: Any, bundle: Bundle, requested: Sequence[int] | None) -> tuple[int, ...]:
    """Spatial shape of the example input: ``requested``, else the metadata's ``spatial_shape`` where it is
    numeric (else 64 per axis), moved up to a size the network accepts when it states its sizes
    (:class:`~monai_unet.networks.SizedNetwork`)."""
    from monai_unet.networks.size_arithmetic import SizedNetwork

    dims = getattr(network, "spatial_dims", None)
    stated = bundle.input_spatial_shape
    if requested:
        shape = [int(s) for s in requested]
    elif stated and all(isinstance(s, int) for s in stated):
        shape = list(stated)
    else:
        shape = [64] * (dims or len(stated) or 2)
    if dims is not None and len(shape) != dims:
        raise UsageError(f"--input-shape: the network is {dims}D, got {len(shape)} sizes {tuple(shape)}")
    if isinstance(network, SizedNetwork):
        return tuple(network.valid_input_shape(shape))
    return tuple(shape)


def export_network(network: Any, example: Any, fmt: str, path: Path, metadata: dict, inference: str) -> float:
    """Export ``network`` to ``path`` and return the largest |exported − eager| on ``example``.

    TorchScript goes through MONAI's ``save_net_with_metadata`` (the archive ``ckpt_export`` writes: ``metadata`` with
    the MONAI, PyTorch and NumPy versions added, and ``inference`` as ``inference.json``)."""
    import torch
    from monai.data import save_net_with_metadata

    with torch.inference_mode():
        reference = network(example)
    if fmt == "torchscript":
        try:
            exported = torch.jit.script(network)
        except Exception:  # networks with Python-only constructs can still be traced at the example's shape
            exported = torch.jit.trace(network, example)
        extra = {"inference.json": inference}
        save_net_with_metadata(exported, str(path), meta_values=metadata, more_extra_files=extra)
        loaded = torch.jit.load(str(path))
        with torch.inference_mode():
            result = loaded(example)
        return float((result - reference).abs().max())
    import warnings

    import onnxruntime

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation notes are not the user's concern
        torch.onnx.export(
            network,
            (example,),
            str(path),
            dynamo=False,
            input_names=["image"],
            output_names=["pred"],
            dynamic_axes={"image": {0: "batch"}, "pred": {0: "batch"}},
        )
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (result,) = session.run(None, {"image": example.numpy()})
    return float(abs(result - reference.numpy()).max())


def run(args: argparse.Namespace) -> Path:
    """Export, check and report; returns the written file."""
    import torch

    from monai_unet.io.atomic import atomic_path

    bundle = open_bundle(args.bundle)
    target = args.output or bundle.root / "models" / f"model{_SUFFIX[args.format]}"
    if not target.resolve().parent.is_dir():
        raise FileNotFoundError(f"{target}: the folder {target.resolve().parent} does not exist; create it first")
    network = load_bundle_network(bundle, args.checkpoint)
    shape = example_input_shape(network, bundle, args.input_shape)
    channels = getattr(network, "in_channels", None) or bundle.input_channels or 1
    example = torch.randn((1, channels, *shape), generator=torch.Generator().manual_seed(0))
    inference = bundle.config("inference").read_text(encoding="utf-8")
    with atomic_path(target, suffix=_SUFFIX[args.format]) as tmp:
        difference = export_network(network, example, args.format, tmp, bundle.metadata, inference)
        print(
            f"{args.format}: example input {tuple(example.shape)}, max |exported - eager| = {difference:.3g}",
            file=sys.stderr,
        )
        if not difference <= args.atol:
            raise RuntimeError(
                f"{target}: the exported network differs from eager PyTorch by {difference:.3g} > --atol "
                f"{args.atol:g}; nothing written"
            )
    print(target)
    return target
