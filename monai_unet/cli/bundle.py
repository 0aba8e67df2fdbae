"""A bundle folder as the commands see it: its configs, its metadata, and running a config as MONAI does.

Every command that runs a bundle goes through :func:`run_bundle_config`, which builds the workflow with
``monai.bundle.scripts.create_workflow`` and calls ``run`` then ``finalize``: exactly what
``python -m monai.bundle run --config_file ... --meta_file ... --logging_file ...`` does, with the command's options
passed as config overrides. Nothing of a bundle's pipeline is re-implemented here.

Running a bundle runs its code: ``_target_`` entries are imported and called, ``$`` expressions are evaluated.
Only pass bundles you trust.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import re
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monai_unet.errors import UsageError

__all__ = [
    "INFERENCE_PROPERTIES",
    "SHIPPED_BUNDLES",
    "Bundle",
    "BundleRunError",
    "bundle_logs_on_stderr",
    "open_bundle",
    "parse_overrides",
    "run_bundle_config",
    "shipped_bundles",
]


# MONAI logs (and warns) on every run without NVIDIA's nvImageCodec that its GPU DICOM decoder is unavailable.
_GPU_CODEC_LOGGER = "monai.data.nvimgcodec_pydicom_plugin"


#: The ids ``monai-unet segment`` sets in a bundle's ``configs/inference.json`` (the CLI-bundle contract), in MONAI's
#: bundle-properties format: ``{"infer": INFERENCE_PROPERTIES}`` saved as JSON is a ``properties_path`` for
#: ``monai.bundle.ConfigWorkflow(..., workflow_type="infer").check_properties()``.
INFERENCE_PROPERTIES: dict[str, dict[str, Any]] = {
    name: {"description": text, "required": required, "id": name}
    for name, required, text in (
        ("bundle_root", True, "the bundle folder"),
        ("device", True, "a torch.device to run on"),
        ("datalist", True, 'the cases: [{"image": path or [path per channel], "case": output name}]'),
        ("output_dir", True, "the folder the outputs are written to"),
        ("output_ext", True, ".nii.gz, .nii, .seg.nrrd, .png or dicomseg"),
        ("output_postfix", True, "the label file is <case>_<output_postfix><output_ext>"),
        ("precise", True, "strict float32 instead of the fast path"),
        ("save_probabilities", True, "also write <case>_prob.*"),
        ("progress", True, "a progress bar on stderr"),
        ("tta_axes", False, "axes to mirror for test-time augmentation (--tta)"),
        ("save_overlays", False, "review overlays beside the outputs (off for one OUTPUT)"),
        ("ckpt_path", False, "the weights file (--checkpoint)"),
        ("dicom_resample", False, "resample tilted or unevenly spaced DICOM series onto a regular grid (--resample)"),
    )
}


class BundleRunError(RuntimeError):
    """A bundle config failed for a reason other than bad input data (exit code 1: an internal error)."""


@dataclass(frozen=True)
class Bundle:
    """A MONAI bundle folder (``configs/``, ``models/``, ``docs/``) and its parsed ``configs/metadata.json``.

    Args:
        root: the bundle folder.
        metadata: the content of ``configs/metadata.json``.
    """

    root: Path
    metadata: dict

    def config(self, name: str) -> Path:
        """``configs/<name>.json`` (or ``.yaml``); raises ``UsageError`` naming the bundle when it is missing."""
        for suffix in (".json", ".yaml", ".yml"):
            path = self.root / "configs" / f"{name}{suffix}"
            if path.is_file():
                return path
        raise UsageError(f"{self.root}: the bundle has no configs/{name}.json, so it cannot run this command")

    def check_inference_contract(self, also: Sequence[str] = ()) -> dict[str, Any]:
        """Refuse a bundle whose inference config lacks an id of :data:`INFERENCE_PROPERTIES` that is required, or
        one of ``also`` (optional ids an option needs, e.g. ``ckpt_path`` for ``--checkpoint``), before any image is
        read. Only top-level ids are looked up; nothing is parsed or instantiated.

        Returns:
            The inference config as written (top-level ids, unparsed), for the caller to read its defaults.

        Raises:
            UsageError: naming the config and the missing ids.
        """
        from monai.bundle import ConfigParser

        path = self.config("inference")
        config = ConfigParser.load_config_file(str(path))
        needed = [n for n, p in INFERENCE_PROPERTIES.items() if p["required"] or n in also]
        missing = [n for n in needed if INFERENCE_PROPERTIES[n]["id"] not in config]
        if missing:
            raise UsageError(
                f"{path}: lacks the id(s) {', '.join(missing)} that monai-unet sets (the CLI-bundle contract, "
                "monai_unet.cli.bundle.INFERENCE_PROPERTIES); add them to the config"
            )
        return config

    def has_config(self, name: str) -> bool:
        """Whether ``configs/<name>.json`` (or ``.yaml``) exists."""
        return any((self.root / "configs" / f"{name}{s}").is_file() for s in (".json", ".yaml", ".yml"))

    @property
    def logging_file(self) -> Path | None:
        """``configs/logging.conf`` when the bundle has one."""
        path = self.root / "configs" / "logging.conf"
        return path if path.is_file() else None

    def _pred_format(self) -> Mapping[str, Any]:
        return self.metadata.get("network_data_format", {}).get("outputs", {}).get("pred", {})

    def _image_format(self) -> Mapping[str, Any]:
        return self.metadata.get("network_data_format", {}).get("inputs", {}).get("image", {})

    @property
    def input_channels(self) -> int | None:
        """``network_data_format.inputs.image.num_channels``: images the network takes per case (None: unstated)."""
        value = self._image_format().get("num_channels")
        return int(value) if value is not None else None

    @property
    def input_spatial_shape(self) -> list:
        """``inputs.image.spatial_shape`` as stated (ints, or MONAI's expressions such as ``"16*n"``)."""
        return list(self._image_format().get("spatial_shape", []))

    @property
    def channel_names(self) -> list[str]:
        """Names of the input channels (``inputs.image.channel_def``, e.g. ``["FLAIR", "T1c"]``), in order."""
        channel_def = self._image_format().get("channel_def", {})
        return [str(channel_def[k]) for k in sorted(channel_def, key=int)]

    @property
    def label_names(self) -> dict[int, str]:
        """Label value → segment name, from ``outputs.pred.channel_def``, without the background (value 0)."""
        channel_def = self._pred_format().get("channel_def", {})
        return {int(k): str(v) for k, v in channel_def.items() if int(k) != 0}

    @property
    def label_colors(self) -> dict[int, tuple[float, float, float]]:
        """Label value → RGB in [0, 1], from ``outputs.pred.label_colors`` (values without one: unstated)."""
        colors = self._pred_format().get("label_colors", {})
        return {int(k): tuple(float(c) for c in v) for k, v in colors.items() if int(k) != 0}  # type: ignore[misc]


#: The bundles shipped with the package; ``--bundle NAME`` finds them by name. ``monai_unet/shipped_bundles`` is the
#: wheel's copy of the checkout's ``bundles/`` (a link to it in a checkout), resolved so that the configs' relative
#: paths (``bundle_root/../../sample_data``) mean the same as from ``bundles/``.
SHIPPED_BUNDLES = (Path(__file__).resolve().parents[1] / "shipped_bundles").resolve()


def shipped_bundles() -> list[Path]:
    """The shipped bundle folders, by name."""
    if not SHIPPED_BUNDLES.is_dir():
        return []
    return sorted(p for p in SHIPPED_BUNDLES.iterdir() if (p / "configs" / "metadata.json").is_file())


def open_bundle(path: str | Path) -> Bundle:
    """Check that ``path`` is a bundle folder (or the name of a shipped bundle) and read its metadata.

    Raises:
        UsageError: the folder is missing, or has no readable ``configs/metadata.json`` (the message names it).
    """
    root = Path(path)
    if not root.is_dir() and len(root.parts) == 1 and (SHIPPED_BUNDLES / root.name).is_dir():
        root = SHIPPED_BUNDLES / root.name  # a shipped bundle's name
    if not root.is_dir():
        names = ", ".join(p.name for p in shipped_bundles())
        raise UsageError(
            f"{root}: no such bundle folder" + (f" (shipped bundles, usable by name: {names})" if names else "")
        )
    meta_file = root / "configs" / "metadata.json"
    if not meta_file.is_file():
        raise UsageError(f"{root}: not a bundle folder (no configs/metadata.json)")
    try:
        metadata = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UsageError(f"{meta_file}: cannot be read as JSON ({error})") from None
    if not isinstance(metadata, dict):
        raise UsageError(f"{meta_file}: holds a {type(metadata).__name__}, not a JSON object")
    return Bundle(root.resolve(), metadata)


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``["key=value", "net#features=[8,16]"]`` → ``{"key": value}``; values are JSON when they parse, else strings.

    Keys use MONAI's ``#`` separator for nested ids. A value starting with ``$`` or ``@`` stays an expression or a
    reference for the config parser.

    Raises:
        UsageError: an item without ``=`` or with an empty key.
    """
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{pair}: an override must be written KEY=VALUE (e.g. max_epochs=5 or learning_rate=1e-4)")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        overrides[key.strip()] = value
    return overrides


def run_bundle_config(bundle: Bundle, configs: Sequence[str], overrides: Mapping[str, Any]) -> Any:
    """Run ``configs/<name>.json`` of ``bundle`` (merged in order) as ``python -m monai.bundle run`` does.

    Args:
        bundle: the bundle.
        configs: config names, later ones overriding earlier ones (e.g. ``["train", "evaluate"]``).
        overrides: config id → value (Python objects are fine, e.g. a ``torch.device``); ``bundle_root`` is
            always set to the bundle folder.

    Returns:
        The workflow after ``run`` and ``finalize`` (its ``parser`` holds the resolved config).

    Raises:
        ImageInputError: bad input data met anywhere in the workflow (MONAI wraps transform errors in
            ``RuntimeError``; the original is found in the exception chain and raised as it is); an
            ``OutputWriteError`` for a write that ran out of room (disk full, quota, file-size limit).
        CheckpointError: a training checkpoint that cannot be resumed from (raised as it is).
        BundleRunError: any other failure, with the innermost error's message.
    """
    from monai.bundle.scripts import create_workflow

    from monai_unet.handlers import CheckpointError
    from monai_unet.io import ImageInputError
    from monai_unet.io.atomic import out_of_room

    config_files = [str(bundle.config(name)) for name in configs]
    logging_file = bundle.logging_file
    workflow = None
    try:
        with warnings.catch_warnings():
            # create_workflow warns on every call that configs run code; the user chose this bundle (see above).
            warnings.filterwarnings("ignore", message="parsing config_file")
            workflow = create_workflow(
                config_file=config_files if len(config_files) > 1 else config_files[0],
                meta_file=str(bundle.root / "configs" / "metadata.json"),
                logging_file=str(logging_file) if logging_file else False,
                **{"bundle_root": str(bundle.root), **overrides},
            )
        workflow.run()
        workflow.finalize()
    except Exception as error:
        chain = _exception_chain(error)
        for link in chain:
            if isinstance(link, ImageInputError | CheckpointError):
                raise link from None
        # a writer the bundle uses directly (MONAI's SaveImage) ran out of room: name the file where a link does
        no_room = sorted((found for found in map(_no_room, chain) if found), key=lambda found: found[1] is None)
        if no_room:
            code, path = no_room[0]
            raise out_of_room(path or overrides.get("output_dir", bundle.root), os.strerror(code).lower()) from None
        for link in chain:
            # torch.load refused the file: weights-only unpickling, a damaged archive, or an unreadable file
            if isinstance(link, pickle.UnpicklingError) or raised_by_torch_load(link):
                loaded = overrides.get("ckpt_path") or (weights_path(workflow.parser) if workflow else None)
                raise unloadable_weights(str(loaded or "the bundle's checkpoint"), link) from None
        innermost = chain[-1]
        raise BundleRunError(
            f"{bundle.root}: {' + '.join(configs)} config failed: {type(innermost).__name__}: {innermost}"
        ) from error
    return workflow


def _no_room(error: BaseException) -> tuple[int, str | None] | None:
    """``(errno, path)`` when ``error`` is a write that ran out of room (disk full, quota, file-size limit), else
    None. MONAI's ``SaveImage`` does not chain the writer's ``OSError``: it puts its traceback into the message of a
    ``RuntimeError`` ("... cannot find a suitable writer for PATH. ..."), so the text is read too."""
    from monai_unet.io.atomic import NO_ROOM

    if isinstance(error, OSError):
        return (error.errno, error.filename) if error.errno in NO_ROOM else None
    text = str(error)
    for match in re.finditer(r"OSError: \[Errno (\d+)\]", text):
        if int(match.group(1)) in NO_ROOM:
            path = re.search(r"writer for (.+?)\.\s", text)
            return int(match.group(1)), path.group(1) if path else None
    return None


def unloadable_weights(path: str | Path, error: BaseException) -> UsageError:
    """The error for a weights file ``torch.load(weights_only=True)`` refused (``error``), naming ``path``; a missing
    one is a bundle not trained yet (a fresh ``monai-unet plan`` output)."""
    if not Path(path).exists():
        return UsageError(
            f"{path}: does not exist, so the bundle has no trained model yet: train it first (monai-unet train "
            "--bundle BUNDLE), or give segment the weights to use with --checkpoint"
        )
    return UsageError(
        f"{path}: is not a weights file this bundle can load ({_first_sentence(error)}); it is damaged or holds "
        "more than tensors (code is never run): use the bundle's own models/model.pt, or retrain"
    )


def raised_by_torch_load(error: BaseException) -> bool:
    """Whether ``error`` was raised while ``torch.load`` read a file (its traceback passes through
    ``torch/serialization.py``): a truncated or damaged ``model.pt``, or one this user may not read."""
    frame = error.__traceback__
    while frame is not None:
        if Path(frame.tb_frame.f_code.co_filename).parts[-2:] == ("torch", "serialization.py"):
            return True
        frame = frame.tb_next
    return False


def _loader_ids(node: Any, prefix: str = "") -> Iterator[str]:
    """Ids of the ``CheckpointLoader`` entries of a parsed config."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        if isinstance(value, dict) and str(value.get("_target_", "")).endswith("CheckpointLoader"):
            yield f"{prefix}{key}"
        yield from _loader_ids(value, f"{prefix}{key}#")


def weights_path(parser: Any) -> str | None:
    """The weights file a config (a MONAI ``ConfigParser`` with ``bundle_root`` set) loads: its ``ckpt_path``, else
    its ``CheckpointLoader``'s ``load_path``; None where neither can be evaluated outside a run."""
    for key in ("ckpt_path", *(f"{i}#load_path" for i in _loader_ids(parser.get()))):
        with contextlib.suppress(Exception):  # an id this bundle lacks, or an expression needing the run
            return str(parser.get_parsed_content(key))
    return None


def _first_sentence(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text.split(". ")[0] if text else type(error).__name__


@contextlib.contextmanager
def bundle_logs_on_stderr(verbose: bool = False) -> Iterator[None]:
    """Send everything a bundle run logs or prints to stderr, keeping stdout for the command's own answer.

    MONAI's loggers write to stdout (``monai.apps.utils.get_logger`` handlers, and the bundles' ``logging.conf``,
    as in the model zoo). Inside this context ``sys.stdout`` is stderr, so handlers configured during the run (they
    keep stderr afterwards) and ``print`` calls land there, and handlers made earlier that hold stdout are pointed
    at stderr until it ends.

    Args:
        verbose: False: only warnings and errors pass (MONAI's ``INFO`` lines, such as its input summary and the
            engine's epoch lines, are dropped, and so is MONAI's notice that NVIDIA's GPU image codec is absent,
            which every CPU machine gets); True: everything the bundle logs.
    """
    stdout = sys.stdout
    moved = []
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and handler.stream in (stdout, sys.__stdout__):
                moved.append((handler, handler.setStream(sys.stderr)))
    previous_disable = logging.root.manager.disable
    codec_logger = logging.getLogger(_GPU_CODEC_LOGGER)
    previous_codec_level = codec_logger.level
    if not verbose:
        logging.disable(logging.INFO)
        codec_logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
            if not verbose:
                warnings.filterwarnings("ignore", message=".*nvImageCodec")
                # Invertd on a preprocessing with nothing to undo (pictures trained at their own size): not news
                warnings.filterwarnings("ignore", message="inverse has been called but no invertible transforms")
            yield
    finally:
        logging.disable(previous_disable)
        codec_logger.setLevel(previous_codec_level)
        for handler, stream in moved:
            handler.setStream(stream)


def _exception_chain(error: BaseException) -> list[BaseException]:
    """``error`` and its causes/contexts, outermost first."""
    chain: list[BaseException] = []
    link: BaseException | None = error
    while link is not None and link not in chain:
        chain.append(link)
        link = link.__cause__ or link.__context__
    return chain
