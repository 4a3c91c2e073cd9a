from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from sabrkit.errors import ConfigError, ImageReadError
from sabrkit.imaging import io as image_io
from sabrkit.imaging import read_image, sha256_file, write_image


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_write_then_read_keeps_voxels_and_geometry(
    tmp_path: Path, make_ct_case: Callable, suffix: str
) -> None:
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
    with pytest.raises(ImageReadError, match=r"SABR-RCC-003-L1.*could not be read"):
        read_image(broken, "SABR-RCC-003-L1")


def test_sha256_file_matches_reference(tmp_path: Path) -> None:
    # FIPS 180-2 test vector: SHA-256("abc")
    file = tmp_path / "abc.txt"
    file.write_bytes(b"abc")
    assert sha256_file(file) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 20000)  # spans several 1 MiB chunks
    assert sha256_file(big) == hashlib.sha256(big.read_bytes()).hexdigest()


def _assert_same_image(ours: sitk.Image, itk: sitk.Image) -> None:
    """Voxels, pixel type, geometry and header metadata equal to the last bit."""
    assert ours.GetPixelID() == itk.GetPixelID()
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(ours), sitk.GetArrayViewFromImage(itk))
    assert (ours.GetSpacing(), ours.GetOrigin(), ours.GetDirection()) == (
        itk.GetSpacing(),
        itk.GetOrigin(),
        itk.GetDirection(),
    )
    assert {k: ours.GetMetaData(k) for k in ours.GetMetaDataKeys()} == {
        k: itk.GetMetaData(k) for k in itk.GetMetaDataKeys()
    }


@pytest.fixture
def large_nii_gz(tmp_path: Path) -> Path:
    """A noisy, oblique int16 CT crop as .nii.gz."""
    rng = np.random.default_rng(3)
    image = sitk.GetImageFromArray(rng.normal(40, 300, (48, 96, 96)).astype(np.int16))
    image.SetSpacing((0.7421875, 0.7421875, 2.5))
    image.SetOrigin((-187.3, -201.9, 1043.25))
    angle = np.deg2rad(7.0)
    image.SetDirection((np.cos(angle), -np.sin(angle), 0.0, np.sin(angle), np.cos(angle), 0.0, 0.0, 0.0, 1.0))
    path = tmp_path / "SABR-RCC-001-L1_ct.nii.gz"
    sitk.WriteImage(image, str(path), True)
    return path


def test_large_nii_gz_reads_exactly_as_itk_and_leaves_no_file(
    large_nii_gz: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ram = tmp_path / "ram"
    ram.mkdir()
    monkeypatch.setattr(image_io, "_ram_folder", lambda: str(ram))
    _assert_same_image(read_image(large_nii_gz, "SABR-RCC-001-L1"), sitk.ReadImage(str(large_nii_gz)))
    assert list(ram.iterdir()) == []  # the inflated copy is gone


def test_fast_read_matches_itk_on_the_ibsi_ct_phantom(shared_data: Path) -> None:
    for phantom in sorted(shared_data.rglob("*.nii.gz")):  # the IBSI CT phantom image and mask, ...
        _assert_same_image(read_image(phantom, "phantom"), sitk.ReadImage(str(phantom)))
    phantom = shared_data / "ibsi_ct_phantom" / "nifti" / "image" / "phantom.nii.gz"
    _assert_same_image(read_image(phantom, "phantom"), sitk.ReadImage(str(phantom)))


def test_fast_read_falls_back_to_itk(
    large_nii_gz: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        image_io, "_ram_folder", lambda: str(tmp_path / "no-such-folder")
    )  # nowhere to inflate
    _assert_same_image(read_image(large_nii_gz, "SABR-RCC-001-L1"), sitk.ReadImage(str(large_nii_gz)))
    plain = tmp_path / "plain_ct.nii.gz"  # named .nii.gz, written uncompressed: ITK reads it as it is
    plain.write_bytes(gzip.decompress(large_nii_gz.read_bytes()))
    _assert_same_image(read_image(plain, "SABR-RCC-001-L1"), sitk.ReadImage(str(large_nii_gz)))


@pytest.mark.parametrize("damage", ["truncated", "flipped byte"])
def test_damaged_nii_gz_is_refused_not_read_with_zeros(
    large_nii_gz: Path, tmp_path: Path, damage: str
) -> None:
    data = bytearray(large_nii_gz.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
        itk_read = sitk.GetArrayFromImage(sitk.ReadImage(_write(tmp_path / "itk_ct.nii.gz", bytes(data))))
        assert (itk_read.reshape(-1)[-1000:] == 0).all()  # what ITK alone makes of it: zeros, no error
    else:
        data[len(data) // 2] ^= 0xFF
    damaged = _write(tmp_path / "SABR-RCC-002-L1_ct.nii.gz", bytes(data))
    with pytest.raises(
        ImageReadError, match=r"SABR-RCC-002-L1.*is damaged: its gzip stream fails.*copy or export"
    ):
        read_image(damaged, "SABR-RCC-002-L1")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
