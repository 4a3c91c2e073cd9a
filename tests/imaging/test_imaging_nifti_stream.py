"""Slice-wise NIfTI writing: the same file SimpleITK writes; series conversion equal to ImageSeriesReader."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from tcia_export import write_tcia_export

from sabrkit.imaging import write_series_nifti
from sabrkit.imaging.dicom_index import crawl_dicom, group_series
from sabrkit.imaging.nifti_stream import NiftiSliceWriter


@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.float32, np.uint16])
def test_streamed_file_is_byte_identical_to_simpleitk_after_inflating(dtype, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    volume = rng.normal(100, 60, (9, 7, 11)).clip(0, 250).astype(dtype)
    image = sitk.GetImageFromArray(volume)
    image.SetSpacing((0.7, 0.81, 2.5))
    image.SetOrigin((-10.5, 3.25, 99.0))
    image.SetDirection((0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, -1.0))
    sitk.WriteImage(image, str(tmp_path / "itk.nii.gz"), True)
    with NiftiSliceWriter(
        tmp_path / "streamed.nii.gz",
        image.GetSize(),
        image.GetSpacing(),
        image.GetOrigin(),
        image.GetDirection(),
        dtype,
    ) as out:
        for plane in volume:
            out.write(plane)
    itk_bytes = gzip.decompress((tmp_path / "itk.nii.gz").read_bytes())
    assert gzip.decompress((tmp_path / "streamed.nii.gz").read_bytes()) == itk_bytes


def test_incomplete_stream_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="2 of 3 slices"):
        with NiftiSliceWriter(
            tmp_path / "x.nii.gz", (4, 5, 3), (1, 1, 1), (0, 0, 0), (1, 0, 0, 0, 1, 0, 0, 0, 1), np.int16
        ) as out:
            out.write_zeros(2)
    with pytest.raises(ValueError, match="shape"):
        with NiftiSliceWriter(
            tmp_path / "x.nii.gz", (4, 5, 3), (1, 1, 1), (0, 0, 0), (1, 0, 0, 0, 1, 0, 0, 0, 1), np.int16
        ) as out:
            out.write(np.zeros((4, 5), np.int16))
    assert list(tmp_path.iterdir()) == []


def _series(folder: Path):
    files, failures, _ = crawl_dicom(folder)
    assert failures == []
    (series,) = group_series(files, ("CT",)).values()
    return series


def _plain_series_read(series) -> sitk.Image:
    """What a user would write: SimpleITK's ImageSeriesReader on the sorted files (+ int16 cast for CT)."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([f.path for f in series.files])
    return reader.Execute()


def test_series_conversion_equals_simpleitk_series_reader(tmp_path: Path) -> None:
    root, _ = write_tcia_export(tmp_path / "export")
    series = _series(root)
    out = write_series_nifti(series, tmp_path / "ct.nii.gz")
    mine, plain = sitk.ReadImage(str(out)), _plain_series_read(series)
    assert mine.GetPixelID() == sitk.sitkInt16
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mine), sitk.GetArrayFromImage(plain))
    np.testing.assert_allclose(mine.GetOrigin(), plain.GetOrigin(), atol=1e-6)
    np.testing.assert_allclose(mine.GetSpacing(), plain.GetSpacing(), atol=1e-6)
    np.testing.assert_allclose(mine.GetDirection(), plain.GetDirection(), atol=1e-9)


def test_non_integer_rescale_is_stored_as_float32(tmp_path: Path) -> None:
    root, _ = write_tcia_export(tmp_path / "export")
    series = _series(root)
    for k, record in enumerate(
        series.files
    ):  # a later slice gets a fractional intercept: int16 cannot hold it
        ds = pydicom.dcmread(record.path)
        ds.RescaleIntercept = "-1024.5" if k == 7 else "-1024"
        ds.save_as(record.path)
    series = _series(root)
    out = write_series_nifti(series, tmp_path / "ct.nii.gz")
    mine = sitk.ReadImage(str(out))
    assert mine.GetPixelID() == sitk.sitkFloat32
    # reference: pydicom's stored values with each slice's own slope and intercept
    truth = np.stack(
        [
            pydicom.pixels.apply_rescale(pydicom.dcmread(f.path).pixel_array, pydicom.dcmread(f.path))
            for f in series.files
        ]
    )
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mine), truth.astype(np.float32))
    assert sitk.GetArrayFromImage(mine)[7].flat[0] % 1 == 0.5
    # (SimpleITK's ImageSeriesReader picks int16 from the first slice and loses the .5 of slice 7)
    assert np.abs(sitk.GetArrayFromImage(_plain_series_read(series))[7] - truth[7]).max() == 0.5
