"""DVC stage `ibsi_data`: fingerprint of the IBSI CT phantom folder, so `ibsi_check` re-runs when it appears.

DVC cannot list an optional folder as a dependency (a missing dependency stops `dvc repro`), and
the CT phantom (CC BY-NC 3.0) lives outside the repository: at ``$SABRKIT_IBSI_DATA/ibsi_ct_phantom``
or ``../shared/data/ibsi_ct_phantom``. This always-run stage writes
``reports/ibsi_data.json`` (the folder it looked at and the SHA-256 of every file in it, or
``absent``); the file changes only when the phantom appears, disappears or changes, and
`ibsi_check` depends on it.
"""

from __future__ import annotations

import json

from stage_params import ROOT

OUT = ROOT / "reports" / "ibsi_data.json"


def main() -> None:
    from sabrkit.imaging.io import sha256_file
    from sabrkit.settings import shared_data_dir

    data = shared_data_dir()
    folder = data / "ibsi_ct_phantom"
    files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
    fingerprint = {
        "ct_phantom": "present" if files else "absent",
        "files": {str(p.relative_to(folder)): sha256_file(p) for p in files},
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fingerprint, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    from stage_runner import run_stage

    run_stage(main)
