"""DVC stage `synthesize`: write the built-in synthetic SABR cohort to data/synthetic/."""

from __future__ import annotations

from stage_params import ROOT, load_section


def main() -> None:
    from sabrkit.synthetic import SynthConfig, synthesize

    p = load_section("synthesize")
    config = SynthConfig(
        n_patients=p.n_patients,
        seed=p.seed,
        enrolment_start=p.enrolment_start,
        enrolment_end=p.enrolment_end,
        cutoff_date=p.cutoff_date,
        image_shape=p.image_shape,
        spacing_mm=p.spacing_mm,
        progression_coefficients=p.progression_coefficients,
        death_coefficients=p.death_coefficients,
    )
    synthesize(ROOT / "data" / "synthetic", config)


if __name__ == "__main__":
    from stage_runner import run_stage

    run_stage(main)
