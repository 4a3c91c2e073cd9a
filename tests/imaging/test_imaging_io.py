from __future__ import annotations

from collections.abc import Callable

import hashlib
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from sabrkit.errors import ConfigError, ImageReadError
from sabrkit.imaging import read_image, sha256_file, write_image


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_write_then_read_keeps_voxels_and_geometry(tmp_path: Path, make_ct_case: Callable, suffix: str) -> None:
    image, _ = make_ct_case()
    path = write_image(image, tmp_path / "sub" / f"SABR-RCC-001-L1_ct{suffix}")
    back = read_image(path, "SABR-RCC-001-L1")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(image))
    np.testing.assert_allclose(back.GetSpacing(), image.GetSpacing(), rtol=1e-6)
    np.testing.assert_allclose(back.GetOrigin(), image.GetOrigin(), rtol=1e-6)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_write_replaces_existing_file_atomically(tmp_path: Path, make_ct_case: Callable) -> None:
    first, _ = make_ct_case()
    target = write_image(first, tmp_path / "a.nii.gz")
    second = sitk.Cast(first, sitk.sitkFloat32) + 5.0
    write_image(second, target)
    assert sitk.GetArrayFromImage(read_image(target, "case")).dtype == np.float32
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nii.gz"]


def test_write_rejects_unknown_suffix(tmp_path: Path, make_ct_case: Callable) -> None:
    image, _ = make_ct_case()
    with pytest.raises(ConfigError, match=r"\.png"):
        write_image(image, tmp_path / "a.png")


def test_missing_file_names_case_and_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere_ct.nii.gz"
    with pytest.raises(ImageReadError) as info:
        read_image(missing, "SABR-RCC-007-L2", role="mask")
    message = str(info.value)
    assert "SABR-RCC-007-L2" in message and str(missing) in message and "mask" in message
    assert isinstance(info.value, FileNotFoundError)


def test_unreadable_file_names_case_and_path(tmp_path: Path) -> None:
    broken = tmp_path / "broken_ct.nii.gz"
    broken.write_bytes(b"this is not a NIfTI file")
    with pytest.raises(ImageReadError, match="SABR-RCC-003-L1.*could not be read"):
        read_image(broken, "SABR-RCC-003-L1")


def test_sha256_file_matches_reference(tmp_path: Path) -> None:
    # FIPS 180-2 test vector: SHA-256("abc")
    file = tmp_path / "abc.txt"
    file.write_bytes(b"abc")
    assert sha256_file(file) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 20000)  # spans several 1 MiB chunks
    assert sha256_file(big) == hashlib.sha256(big.read_bytes()).hexdigest()
