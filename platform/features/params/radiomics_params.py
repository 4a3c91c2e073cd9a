"""Versioned parameter profiles (sabrkit keys + pyradiomics settings), validated at load.

A profile keeps sabrkit's own keys apart from pyradiomics' so that the ``pyradiomics`` part is a
file plain pyradiomics loads (``RadiomicsFeatureExtractor(params)``)::

    sabrkit:
      version: ibsi-ct-c          # recorded in every feature row (prov_params_version)
      modality: CT
      description: ...
      preprocessing: {...}        # optional IBSI chain (sabrkit.features.ibsi_processing)
    pyradiomics:
      setting: {...}
      imageType: {...}
      featureClass: {...}

The older flat layout (``version``, ``modality``, ``description``, ``setting``, ``imageType``,
``featureClass`` at the top level, as in ``ct_v1.yaml``) is still read. Loading checks the keys
(unknown ones are rejected by name), the types (pydantic), the preprocessing section, and then
runs pyradiomics' own schema validation (``radiomics/schemas/paramSchema.yaml`` with its
extension functions), so a typo such as ``binWidht`` fails at load instead of silently using a
default.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field

from sabrkit.errors import ConfigError, format_problem, pydantic_problems
from sabrkit.features.ibsi_processing import IBSIProcessing

__all__ = ["RadiomicsParams", "load_params", "packaged_params", "TOP_LEVEL_KEYS", "SECTION_KEYS"]

logger = logging.getLogger(__name__)

#: Keys a parameter file may hold at the top level.
TOP_LEVEL_KEYS: tuple[str, ...] = (
    "version",
    "modality",
    "description",
    "setting",
    "imageType",
    "featureClass",
)

#: Keys of the two-section layout: top level, the ``sabrkit`` section, the ``pyradiomics`` section.
SECTION_KEYS: dict[str, tuple[str, ...]] = {
    "top": ("sabrkit", "pyradiomics"),
    "sabrkit": ("version", "modality", "description", "preprocessing"),
    "pyradiomics": ("setting", "imageType", "featureClass"),
}

_VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class RadiomicsParams(BaseModel):
    """One validated, versioned pyradiomics configuration.

    Build it with :func:`load_params` or :meth:`from_mapping` (both turn every problem into
    :class:`~sabrkit.errors.ConfigError`).

    Attributes
    ----------
    version : str
        Parameter-set version, e.g. ``"ct-v1"``; goes into ``prov_params_version``.
    modality : {"CT", "MR", "PT", "RTDOSE"}
        ``RTDOSE``: a dose or BED map in Gy (dosiomics, ``dose_v1``).
    description : str
    setting : dict
        pyradiomics ``setting`` section (``binWidth``, ``resampledPixelSpacing`` ...).
    image_types : dict
        pyradiomics ``imageType`` section (YAML key ``imageType``); default ``{"Original": {}}``.
    feature_classes : dict
        pyradiomics ``featureClass`` section (YAML key ``featureClass``); an empty value
        enables every feature of the class.
    preprocessing : IBSIProcessing, optional
        sabrkit's IBSI image processing in front of pyradiomics' feature classes
        (:mod:`sabrkit.features.ibsi_processing`); ``None``: pyradiomics' own pipeline.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    version: str = Field(pattern=_VERSION_PATTERN)
    modality: Literal["CT", "MR", "PT", "RTDOSE"]
    description: str = ""
    setting: dict[str, Any] = Field(default_factory=dict)
    image_types: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {"Original": dict[str, Any]()}, alias="imageType"
    )
    feature_classes: dict[str, list[str] | None] = Field(alias="featureClass", min_length=1)
    preprocessing: IBSIProcessing | None = None

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any], source: str = "parameters") -> RadiomicsParams:
        """Validate a parsed parameter file.

        Parameters
        ----------
        mapping : dict
            Parsed YAML.
        source : str
            Where the mapping came from, quoted in messages.

        Raises
        ------
        ConfigError
            Unknown top-level key (named, with the allowed ones), wrong type or value, or a
            setting that pyradiomics' schema rejects.
        """
        if not isinstance(mapping, dict):
            raise ConfigError(
                format_problem(
                    f"{source}: top level is {type(mapping).__name__}",
                    "a parameter file is a YAML mapping",
                    f"start the file with the keys {list(TOP_LEVEL_KEYS)}",
                )
            )
        if any(key in mapping for key in SECTION_KEYS["top"]):
            mapping = _flatten_sections(mapping, source)
        unknown = [key for key in mapping if key not in (*TOP_LEVEL_KEYS, "preprocessing")]
        if unknown:
            raise ConfigError(
                format_problem(
                    f"{source}: unknown top-level key(s) {unknown}",
                    f"allowed top-level keys are {list(TOP_LEVEL_KEYS)}",
                    "remove or rename the key (pyradiomics settings belong under 'setting')",
                )
            )
        try:
            params = cls.model_validate(mapping)
        except pydantic.ValidationError as exc:
            problems = pydantic_problems(exc.errors())
            raise ConfigError(
                format_problem(
                    f"{source}: {problems}",
                    "version matches " + _VERSION_PATTERN + ", modality is CT, MR, PT or RTDOSE, "
                    "featureClass names at least one class",
                    "correct the values named above",
                )
            ) from exc
        params.validate_with_pyradiomics(source)
        if params.preprocessing is not None:
            params.validate_preprocessing(source)
        return params

    def validate_preprocessing(self, source: str = "parameters") -> None:
        """Check that a profile with IBSI preprocessing leaves resampling etc. to it (:class:`ConfigError`)."""
        from sabrkit.features.ibsi_extract import OWNED_SETTINGS

        owned = sorted(key for key in self.setting if key in OWNED_SETTINGS)
        other_images = sorted(name for name in self.image_types if name != "Original")
        no_bins = "binWidth" in self.setting and "binCount" in self.setting
        if owned or other_images or no_bins:
            raise ConfigError(
                format_problem(
                    f"{source}: a profile with a preprocessing section also sets pyradiomics {owned}, "
                    f"image types {other_images}" + (", binWidth and binCount" if no_bins else ""),
                    "the IBSI chain owns resampling, re-segmentation, normalisation and aggregation, works on the "
                    "Original image, and discretises with binWidth or binCount (one of them)",
                    "move the setting into preprocessing (docs/ibsi.md) or drop the preprocessing section",
                )
            )

    def to_profile(self) -> dict[str, Any]:
        """The profile in the two-section layout (``sabrkit`` / ``pyradiomics``), as a YAML-ready dict."""
        sabrkit: dict[str, Any] = {
            "version": self.version,
            "modality": self.modality,
            "description": self.description,
        }
        if self.preprocessing is not None:
            sabrkit["preprocessing"] = json.loads(self.preprocessing.model_dump_json())
        return {"sabrkit": sabrkit, "pyradiomics": self.to_pyradiomics_dict()}

    def to_pyradiomics_dict(self) -> dict[str, Any]:
        """Return a deep copy of the three pyradiomics sections (``setting``, ``imageType``, ``featureClass``)."""
        return copy.deepcopy(
            {"setting": self.setting, "imageType": self.image_types, "featureClass": self.feature_classes}
        )

    @property
    def params_hash(self) -> str:
        """SHA-256 of the canonical JSON of :meth:`to_pyradiomics_dict`.

        Keys sorted, no whitespace, integral floats written as integers (``25.0`` and ``25``
        hash alike). ``version``, ``modality`` and ``description`` do not enter the hash: two
        files with the same pyradiomics settings give the same features and the same hash.
        The ``preprocessing`` section enters it when present (it changes the features).
        """
        content: dict[str, Any] = self.to_pyradiomics_dict()
        if self.preprocessing is not None:
            content = {**content, "sabrkit_preprocessing": json.loads(self.preprocessing.model_dump_json())}
        canonical = json.dumps(_canonical(content), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(canonical.encode("ascii")).hexdigest()

    @property
    def label(self) -> int:
        """The mask label features are extracted for (``setting.label``, default 1)."""
        return int(self.setting.get("label", 1))

    @property
    def geometry_tolerance(self) -> float:
        """``setting.geometryTolerance``, or ITK's default 1e-6 when unset."""
        value = self.setting.get("geometryTolerance")
        return 1e-6 if value is None else float(value)

    def derive(
        self,
        version: str,
        *,
        setting: dict[str, Any] | None = None,
        image_types: dict[str, dict[str, Any]] | None = None,
        feature_classes: dict[str, list[str] | None] | None = None,
        description: str | None = None,
    ) -> RadiomicsParams:
        """Return a new validated parameter set under a new ``version``.

        ``setting`` is merged over the current settings (a ``None`` value removes a key);
        ``image_types`` and ``feature_classes`` replace their sections. Example: enable LoG
        and wavelet images with
        ``params.derive("ct-v1-filters", image_types={"Original": {}, "LoG": {"sigma": [1.0, 3.0]}, "Wavelet": {}})``.

        Raises
        ------
        ConfigError
            ``version`` equals the current version, or the result is invalid.
        """
        if version == self.version:
            raise ConfigError(
                format_problem(
                    f"derived parameter version {version!r} equals the original",
                    "changed settings need a new version so feature tables stay traceable",
                    f"pass e.g. {self.version + '-custom'!r}",
                )
            )
        merged = dict(self.setting)
        for key, value in (setting or {}).items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        mapping: dict[str, Any] = {
            "version": version,
            "modality": self.modality,
            "description": self.description if description is None else description,
            "setting": merged,
            "imageType": self.image_types if image_types is None else image_types,
            "featureClass": self.feature_classes if feature_classes is None else feature_classes,
        }
        if self.preprocessing is not None:
            mapping["preprocessing"] = json.loads(self.preprocessing.model_dump_json())
        return RadiomicsParams.from_mapping(
            mapping,
            source=f"parameters {version!r} derived from {self.version!r}",
        )

    def with_image_types(
        self,
        *,
        log_sigma_mm: list[float] | tuple[float, ...] = (),
        wavelet: bool = False,
        original: bool = True,
    ) -> RadiomicsParams:
        """Return these parameters with Laplacian-of-Gaussian and/or wavelet images enabled.

        The new version is derived from the old one and the filters (``ct-v1`` ->
        ``ct-v1-log1_3-wavelet``), so feature tables record which images they came from.

        Parameters
        ----------
        log_sigma_mm : sequence of float
            LoG kernel widths in mm (pyradiomics ``LoG: {sigma: [...]}``); empty: no LoG.
        wavelet : bool
            Add pyradiomics' 8 undecimated wavelet decompositions (``Wavelet: {}``).
        original : bool
            Keep the original image.

        Raises
        ------
        ConfigError
            No image type left, or pyradiomics rejects a sigma (e.g. negative).
        """
        image_types: dict[str, dict[str, Any]] = {}
        suffix = []
        if original:
            image_types["Original"] = {}
        else:
            suffix.append("nooriginal")
        if log_sigma_mm:
            image_types["LoG"] = {"sigma": [float(s) for s in log_sigma_mm]}
            suffix.append("log" + "_".join(f"{float(s):g}" for s in log_sigma_mm))
        if wavelet:
            image_types["Wavelet"] = {}
            suffix.append("wavelet")
        if not image_types:
            raise ConfigError(
                format_problem(
                    "with_image_types(original=False) and no LoG or wavelet",
                    "features need at least one image type",
                    "keep original=True or pass log_sigma_mm / wavelet=True",
                )
            )
        if not suffix:
            return self
        return self.derive(f"{self.version}-{'-'.join(suffix)}", image_types=image_types)

    def validate_with_pyradiomics(self, source: str = "parameters") -> None:
        """Run pyradiomics' own schema validation; raise :class:`ConfigError` on failure."""
        import pykwalify.core
        import pykwalify.errors
        from radiomics import getParameterValidationFiles

        schema_file, schema_funcs = getParameterValidationFiles()
        try:
            with _quiet("pykwalify"), warnings.catch_warnings():
                # pykwalify loads pyradiomics' schema functions with the deprecated load_module()
                warnings.filterwarnings("ignore", message="the load_module", category=DeprecationWarning)
                core = pykwalify.core.Core(
                    source_data=self.to_pyradiomics_dict(),
                    schema_files=[schema_file],
                    extensions=[schema_funcs],
                )
                core.validate(raise_exception=True)
        except pykwalify.errors.SchemaError as exc:
            detail = " ".join(str(getattr(exc, "msg", exc)).split())
            raise ConfigError(
                format_problem(
                    f"{source}: pyradiomics rejects the parameters ({detail})",
                    "setting, imageType and featureClass must follow pyradiomics 3.0.1's parameter schema",
                    "fix the key or value named above (see pyradiomics' customization docs)",
                )
            ) from exc
        except (ValueError, TypeError) as exc:  # raised by pyradiomics' schema extension functions
            raise ConfigError(
                format_problem(
                    f"{source}: pyradiomics rejects the parameters ({exc})",
                    "image types and feature classes must be ones pyradiomics 3.0.1 implements",
                    "use a name from the list above",
                )
            ) from exc


def _flatten_sections(mapping: dict[str, Any], source: str) -> dict[str, Any]:
    """Two-section layout -> the flat keys :class:`RadiomicsParams` validates (unknown keys named)."""
    problems = []
    for level, allowed in (("top", SECTION_KEYS["top"]),):
        extra = [key for key in mapping if key not in allowed]
        if extra:
            problems.append(f"{level}-level key(s) {extra}")
    flat: dict[str, Any] = {}
    for section in SECTION_KEYS["top"]:
        part = mapping.get(section) or {}
        if not isinstance(part, dict):
            problems.append(f"section {section!r} is {type(part).__name__}, not a mapping")
            continue
        extra = [key for key in part if key not in SECTION_KEYS[section]]
        if extra:
            problems.append(f"key(s) {extra} in section {section!r}")
        flat.update({k: v for k, v in part.items() if k in SECTION_KEYS[section]})
    if problems:
        raise ConfigError(
            format_problem(
                f"{source}: unknown {'; '.join(problems)}",
                "a profile has a 'sabrkit' section ("
                + ", ".join(SECTION_KEYS["sabrkit"])
                + ") and a 'pyradiomics' "
                "section (" + ", ".join(SECTION_KEYS["pyradiomics"]) + ")",
                "move or rename the key (pyradiomics settings belong under pyradiomics.setting)",
            )
        )
    return flat


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Raise a library logger's level to CRITICAL for the block (no handlers added)."""
    target = logging.getLogger(logger_name)
    previous = target.level
    target.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        target.setLevel(previous)


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def packaged_params() -> list[str]:
    """Names of the parameter files shipped with sabrkit (``["ct_v1", ...]``)."""
    folder = resources.files("sabrkit.features.params")
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_params(name_or_path: str | os.PathLike[str]) -> RadiomicsParams:
    """Load and validate a parameter file.

    Parameters
    ----------
    name_or_path : str or path-like
        A bare name (``"ct_v1"`` or ``"ct-v1"``) selects a file shipped in
        ``sabrkit/features/params/``; anything with a folder part or a ``.yaml``/``.yml``
        suffix is read as a path.

    Returns
    -------
    RadiomicsParams

    Raises
    ------
    ConfigError
        Unknown packaged name (the available ones are listed), missing file, YAML syntax
        error, or invalid parameters.
    """
    text_name = os.fspath(name_or_path)
    is_path = isinstance(name_or_path, os.PathLike) or bool(re.search(r"[\\/]|\.ya?ml$", text_name))
    if is_path:
        file = Path(text_name)
        if not file.is_file():
            raise ConfigError(
                format_problem(
                    f"parameter file {text_name!r} does not exist",
                    "load_params reads an existing YAML file or a packaged name",
                    f"check the path, or use one of the packaged names {packaged_params()}",
                )
            )
        text, source = file.read_text(encoding="utf-8"), str(file)
    else:
        stem = text_name.replace("-", "_")
        if stem not in packaged_params():
            raise ConfigError(
                format_problem(
                    f"no packaged parameter file named {text_name!r}",
                    f"packaged names are {packaged_params()}",
                    "use one of them or pass a path to your own YAML file",
                )
            )
        text = resources.files("sabrkit.features.params").joinpath(f"{stem}.yaml").read_text(encoding="utf-8")
        source = f"packaged parameters {stem}.yaml"
    try:
        mapping = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(
            format_problem(
                f"{source}: YAML syntax error ({exc})", "the file must be valid YAML", "fix the line named"
            )
        ) from exc
    params = RadiomicsParams.from_mapping(mapping, source=source)
    logger.debug("loaded %s: version %s, hash %s", source, params.version, params.params_hash)
    return params
