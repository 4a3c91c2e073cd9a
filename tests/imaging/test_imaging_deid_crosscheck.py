"""De-identification cross-checked against dicognito and deid (maintained anonymisers, PyPI), and a pseudo-PHI corpus.

Cross-check: the same data sets go through dicognito's ``Anonymizer`` / deid's default DICOM recipe
(``replace_identifiers`` with private tags removed) and sabrkit's ``Deidentifier``; every attribute (at any
nesting level, file meta included) that the tool removes or replaces must be removed or replaced by sabrkit
too, unless it is listed in ``KEPT_ON_PURPOSE`` (and in docs/imaging.md).

Corpus: names, IDs, dates, an address and a phone number planted in private tags, nested sequences,
OtherPatientIDsSequence, overlays and curves, a local code meaning, free text and date-bearing UIDs
(``phi_corpus.py``): none may survive anywhere in the written files' bytes; BurnedInAnnotation = YES is
refused.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pydicom
import pytest
from dicognito.anonymizer import Anonymizer
from phi_corpus import KEY_TABLE, NEEDLES, SCAN_DATE, all_text, corpus_datasets, write_corpus
from tcia_export import write_tcia_export

from sabrkit.imaging import DeidConfig, Deidentifier, check_deidentified_folder, deidentify_folder

SECRET = "crosscheck-secret-0123456789"
#: what a tool changes and sabrkit keeps on purpose, with the reason (docs/imaging.md, "Kept on purpose")
KEPT_ON_PURPOSE = {
    "TM": "times of day are kept: the Retain Longitudinal Temporal Information with Modified Dates option shifts "
    "dates by whole days per patient and keeps times (dicognito shifts date-times by hours, deid removes them)",
    "1.2.840.10008": "UIDs of the DICOM standard (SOP Class, Referenced SOP Class, Transfer Syntax UIDs) name the kind "
    "of object, not a patient; PS3.15 keeps them and readers need them (deid's recipe removes them)",
}


def _kept_on_purpose(element) -> str | None:
    if element.VR == "TM":
        return "TM"
    if element.VR == "UI" and str(element.value).startswith("1.2.840.10008."):
        return "1.2.840.10008"
    return None


def _dicognito(datasets: list, tmp_path: Path) -> list:
    anonymizer = Anonymizer(seed="sabrkit-crosscheck")
    out = []
    for ds in datasets:
        copied = copy.deepcopy(ds)
        anonymizer.anonymize(copied)
        out.append(copied)
    return out


def _deid(datasets: list, tmp_path: Path) -> list:
    from deid.config import DeidRecipe
    from deid.dicom import replace_identifiers

    paths = []
    for n, ds in enumerate(datasets):
        path = tmp_path / "deid_input" / f"{n:03d}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        paths.append(str(path))
    return list(
        replace_identifiers(
            dicom_files=paths, deid=DeidRecipe(), save=False, remove_private=True, strip_sequences=False
        )
    )


def _walk(dataset, prefix=()):
    for element in dataset:
        path = (*prefix, int(element.tag))
        yield path, element
        if element.VR == "SQ":
            for n, item in enumerate(element.value):
                yield from _walk(item, (*path, n))


def _index(ds) -> dict:
    found = dict(_walk(ds))
    found.update({("meta", *p): e for p, e in _walk(ds.file_meta)})
    return found


def _value(element):
    return element.value if isinstance(element.value, bytes) else str(element.value)


def _fate(path, element, after: dict) -> str:
    if path not in after:
        return "removed"
    return "replaced" if _value(after[path]) != _value(element) else "kept"


def _datasets(tiny_dicom: Path, tmp_path: Path) -> list:
    """One slice of every series and every RTSTRUCT of the synthetic export, a TCIA-style export, the corpus."""
    first_per_folder = {}
    for path in sorted(tiny_dicom.rglob("*.dcm")):
        first_per_folder.setdefault(path.parent, path)
    root, _ = write_tcia_export(tmp_path / "tcia")
    tcia = sorted(root.rglob("*.dcm"))
    files = [*first_per_folder.values(), tcia[0], tcia[-1]]
    return [pydicom.dcmread(p) for p in files] + corpus_datasets()


@pytest.mark.parametrize("tool", ["dicognito", "deid"])
def test_everything_the_other_tool_removes_or_replaces_sabrkit_removes_or_replaces(
    tool: str, tiny_dicom: Path, key_table: dict[str, str], tmp_path: Path
) -> None:
    pseudonyms = {**key_table, **KEY_TABLE, "LUNG1-001": "SABR-RCC-001"}
    ours = Deidentifier(DeidConfig(secret=SECRET, pseudonym_of=pseudonyms))
    originals = _datasets(tiny_dicom, tmp_path)
    theirs = {"dicognito": _dicognito, "deid": _deid}[tool](originals, tmp_path)
    assert len(theirs) == len(originals)
    gaps, kept_on_purpose, compared, changed_by_tool = [], set(), 0, 0
    for original, by_tool in zip(originals, theirs):
        by_sabrkit = copy.deepcopy(original)
        ours.deidentify(by_sabrkit)
        after_tool, after_sabrkit = _index(by_tool), _index(by_sabrkit)
        for path, element in _index(original).items():
            if element.VR == "SQ" or _value(element) in ("", b""):
                continue
            compared += 1
            if _fate(path, element, after_tool) == "kept":
                continue
            changed_by_tool += 1
            if _fate(path, element, after_sabrkit) != "kept":
                continue
            reason = _kept_on_purpose(element)
            if reason is not None:
                kept_on_purpose.add(reason)
                continue
            gaps.append(
                f"{original.Modality} {element.tag} {element.keyword}: {tool} "
                f"{_fate(path, element, after_tool)}, sabrkit kept {_value(element)!r}"
            )
    assert compared > 500 and changed_by_tool > 100
    assert gaps == []
    docs = (Path(__file__).parents[2] / "docs" / "imaging.md").read_text()
    assert "Kept on purpose" in docs and all(f"`{reason}`" in docs for reason in kept_on_purpose)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, object]:
    root = tmp_path_factory.mktemp("corpus")
    write_corpus(root / "export")
    result = deidentify_folder(
        root / "export", root / "released", DeidConfig(secret=SECRET, pseudonym_of=KEY_TABLE)
    )
    return root / "export", root / "released", result


def test_nothing_planted_survives_in_the_released_files(corpus) -> None:
    _export, released, result = corpus
    files = sorted(released.rglob("*.dcm"))
    assert result.n_written == len(files) == 3
    for path in files:
        raw = path.read_bytes().decode("latin-1").lower()
        assert [n for n in NEEDLES if n.lower() in raw] == [], path
        ds = pydicom.dcmread(path)
        text = all_text(ds).lower()
        assert [n for n in NEEDLES if n.lower() in text] == []
        assert not any(e.tag.is_private for e in ds.iterall())
        assert not any(0x5000 <= e.tag.group <= 0x601E for e in ds.iterall())  # curves and overlays gone
        assert "OtherPatientIDsSequence" not in ds and "RequestAttributesSequence" not in ds
        assert all(SCAN_DATE not in str(e.value) for e in ds.iterall() if e.VR == "UI")
        assert ds.PatientID == "SABR-RCC-042" and ds.PatientIdentityRemoved == "YES"
    identifiers = [n for n in NEEDLES]
    assert check_deidentified_folder(released, identifiers=identifiers) == []


def test_burned_in_annotation_is_refused_and_the_check_flags_the_planted_corpus(corpus) -> None:
    export, _released, result = corpus
    assert len(result.failures) == 1
    failure = result.failures[0]
    assert failure.case_id.endswith("burned_in.dcm") and "BurnedInAnnotation = YES" in failure.reason
    findings = check_deidentified_folder(export, identifiers=list(NEEDLES))
    reasons = {f.reason for f in findings}
    assert "private attribute (Basic Profile: remove)" in reasons
    assert "curve or overlay attribute (removed by sabrkit)" in reasons
    assert "holds a direct identifier of the key table" in reasons
