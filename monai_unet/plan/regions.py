"""nnU-Net v2's overlapping label regions → the classes the network learns, and the regions as unions of them.

nnU-Net v2 lets ``labels`` name regions that overlap: BraTS ``{"background": 0, "whole tumour": [1, 2, 3],
"tumour core": [2, 3], "enhancing tumour": 3}``, KiTS23 ``{"background": 0, "kidney": [1, 2, 3], "masses": [2, 3],
"tumour": 2}``. Its label files stay integer maps, and so do its outputs (the region masks painted in
``regions_class_order``). The planner trains one softmax class per *atom* instead: the label values that belong to
the same regions (BraTS: 1, 2 and 3 each alone). Every region is then a union of classes, recovered exactly from the
class map the bundle writes. Where each atom is one value and the values run 1, 2, ... (BraTS, KiTS23), that class
map is also the label map nnU-Net writes with those datasets' ``regions_class_order`` (each region painted with the
value of its innermost atom), so the planner does not need that field and ignores it.

An atom is named after the smallest region that holds it: that region's name where the atom is the whole region
(``enhancing tumour``), else the name with the atom's values (``whole tumour (label 1)``).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["overlapping", "split_regions"]


def overlapping(entries: dict[str, list[int]]) -> bool:
    """Whether some label value is listed under two names (nnU-Net v2 regions)."""
    values = [v for listed in entries.values() for v in set(listed)]
    return len(values) != len(set(values))


def _values_text(values: tuple[int, ...]) -> str:
    return ("label " if len(values) == 1 else "labels ") + ", ".join(map(str, values))


def split_regions(
    entries: dict[str, list[int]], background: str, source: Path
) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """Overlapping ``entries`` (name → label values, ``background`` among them) → ``(classes, regions)``.

    Returns:
        classes: class name → its label values, background first, then the atoms in ascending order of their
            smallest value.
        regions: region name → the class indices whose union it is, in the order ``labels`` lists them.

    Raises:
        ValueError: the background shares a value with a region (the message names ``source``).
    """
    background_values = set(entries[background])
    regions = {name: set(values) for name, values in entries.items() if name != background}
    for name, values in regions.items():
        shared = sorted(values & background_values)
        if shared:
            raise ValueError(
                f"{source}: label value(s) {shared} are listed under both the background ({background!r}) and "
                f"{name!r}; regions may overlap each other, not the background"
            )
    membership: dict[int, frozenset[str]] = {}
    for value in sorted(set().union(*regions.values())):
        membership[value] = frozenset(name for name, values in regions.items() if value in values)
    atoms: dict[frozenset[str], list[int]] = {}
    for value, member_of in membership.items():
        atoms.setdefault(member_of, []).append(value)
    classes: dict[str, tuple[int, ...]] = {background: tuple(sorted(background_values))}
    order = list(regions)
    for member_of, values in sorted(atoms.items(), key=lambda item: min(item[1])):
        smallest = min(member_of, key=lambda name: (len(regions[name]), order.index(name)))
        atom = tuple(values)
        name = smallest if set(atom) == regions[smallest] else f"{smallest} ({_values_text(atom)})"
        classes[name] = atom
    index = {value: c for c, values in enumerate(classes.values()) for value in values}
    return classes, {name: tuple(sorted({index[v] for v in values})) for name, values in regions.items()}
