"""Rebuild the mosaic fixtures and ``reference.json`` from a dcm_qa checkout (not run by the tests).

Usage::

    python tests/data/mosaic/make_reference.py <dcm_qa checkout> [dcm2niix]

For each fixture: copy the DICOM file from ``<dcm_qa>/In/Orientation/...`` xz-compressed,
convert it alone with dcm2niix, check that the result is volume 1 of dcm_qa's own reference
``Ref/<name>.nii`` (same affine, same voxels), and record dcm2niix's affine, shape, voxel type
and the SHA-256 of its voxels (as nibabel returns them, C order, little endian).
"""

from __future__ import annotations

import hashlib
import json
import lzma
import subprocess
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

HERE = Path(__file__).resolve().parent
#: fixture file -> (file in dcm_qa, dcm_qa reference NIfTI of its series)
FIXTURES = {
    "sag_asc_35sl_vol1.dcm.xz": (
        "In/Orientation/sag/sagasc35/MR.1.3.12.2.1107.5.2.32.35131.2014031013000537156690252",
        "Ref/sag_asc_35sl_22.nii"),
    "cor_int_36sl_vol1.dcm.xz": (
        "In/Orientation/cor/corint36/MR.1.3.12.2.1107.5.2.32.35131.2014031012563584014288694",
        "Ref/cor_int_36sl_15.nii"),
}


def voxel_digest(data: np.ndarray) -> str:
    """SHA-256 of an array's values (C order, little endian)."""
    return hashlib.sha256(np.ascontiguousarray(data.astype(data.dtype.newbyteorder("<")))
                          .tobytes()).hexdigest()


def main(dcm_qa: Path, dcm2niix: str = "dcm2niix") -> None:
    version = subprocess.run([dcm2niix, "-v"], capture_output=True, text=True).stdout.split()[-1]
    reference: dict[str, object] = {"dcm2niix": version, "fixtures": {}}
    for name, (source, ref_name) in FIXTURES.items():
        raw = (dcm_qa / source).read_bytes()
        (HERE / name).write_bytes(lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME))
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "in").mkdir()
            (Path(tmp) / "in" / "file.dcm").write_bytes(raw)
            subprocess.run([dcm2niix, "-b", "n", "-z", "n", "-f", "out", "-o", tmp,
                            str(Path(tmp) / "in")], check=True, capture_output=True)
            img = nib.load(Path(tmp) / "out.nii")
            data = np.asarray(img.dataobj)
            affine = img.affine
        ref = nib.load(dcm_qa / ref_name)
        if not (np.allclose(ref.affine, affine, atol=1e-6)
                and np.array_equal(np.asarray(ref.dataobj)[..., 0], data)):
            raise SystemExit(f"{name}: dcm2niix output differs from dcm_qa's {ref_name}")
        reference["fixtures"][name] = {  # type: ignore[index]
            "source": source, "sha256_dicom": hashlib.sha256(raw).hexdigest(),
            "dcm_qa_reference": f"{ref_name} (volume 1)",
            "shape": list(data.shape), "dtype": str(data.dtype),
            "affine_ras": [[float(v) for v in row] for row in affine],
            "voxels_sha256": voxel_digest(data)}
    (HERE / "reference.json").write_text(json.dumps(reference, indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), *sys.argv[2:3])
