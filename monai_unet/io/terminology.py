"""What each segment is, in standard codes: SNOMED CT category, type and (where it applies) anatomic region.

3D Slicer and DICOM SEG both describe a segment by a coded *category* (e.g. "Anatomical Structure"), a coded
*type* (e.g. "Left ventricle") and optionally the *anatomic region* it lies in (e.g. "Brain"). A bundle states them
in ``configs/metadata.json`` under ``network_data_format.outputs.pred.terminology``, keyed by label value::

    "terminology": {
        "1": {"category": ["SCT", "49755003", "Morphologically Abnormal Structure"],
              "type": ["SCT", "108369006", "Neoplasm"],
              "region": ["SCT", "12738006", "Brain"]}
    }

Each code is ``[coding scheme, code value, code meaning]`` as DICOM writes them. A segment without an entry is
described as Slicer's generic "Tissue" (:data:`TISSUE`), which is what every segment was before bundles stated codes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["TISSUE", "Code", "Terminology", "parse_entry", "parse_terminology", "slicer_terminology_entry"]


@dataclass(frozen=True)
class Code:
    """One coded concept: ``scheme`` (e.g. ``"SCT"`` for SNOMED CT), ``value`` and human-readable ``meaning``."""

    scheme: str
    value: str
    meaning: str

    @classmethod
    def parse(cls, entry: Sequence[str], where: str) -> Code:
        """A code from ``[scheme, value, meaning]``; ``where`` names the entry in the error.

        Raises:
            ValueError: not three non-empty strings, or a ``^``/``~``/``|`` inside one (Slicer's separators).
        """
        parts = entry if isinstance(entry, list | tuple) else ()
        if len(parts) != 3 or not all(isinstance(p, str) and p.strip() for p in parts):
            raise ValueError(f"{where}: a code is [scheme, value, meaning], three non-empty strings; got {entry!r}")
        if any(c in part for part in entry for c in "^~|"):
            raise ValueError(f"{where}: {entry!r} contains one of ^ ~ |, which Slicer's terminology entry reserves")
        return cls(*(part.strip() for part in entry))

    def slicer(self) -> str:
        return f"{self.scheme}^{self.value}^{self.meaning}"


@dataclass(frozen=True)
class Terminology:
    """A segment's coded description: category and type, and the anatomic region where one applies."""

    category: Code
    type: Code
    region: Code | None = None


#: Slicer's default entry: category and type SNOMED CT 85756007 "Tissue".
TISSUE = Terminology(Code("SCT", "85756007", "Tissue"), Code("SCT", "85756007", "Tissue"))

_SLICER_CONTEXT = "Segmentation category and type - 3D Slicer General Anatomy list"
_DICOM_CONTEXT = "Segmentation category and type - DICOM master list"
_ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"


def parse_terminology(table: Mapping[str | int, Mapping] | None, where: str = "terminology") -> dict[int, Terminology]:
    """Label value → :class:`Terminology` from a bundle's ``terminology`` table (see the module docstring).

    Raises:
        ValueError: a key that is not a label value ≥ 1, an entry without ``category`` and ``type``, an unknown
            field, or a malformed code; the message names the entry.
    """
    parsed = {}
    for key, entry in (table or {}).items():
        at = f"{where}[{key!r}]"
        try:
            value = int(key)
        except (TypeError, ValueError):
            value = 0
        if value < 1:
            raise ValueError(f"{at}: keys are label values >= 1 (0 is the background and has no segment)")
        parsed[value] = parse_entry(entry, at)
    return parsed


def parse_entry(entry: Mapping, at: str) -> Terminology:
    """One segment's ``{"category": code, "type": code[, "region": code]}``; ``at`` names it in errors.

    Raises:
        ValueError: a missing or unknown field, or a malformed code.
    """
    if not isinstance(entry, Mapping) or not {"category", "type"} <= set(entry):
        raise ValueError(f"{at}: an entry needs 'category' and 'type' (and optionally 'region')")
    unknown = set(entry) - {"category", "type", "region"}
    if unknown:
        raise ValueError(f"{at}: unknown field(s) {sorted(unknown)}; the fields are category, type, region")
    region = entry.get("region")
    return Terminology(
        Code.parse(entry["category"], f"{at}.category"),
        Code.parse(entry["type"], f"{at}.type"),
        Code.parse(region, f"{at}.region") if region is not None else None,
    )


def slicer_terminology_entry(terminology: Terminology) -> str:
    """The value of a ``.seg.nrrd`` segment's ``TerminologyEntry`` tag (Slicer's ``~``-separated form: context,
    category, type, type modifier, anatomic context, anatomic region, region modifier)."""
    context = _SLICER_CONTEXT if terminology == TISSUE else _DICOM_CONTEXT
    region = terminology.region.slicer() if terminology.region else "^^"
    return "~".join(
        (context, terminology.category.slicer(), terminology.type.slicer(), "^^", _ANATOMIC_CONTEXT, region, "^^")
    )
