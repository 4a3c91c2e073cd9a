"""Tests of the CT lesion phantoms: geometry, mask, background, texture signal."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy.spatial import ConvexHull
from scipy.spatial.distance import pdist
from scipy.stats import spearmanr

from sabrkit.synthetic import (
    SIGNAL_FEATURES,
    LesionPhantom,
    SynthConfig,
    generate_cohort,
    render_lesion,
    synthesize,
)

SHAPE = (128, 128, 64)
SPACING = (0.8, 0.8, 2.0)


def _lesion(site="lung", location="peripheral", diameter=20.0, heterogeneity=0.0, seed=3, noise=15.0):
    return LesionPhantom("SABR-RCC-001-L1", site, location, diameter, 0.85, 0.75, heterogeneity, noise, seed)


def _max_diameter_mm(mask: np.ndarray, spacing_xyz) -> float:
    points = np.argwhere(mask) * np.array([spacing_xyz[2], spacing_xyz[1], spacing_xyz[0]])
    return float(pdist(points[ConvexHull(points).vertices]).max())


def test_image_and_mask_share_the_grid_and_are_typed():
    image, mask = render_lesion(_lesion(), SHAPE, SPACING)
    assert image.shape == mask.shape == (SHAPE[2], SHAPE[1], SHAPE[0])
    assert image.dtype == np.int16 and mask.dtype == np.uint8
    assert set(np.unique(mask)) == {0, 1}
    again = render_lesion(_lesion(), SHAPE, SPACING)
    assert np.array_equal(image, again[0]) and np.array_equal(mask, again[1])
    other = render_lesion(_lesion(seed=4), SHAPE, SPACING)
    assert not np.array_equal(image, other[0])


@pytest.mark.parametrize(
    ("site", "location", "diameter"),
    [
        ("lung", "peripheral", 10.0),
        ("lung", "chest_wall", 24.0),
        ("bone", "vertebral", 35.0),
        ("adrenal", "gland", 55.0),
        ("brain", "parenchyma", 12.0),
        ("liver", "other", 28.0),
    ],
)
def test_mask_matches_the_longest_diameter(site, location, diameter):
    _, mask = render_lesion(_lesion(site, location, diameter), SHAPE, SPACING)
    assert mask.sum() > 20
    measured = _max_diameter_mm(mask, SPACING)
    assert 0.75 * diameter <= measured <= 1.3 * diameter, measured
    # the lesion stays inside the region, away from its faces
    nz = np.argwhere(mask)
    assert nz.min() > 0 and (nz.max(axis=0) < np.array(mask.shape) - 1).all()


def test_site_backgrounds_have_plausible_hounsfield_units():
    lung, lung_mask = render_lesion(_lesion("lung"), SHAPE, SPACING)
    assert -900 < np.median(lung[lung_mask == 0]) < -750
    assert 0 < np.median(lung[lung_mask == 1]) < 100
    liver, liver_mask = render_lesion(_lesion("liver", "other"), SHAPE, SPACING)
    assert 40 < np.median(liver[liver_mask == 0]) < 90
    bone, bone_mask = render_lesion(_lesion("bone", "vertebral", 20.0), SHAPE, SPACING)
    outside = bone[bone_mask == 0]
    assert np.mean((outside > 250) & (outside < 800)) > 0.15  # trabecular bone
    assert np.mean(outside > 800) > 0.005  # cortex
    brain, brain_mask = render_lesion(_lesion("brain", "parenchyma", 12.0), SHAPE, SPACING)
    assert 20 < np.median(brain[brain_mask == 0]) < 45


def test_texture_spread_grows_with_heterogeneity():
    spreads = []
    for h in (-1.5, 0.0, 1.5):
        image, mask = render_lesion(_lesion("liver", "other", 30.0, heterogeneity=h, seed=9), SHAPE, SPACING)
        spreads.append(float(image[mask == 1].std()))
    assert spreads[0] < spreads[1] < spreads[2]
    assert spreads[2] > 2.5 * spreads[0]


def test_written_images_keep_the_geometry(tmp_path):
    config = SynthConfig.tiny(n_patients=3)
    folder = synthesize(tmp_path / "cohort", config)
    cohort = generate_cohort(config, np.random.default_rng(config.seed))
    lesion = cohort.phantoms[0]
    image = sitk.ReadImage(str(folder / f"images/{lesion.lesion_id}_ct.nii.gz"))
    mask = sitk.ReadImage(str(folder / f"images/{lesion.lesion_id}_mask.nii.gz"))
    assert image.GetSize() == mask.GetSize() == config.image_shape
    assert np.allclose(image.GetSpacing(), config.spacing_mm) and np.allclose(
        mask.GetSpacing(), config.spacing_mm
    )
    assert image.GetOrigin() == mask.GetOrigin()
    assert image.GetDirection() == mask.GetDirection() == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    assert image.GetPixelID() == sitk.sitkInt16 and mask.GetPixelID() == sitk.sitkUInt8
    rendered_image, rendered_mask = cohort.render(lesion.lesion_id)
    assert np.array_equal(sitk.GetArrayFromImage(image), rendered_image)
    assert np.array_equal(sitk.GetArrayFromImage(mask), rendered_mask)
    assert sitk.GetArrayFromImage(mask).sum() > 0


@pytest.mark.slow
def test_pyradiomics_signal_features_track_heterogeneity():
    """pyradiomics (binWidth 25, 1 mm resampling) features of SIGNAL_FEATURES: Spearman |rho| >= 0.6."""
    import logging

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    from radiomics import featureextractor

    from sabrkit.synthetic.phantom import region_origin, to_sitk

    extractor = featureextractor.RadiomicsFeatureExtractor(binWidth=25, resampledPixelSpacing=[1, 1, 1])
    extractor.disableAllFeatures()
    for family in {name.split("_")[1] for name in SIGNAL_FEATURES}:
        extractor.enableFeatureClassByName(family)
    cohort = generate_cohort(SynthConfig(n_patients=14, write_images=False), np.random.default_rng(5))
    specs = cohort.phantoms[:24]
    values: dict[str, list[float]] = {name: [] for name in SIGNAL_FEATURES}
    for spec in specs:
        image, mask = render_lesion(spec, SHAPE, SPACING)
        origin = region_origin(spec.site, SHAPE, SPACING)
        result = extractor.execute(to_sitk(image, SPACING, origin), to_sitk(mask, SPACING, origin))
        for name in SIGNAL_FEATURES:
            values[name].append(float(result[name]))
    latent = [spec.heterogeneity for spec in specs]
    for name, column in values.items():
        assert abs(spearmanr(column, latent).statistic) >= 0.6, name
