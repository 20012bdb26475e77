"""Where a cohort's files are: path resolution, the ``deidentify`` switch and the DICOM tree's
fingerprint (the crawl's ``dicom_tree`` param), computed from the validated config.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radflow.errors import ConfigError
from radflow.keys import resolve_key_file
from radflow.params_sets import ParamsSets, params_sets
from radflow.settings import ExtractSettings, from_mapping


@dataclass(frozen=True)
class Paths:
    """Resolved locations of one cohort's inputs and outputs (as strings for Snakemake), and its
    PyRadiomics parameter sets per modality (:class:`radflow.params_sets.ParamsSets`: the
    ``extract_one`` job of an image reads the file of the image's modality)."""

    dicom_root: str
    sheet: str
    clinical: str
    clinical_dictionary: str
    key_file: str
    pyradiomics_params: ParamsSets
    results: str
    private: str


def _resolve_input(value: str, basedir: Path) -> str:
    if not value:
        return ""
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (basedir / path).resolve())


def resolve_paths(config: dict[str, Any], basedir: str | os.PathLike[str]) -> Paths:
    """Resolve the config's paths: inputs against the repository root, outputs against the cwd.

    Raises
    ------
    ConfigError
        When neither ``dicom_root`` nor ``sheet`` is given (or ``deidentify`` without
        ``dicom_root``), an input does not exist (a params file: naming its key, e.g.
        ``extract.params.MR``), a params file does not suit the modality it is named for
        (:func:`radflow.params_sets.check_params_sets`), or ``private_dir`` lies inside
        ``results_dir``.
    """
    basedir = Path(basedir)
    inputs = {name: _resolve_input(config[name], basedir)
              for name in ("dicom_root", "sheet", "clinical", "clinical_dictionary")}
    if not inputs["dicom_root"] and not inputs["sheet"]:
        raise ConfigError("no input: set dicom_root (a DICOM folder tree) and/or sheet "
                          "(a cohort sheet), e.g. --config dicom_root=/data/dicom")
    if deidentify_on(config) and not inputs["dicom_root"]:
        raise ConfigError("deidentify=true needs dicom_root (the DICOM tree to de-identify)")
    checks = [("dicom_root", inputs["dicom_root"], Path.is_dir),
              ("sheet", inputs["sheet"], Path.is_file),
              ("clinical", inputs["clinical"], Path.is_file),
              ("clinical_dictionary", inputs["clinical_dictionary"], Path.is_file)]
    for name, value, test in checks:
        if value and not test(Path(value)):
            raise ConfigError(f"{name}: {value} does not exist or is not a "
                              f"{'folder' if test is Path.is_dir else 'file'}")
    extract = from_mapping(ExtractSettings, config["extract"], section="extract")
    paths = Paths(
        **inputs,
        key_file=str(resolve_key_file(_resolve_input(config["key_file"], basedir) or None)),
        pyradiomics_params=params_sets(
            extract, basedir,
            pet_in_suv=(config.get("convert") or {}).get("pet_units", "suv-bw") != "stored"),
        results=f"{config['results_dir'].rstrip('/')}/{config['cohort']}",
        private=f"{config['private_dir'].rstrip('/')}/{config['cohort']}",
    )
    results_root = Path(config["results_dir"]).resolve()
    private_root = Path(config["private_dir"]).resolve()
    if private_root == results_root or results_root in private_root.parents:
        raise ConfigError(f"private_dir ({config['private_dir']}) must not lie inside "
                          f"results_dir ({config['results_dir']}): it holds source paths")
    return paths


def deidentify_on(config: dict[str, Any]) -> bool:
    """The ``deidentify`` switch (``--config deidentify=true`` arrives as the string "true")."""
    return config.get("deidentify") in (True, "true")


def clinical_date_shift(config: dict[str, Any]) -> int:
    """The bound of the DICOM date shift (``deid.max_date_shift_days``) when de-identification
    shifts dates, else 0: the merge moves clinical dates by the same keyed per-patient shift
    (:mod:`radflow.merge.clinical`)."""
    deid = config.get("deid") or {}
    if not deidentify_on(config) or deid.get("dates", "shift") != "shift":
        return 0
    return int(deid.get("max_date_shift_days", 365))


def folder_of(files: str | list[str]) -> str:
    """The folder of a file (or of the first of a list): the de-identified tree's root from the
    crawl's ``actions.tsv`` input, so that the root is not a hard-coded param."""
    return os.path.dirname(files if isinstance(files, str) else files[0])


def tree_fingerprint(root: str) -> str:
    """Hash of the relative names, sizes and modification times of every file below ``root``.

    Used as a Snakemake param of the crawl so that adding, removing or replacing files re-runs
    the crawl (and, through write-if-changed manifests, only the jobs of what changed).
    """
    if not root:
        return ""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            try:
                st = os.stat(full)
            except OSError:
                continue
            h.update(f"{os.path.relpath(full, root)}\0{st.st_size}\0{st.st_mtime_ns}\n"
                     .encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:16]


def tree_fingerprint_param(root: str) -> Callable[[Any], str]:
    """The crawl's ``dicom_tree`` param: :func:`tree_fingerprint` computed when Snakemake first
    asks for it (a crawl job is in the DAG) and then remembered.

    The Snakefile is parsed again inside every cluster job; a plain value would walk the whole
    DICOM tree there each time (about 30 s per job at 900,000 files).
    """
    @functools.cache
    def fingerprint() -> str:
        return tree_fingerprint(root)

    return lambda wildcards: fingerprint()
