"""Run folders: every training (or evaluation) run writes into its own ``runs/<kind>-<date>-<time>/`` folder.

A run never writes over another run's checkpoints or best model, and never over a bundle's shipped
``models/model.pt`` unless asked (see :class:`monai_unet.handlers.ValidationHistory`'s ``promote``). The configs
name the folder with an expression, so the stock ``python -m monai.bundle run`` gets the same behaviour::

    "output_dir": "$monai_unet.handlers.new_run_dir(os.path.join(@bundle_root, 'runs'), 'train')"
"""

from __future__ import annotations

import time
from pathlib import Path

__all__ = ["latest_run_dir", "new_run_dir"]


def _create(root: Path, kind: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    root.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 1000):
        folder = root / (f"{kind}-{stamp}" if attempt == 1 else f"{kind}-{stamp}-{attempt}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise FileExistsError(f"{root}: cannot create a new run folder for {kind}-{stamp}")


def new_run_dir(root: str | Path, kind: str = "train") -> str:
    """Create and return a new, empty folder ``root/<kind>-YYYYmmdd-HHMMSS`` (``-2``, ``-3``... on a clash).

    In a multi-process (``torch.distributed``) run, rank 0 creates the folder and every rank gets its name.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return str(_create(Path(root), kind))
    name = [str(_create(Path(root), kind)) if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(name, src=0)
    return str(name[0])


def latest_run_dir(root: str | Path, containing: str = "checkpoint_last.pt") -> Path | None:
    """The most recently modified run folder under ``root`` holding ``containing``, or None."""
    candidates = [p.parent for p in Path(root).glob(f"*/{containing}") if p.is_file()]
    return max(candidates, key=lambda p: (p / containing).stat().st_mtime, default=None)
