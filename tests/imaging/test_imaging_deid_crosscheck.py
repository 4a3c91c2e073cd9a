"""De-identification cross-checked against dicognito (a maintained anonymiser, PyPI), and a pseudo-PHI corpus.

Cross-check: the same data sets go through dicognito's ``Anonymizer`` and sabrkit's ``Deidentifier``;
every attribute (at any nesting level, file meta included) that dicognito removes or replaces must be
removed or replaced by sabrkit too, unless it is listed in ``KEPT_ON_PURPOSE`` (and in docs/imaging.md).

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
#: attributes dicognito changes and sabrkit keeps on purpose (VR "TM": every time of day), with the reason
KEPT_ON_PURPOSE = {
    "TM": "times of day are kept: the Retain Longitudinal Temporal Information with Modified Dates option shifts "
          "dates by whole days per patient and keeps times (dicognito shifts date-times by hours)",
}


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


def test_everything_dicognito_removes_or_replaces_sabrkit_removes_or_replaces(
        tiny_dicom: Path, key_table: dict[str, str], tmp_path: Path) -> None:
    pseudonyms = {**key_table, **KEY_TABLE, "LUNG1-001": "SABR-RCC-001"}
    ours = Deidentifier(DeidConfig(secret=SECRET, pseudonym_of=pseudonyms))
    theirs = Anonymizer(seed="sabrkit-crosscheck")
    gaps, kept_on_purpose, compared = [], set(), 0
    for original in _datasets(tiny_dicom, tmp_path):
        by_dicognito, by_sabrkit = copy.deepcopy(original), copy.deepcopy(original)
        theirs.anonymize(by_dicognito)
        ours.deidentify(by_sabrkit)
        after_dicognito, after_sabrkit = _index(by_dicognito), _index(by_sabrkit)
        for path, element in _index(original).items():
            if element.VR == "SQ" or _value(element) in ("", b""):
                continue
            compared += 1
            if _fate(path, element, after_dicognito) == "kept" or _fate(path, element, after_sabrkit) != "kept":
                continue
            if element.VR in KEPT_ON_PURPOSE:
                kept_on_purpose.add(element.VR)
                continue
            gaps.append(f"{original.Modality} {element.tag} {element.keyword}: dicognito "
                        f"{_fate(path, element, after_dicognito)}, sabrkit kept {_value(element)!r}")
    assert compared > 500
    assert gaps == []
    docs = (Path(__file__).parents[2] / "docs" / "imaging.md").read_text()
    assert "Kept on purpose" in docs and all(f"`{vr}`" in docs for vr in kept_on_purpose)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, object]:
    root = tmp_path_factory.mktemp("corpus")
    write_corpus(root / "export")
    result = deidentify_folder(root / "export", root / "released", DeidConfig(secret=SECRET, pseudonym_of=KEY_TABLE))
    return root / "export", root / "released", result


def test_nothing_planted_survives_in_the_released_files(corpus) -> None:
    export, released, result = corpus
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
    export, released, result = corpus
    assert len(result.failures) == 1
    failure = result.failures[0]
    assert failure.case_id.endswith("burned_in.dcm") and "BurnedInAnnotation = YES" in failure.reason
    findings = check_deidentified_folder(export, identifiers=list(NEEDLES))
    reasons = {f.reason for f in findings}
    assert "private attribute (Basic Profile: remove)" in reasons
    assert "curve or overlay attribute (removed by sabrkit)" in reasons
    assert "holds a direct identifier of the key table" in reasons
