"""``segment --channel NAME=INPUT``: a case's inputs named by channel instead of given in the bundle's order.

Swapping two positional inputs of a multi-channel bundle (FLAIR and T1c) runs without complaint and gives a useless
segmentation; naming them removes that slip. The names are the bundle's ``inputs.image.channel_def``.
"""

from __future__ import annotations

from pathlib import Path

from monai_unet.cli.bundle import Bundle
from monai_unet.errors import UsageError

__all__ = ["named_channel_inputs"]


def named_channel_inputs(pairs: list[str], bundle: Bundle) -> list[Path]:
    """The inputs given as ``NAME=INPUT`` pairs, in the bundle's channel order.

    Raises:
        UsageError: a pair without ``=``, a name the bundle does not have (the names it has are listed), a name given
            twice, or a channel left out.
    """
    names = bundle.channel_names
    if not names:
        raise UsageError(
            f"--channel: the bundle {bundle.root.name} does not name its input channels; give the inputs by position"
        )
    by_key = {name.casefold(): name for name in names}
    given: dict[str, Path] = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"--channel {pair}: write NAME=INPUT, e.g. --channel {names[0]}=scan.nii.gz")
        key = name.strip().casefold()
        if key not in by_key:
            raise UsageError(
                f"--channel {pair}: the bundle {bundle.root.name} has no channel {name!r}; its channels are "
                f"{', '.join(names)}"
            )
        if by_key[key] in given:
            raise UsageError(f"--channel {pair}: channel {by_key[key]} is given twice")
        given[by_key[key]] = Path(path)
    missing = [name for name in names if name not in given]
    if missing:
        raise UsageError(
            f"--channel: no input for {', '.join(missing)} (the bundle {bundle.root.name} takes {', '.join(names)})"
        )
    return [given[name] for name in names]
