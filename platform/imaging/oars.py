"""Organs at risk (OARs): ROI names -> AAPM TG-263 standard names.

AAPM Task Group 263 (Mayo et al., *Int J Radiat Oncol Biol Phys* 2018;100:1057-1066)
standardised structure names for radiotherapy: ``SpinalCord``, ``Lung_L``, ``Esophagus``,
``BrachialPlex_R`` ... (laterality as a ``_L``/``_R`` suffix, no spaces). Clinical and archive
exports use many spellings (``Spinal-Cord``, ``Lung-Left`` in TCIA collections, ``Cord``,
``Lt Lung``, ``oesophagus``). :func:`oar_name` maps a spelling to its TG-263 name through
:data:`OAR_SYNONYMS`: the ROI name is compared after :func:`normalise_roi_name` (case folded,
spaces, ``_``, ``-`` and ``.`` removed), and must equal the TG-263 name or one synonym exactly,
so derived structures (``Lungs-GTV``, ``Cord_PRV5``, ``Esophagus_avoid``) are **not** taken as
the organ. Names outside the table are mapped with ``--roi-map`` (see
:func:`sabrkit.imaging.roi_map.read_roi_map`).

The organs listed are those with SABR dose constraints (Timmerman, *Semin Radiat Oncol*
2008;18:215-222; SABR-COMET): spinal cord and cauda equina, oesophagus, brachial plexus,
heart, great vessels, trachea and bronchi, lungs, chest wall, skin, stomach, duodenum,
bowel, liver, kidneys, rectum, bladder, brainstem, optic chiasm and nerves, cochleae.
"""

from __future__ import annotations

import functools
import re

__all__ = ["OAR_SYNONYMS", "oar_name", "normalise_roi_name", "is_oar_name"]

#: TG-263 name -> spellings accepted besides the TG-263 name itself (compared normalised).
OAR_SYNONYMS: dict[str, tuple[str, ...]] = {
    "SpinalCord": ("Spinal Cord", "Spinal-Cord", "Cord", "Spinal_Cord", "Medulla Spinalis", "Myelon"),
    "SpinalCanal": ("Spinal Canal", "Canal", "Thecal Sac"),
    "CaudaEquina": ("Cauda Equina", "Cauda"),
    "Brainstem": ("Brain Stem", "BrainStem"),
    "Esophagus": ("Oesophagus", "Esophagus", "Oesoph", "Esoph"),
    "Heart": ("Heart", "Pericardium", "Heart_Pericardium"),
    "GreatVes": ("Great Vessels", "GreatVessels", "Great Vessel", "Aorta_Great Vessels"),
    "Trachea": ("Trachea",),
    "Bronchus": ("Bronchus", "Bronchi", "Proximal Bronchial Tree", "Bronchial Tree"),
    "BrachialPlex_L": (
        "Brachial Plexus L",
        "Brachial Plexus Left",
        "Left Brachial Plexus",
        "L Brachial Plexus",
        "BrachialPlexus_L",
        "Lt Brachial Plexus",
    ),
    "BrachialPlex_R": (
        "Brachial Plexus R",
        "Brachial Plexus Right",
        "Right Brachial Plexus",
        "R Brachial Plexus",
        "BrachialPlexus_R",
        "Rt Brachial Plexus",
    ),
    "Lung_L": ("Lung-Left", "Lung Left", "Left Lung", "L Lung", "Lt Lung", "Lung Lt", "LungL", "Lung_Left"),
    "Lung_R": (
        "Lung-Right",
        "Lung Right",
        "Right Lung",
        "R Lung",
        "Rt Lung",
        "Lung Rt",
        "LungR",
        "Lung_Right",
    ),
    "Lungs": (
        "Lungs",
        "Lung",
        "Both Lungs",
        "Lung Total",
        "Lungs Total",
        "Total Lung",
        "Lung_Both",
        "Lung-Total",
    ),
    "Chestwall": ("Chest Wall", "ChestWall"),
    "Skin": ("Skin",),
    "Stomach": ("Stomach",),
    "Duodenum": ("Duodenum",),
    "Bowel_Small": ("Small Bowel", "SmallBowel", "Bowel Small", "Small Intestine"),
    "Bowel_Large": ("Large Bowel", "LargeBowel", "Bowel Large", "Colon"),
    "Liver": ("Liver",),
    "Kidney_L": ("Left Kidney", "Kidney Left", "L Kidney", "Lt Kidney", "Kidney-Left", "KidneyL"),
    "Kidney_R": ("Right Kidney", "Kidney Right", "R Kidney", "Rt Kidney", "Kidney-Right", "KidneyR"),
    "Kidneys": ("Kidneys", "Both Kidneys", "Kidney Total", "Kidneys Total"),
    "Rectum": ("Rectum",),
    "Bladder": ("Bladder", "Urinary Bladder"),
    "OpticChiasm": ("Optic Chiasm", "Chiasm"),
    "OpticNrv_L": ("Optic Nerve L", "Left Optic Nerve", "OpticNerve_L", "Optic Nerve Left"),
    "OpticNrv_R": ("Optic Nerve R", "Right Optic Nerve", "OpticNerve_R", "Optic Nerve Right"),
    "Cochlea_L": ("Cochlea L", "Left Cochlea", "Cochlea Left"),
    "Cochlea_R": ("Cochlea R", "Right Cochlea", "Cochlea Right"),
}

_SEPARATORS = re.compile(r"[\s_\-.]+")


def normalise_roi_name(name: str) -> str:
    """Case-folded ROI name without spaces, ``_``, ``-`` and ``.`` (``'Lung-Left'`` -> ``'lungleft'``)."""
    return _SEPARATORS.sub("", str(name)).casefold()


@functools.lru_cache(maxsize=1)
def _lookup() -> dict[str, str]:
    table: dict[str, str] = {}
    for canonical, synonyms in OAR_SYNONYMS.items():
        for spelling in (canonical, *synonyms):
            key = normalise_roi_name(spelling)
            if table.setdefault(key, canonical) != canonical:  # pragma: no cover - guarded by a test
                raise AssertionError(f"OAR synonym {spelling!r} maps to two TG-263 names")
    return table


def oar_name(roi_name: str) -> str | None:
    """The TG-263 name of an OAR ROI, or None when the name is not in :data:`OAR_SYNONYMS`.

    Examples
    --------
    >>> oar_name("Spinal-Cord"), oar_name("Lung-Left"), oar_name("oesophagus"), oar_name("Lungs-GTV")
    ('SpinalCord', 'Lung_L', 'Esophagus', None)
    """
    return _lookup().get(normalise_roi_name(roi_name))


def is_oar_name(name: str) -> bool:
    """True when ``name`` is a TG-263 name of the table (exact spelling)."""
    return name in OAR_SYNONYMS
