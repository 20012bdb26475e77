"""Helpers for tests that run the real Snakemake workflow in a temporary directory."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import re
import shutil
import struct
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml

REPO = Path(__file__).resolve().parents[1]


def snakemake(workdir: Path, args: Sequence[str], *, check: bool = True,
              timeout: int = 900) -> subprocess.CompletedProcess[str]:
    """Run ``snakemake -s REPO/Snakefile --directory workdir ARGS`` with this interpreter."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("RADFLOW_KEY_FILE", None)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
           "--directory", str(workdir), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout,
                          check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
                             f"{proc.stderr[-8000:]}")
    return proc


def demo_config(base: Path, demo: Any, **extra: Any) -> list[str]:
    """Write ``base/cohort.yaml`` for the demo cohort ``demo`` as the README documents it (its
    DICOM tree, sheet, clinical table and dictionary, the shipped ``config/pyradiomics.yaml``
    copied beside it), with ``extra`` top-level keys on top; make ``base/work``. Returns the
    ``--configfile`` arguments."""
    params = base / "pyradiomics.yaml"
    shutil.copy(REPO / "config" / "pyradiomics.yaml", params)
    (base / "work").mkdir(exist_ok=True)
    cfg = base / "cohort.yaml"
    cfg.write_text(yaml.safe_dump({
        "cohort": "demo", "dicom_root": str(demo.dicom_root), "sheet": str(demo.sheet),
        "clinical": str(demo.clinical), "clinical_id": "patient_id",
        "clinical_dictionary": str(demo.clinical_dictionary),
        "extract": {"params": str(params)}, **extra}))
    return ["--configfile", str(cfg)]


def job_counts(dry_run_output: str) -> Counter[str]:
    """Parse Snakemake's "Job stats" table (dry run or real run) into {rule: count}."""
    counts: Counter[str] = Counter()
    in_table = False
    for line in dry_run_output.splitlines():
        if line.startswith("job") and "count" in line:
            in_table = True
            continue
        if in_table:
            m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
            if m and m.group(1) != "total":
                counts[m.group(1)] = int(m.group(2))
            elif (line.strip().startswith("total") or not line.strip()) and counts:
                break
    return counts


def readable_bytes(path: Path) -> Iterable[bytes]:
    """The bytes of a file as stored, plus decoded views of compressed content.

    Gzip members are decompressed; Parquet files are also rendered as text (their pages may be
    compressed, which would hide a planted value from a byte search). Image volumes (NIfTI,
    MetaImage) are searched in everything but their voxel data: the gzip header (file name,
    comment), the NIfTI header and extensions, the MetaImage text header. Voxels are numbers, not
    text: since integer CT is written as int16, soft-tissue values such as 66, 97, 101, 107 spell
    "Baek" in UTF-16, so a byte search of the voxels finds names that are not there.
    """
    raw = path.read_bytes()
    if path.name.endswith((".nii.gz", ".nii")):
        data = raw
        if raw[:2] == b"\x1f\x8b":
            yield _gzip_header(raw)
            data = gzip.decompress(raw)
        yield data[:_nifti_voxel_offset(data)]
        return
    if path.name.endswith(".mha"):
        end = raw.find(b"ElementDataFile = LOCAL")
        yield raw if end < 0 else raw[:end]
        return
    yield raw
    if raw[:2] == b"\x1f\x8b":
        with contextlib.suppress(OSError):
            yield gzip.decompress(raw)
    if path.suffix == ".parquet":
        table = pq.read_table(io.BytesIO(raw))
        yield table.to_pandas().to_csv().encode("utf-8")
        yield str(table.schema.metadata).encode("utf-8")


def _gzip_header(raw: bytes) -> bytes:
    """The gzip member header up to the compressed data (RFC 1952: FEXTRA, FNAME, FCOMMENT)."""
    flags, pos = raw[3], 10
    if flags & 4:
        pos += 2 + int.from_bytes(raw[pos:pos + 2], "little")
    for bit in (8, 16):  # FNAME, FCOMMENT: NUL-terminated text
        if flags & bit:
            pos = raw.index(b"\0", pos) + 1
    return raw[:pos]


def _nifti_voxel_offset(data: bytes) -> int:
    """``vox_offset`` of a NIfTI-1 file (header + extensions); the whole file if not NIfTI-1."""
    for order in ("<", ">"):
        if len(data) >= 112 and struct.unpack(order + "i", data[:4])[0] == 348:
            return int(struct.unpack(order + "f", data[108:112])[0])
    return len(data)


def encodings_of(value: str) -> set[bytes]:
    """The byte forms a planted value can take in outputs (UTF-8, ISO 2022 IR 149, UTF-16)."""
    forms = {value.encode("utf-8")}
    for codec in ("iso2022_kr", "euc_kr", "utf-16-le"):
        try:
            encoded = value.encode(codec)
        except UnicodeEncodeError:
            continue
        if codec == "iso2022_kr":  # strip the designation/shift sequences around the text
            encoded = encoded.replace(b"\x1b$)C", b"").replace(b"\x0e", b"").replace(b"\x0f", b"")
        forms.add(encoded)
    # Values shorter than 4 bytes (a single CJK character, say) would match binary voxel data by
    # chance; they are still covered as parts of the longer planted values.
    return {f for f in forms if len(f) >= 4}


def find_planted(root: Path, planted: Iterable[str], skip: Sequence[str] = ()) -> list[str]:
    """Search every file (and every path) below ``root`` for planted values; return the hits."""
    needles = {v: [f.lower() for f in encodings_of(v)] for v in planted if len(v) >= 3}
    hits = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if any(rel == s or rel.startswith(s + "/") for s in skip):
            continue
        for value, _forms in needles.items():
            if value.lower() in rel.lower():
                hits.append(f"path {rel}: {value!r}")
        if not path.is_file():
            continue
        for blob in readable_bytes(path):
            low = blob.lower()
            hits += [f"{rel}: {value!r}" for value, forms in needles.items()
                     if any(_contains(low, f) for f in forms)]
    return sorted(set(hits))


#: A digit or a dot before a run of digits: the run is the inside of a longer number or of a
#: UID. Keyed UIDs (``2.25.<39 random digits>``) contain any given 8-digit date now and then
#: (a de-identified SOPInstanceUID ``2.25.1481…1511982113041`` held the planted birth date
#: ``19821130``). A DA/DT value, an ID or a text always starts after a non-digit (a length
#: field, a backslash, a space), so a real leak is still found.
_INSIDE_NUMBER = re.compile(rb"[0-9.]$")


def _contains(blob: bytes, form: bytes) -> bool:
    """Whether ``form`` occurs in ``blob``; an all-digit form only where it starts a number."""
    if not form.isdigit():
        return form in blob
    start = blob.find(form)
    while start >= 0:
        if start == 0 or not _INSIDE_NUMBER.search(blob[start - 1:start]):
            return True
        start = blob.find(form, start + 1)
    return False
