"""The reference-data registry (tests/testdata_registry.py, `make testdata`): well formed, equal
to the local copy (CI: ../shared/data), and `fetch` rebuilds files from what it downloads. No
network: downloads are served from the local copy."""

from __future__ import annotations

import gzip
import io
import re
import tarfile
import zipfile
from collections import Counter
from pathlib import Path

import pytest
import testdata_registry as reg

ENTRIES = reg.read_registry()


def test_registry_rows_are_well_formed() -> None:
    paths = [e.path for e in ENTRIES]
    assert len(paths) == len(set(paths))
    for e in ENTRIES:
        assert re.fullmatch(r"[0-9a-f]{64}", e.sha256), e.path
        assert e.source in reg.SOURCES and e.recipe in reg.RECIPES, e.path
        if e.source == "repo":
            assert e.note and reg.sha256_of((reg.LOCAL / e.path).read_bytes()) == e.sha256
        elif e.source == "generated":
            assert e.path.endswith("/SHA256SUMS") and e.recipe == "sha256sum"
        else:
            assert e.upstream and e.url.startswith("https://"), e.path
        assert bool(e.upstream_sha256) == (e.recipe in ("gzip -9 -n", "crlf")), e.path
    counts = Counter(e.source for e in ENTRIES)
    assert set(counts) == set(reg.SOURCES), "every source is used"
    shipped = {p.relative_to(reg.LOCAL).as_posix() for p in reg.LOCAL.rglob("*") if p.is_file()}
    assert shipped == {e.path for e in ENTRIES if e.source == "repo"}


def test_urls_are_pinned_and_quoted() -> None:
    by_path = {e.path: e for e in ENTRIES}
    spaced = by_path["dicom2nifti_series/failing/sliceorientation/001/IM-0001-0001-0001 2.dcm"]
    assert spaced.url == ("https://raw.githubusercontent.com/icometrix/dicom2nifti/"
                          "d68253ef3b173f43067b6f9db83788bc25cf50cd/tests/data/failing/"
                          "sliceorientation/001/IM-0001-0001-0001%202.dcm")
    wheel = by_path["pydicom_test_files/test_files/CT_small.dcm"]
    assert wheel.url.endswith("/pydicom-3.0.1-py3-none-any.whl")
    assert wheel.upstream == "pydicom/data/test_files/CT_small.dcm"
    crm = by_path["ibsi2_phase1_phantoms/reference_response_maps/1_a_1-ValidCRM.nii.gz"]
    assert crm.url.endswith("/5404579fb3e0d17e8db421f0e82d64ce2432ec03/reference_response_maps/"
                            "1_a_1-ValidCRM.nii") and crm.recipe == "gzip -9 -n"
    for source in reg.SOURCES.values():   # a commit or a package file with its SHA-256
        assert (re.search(r"/[0-9a-f]{40}/\{path\}$", source.url) or source.sha256
                or not source.url), source


@pytest.mark.testdata
def test_registry_matches_the_reference_data(testdata: Path) -> None:
    """CI: every registry file is in ../shared/data with the registry's SHA-256, every file
    there is in the registry, and every SHA256SUMS lists its folder."""
    assert reg.check_copy(testdata, ENTRIES) == []


@pytest.mark.testdata
def test_recipes_reproduce_the_reference_files(testdata: Path) -> None:
    for e in ENTRIES:
        if e.recipe == "gzip -9 -n":
            assert reg.sha256_of(gzip.decompress((testdata / e.path).read_bytes())) == \
                e.upstream_sha256
        elif e.recipe == "crlf":
            lf = (testdata / e.path).read_bytes().replace(b"\r\n", b"\n")
            assert reg.sha256_of(lf) == e.upstream_sha256
            assert reg.sha256_of(reg._make(e, lf)) == e.sha256


def _upstream_bytes(testdata: Path, e: reg.Entry) -> bytes:
    data = (testdata / e.path).read_bytes()
    if e.recipe == "gzip -9 -n":
        return gzip.decompress(data)
    return data.replace(b"\r\n", b"\n") if e.recipe == "crlf" else data


def _package(testdata: Path, name: str, entries: list[reg.Entry], folder: Path) -> Path:
    """A stand-in for a PyPI package file holding ``entries`` under their upstream paths."""
    if name.endswith(".whl"):
        path = folder / name
        with zipfile.ZipFile(path, "w") as zf:
            for e in entries:
                zf.writestr(e.upstream, _upstream_bytes(testdata, e))
        return path
    path = folder / name
    with tarfile.open(path, "w:gz") as tf:
        for e in entries:
            data = _upstream_bytes(testdata, e)
            info = tarfile.TarInfo(f"pyradiomics_bhklab-3.1.4/{e.upstream}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.testdata
def test_fetch_rebuilds_the_files_from_their_downloads(testdata: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # A part of the registry: two files of each source, every recipe, one complete folder.
    part: list[reg.Entry] = []
    for source in reg.SOURCES:
        part += [e for e in ENTRIES if e.source == source][:2]
    part += [e for e in ENTRIES if e.recipe == "gzip -9 -n"][:2]
    part += [e for e in ENTRIES if e.recipe == "crlf"]
    part += [e for e in ENTRIES if e.path.startswith("rt_utils_rtstruct/")]
    part += [e for e in ENTRIES if "IM-0001-0001-0001 2.dcm" in e.path]
    part = list({e.path: e for e in part}.values())
    by_url = {e.url: e for e in part if "{path}" in reg.SOURCES[e.source].url}
    packages = {name: [e for e in part if e.source == name]
                for name, s in reg.SOURCES.items() if s.sha256}
    calls: list[str] = []

    def download(url: str, sha256: str, folder: Path) -> Path:
        """What pooch.retrieve does, from the local copy: the file at ``url``, checked."""
        calls.append(url)
        folder.mkdir(parents=True, exist_ok=True)
        for name, source in reg.SOURCES.items():
            if source.sha256 and url == source.url:
                assert sha256 == source.sha256
                return _package(testdata, url.rsplit("/", 1)[-1], packages[name], folder)
        entry = by_url[url]
        data = _upstream_bytes(testdata, entry)
        assert reg.sha256_of(data) == sha256 == entry.download_sha256
        path = folder / reg.sha256_of(url.encode())
        path.write_bytes(data)
        return path

    monkeypatch.setattr(reg, "_download", download)
    assert reg.fetch(tmp_path, part) == []
    assert sorted(calls) == sorted([*by_url, *(reg.SOURCES[n].url for n in packages)])
    for e in part:   # (a SHA256SUMS lists only the folder's files of the part)
        if e.source != "generated" or e.path.startswith("rt_utils_rtstruct/"):
            assert (tmp_path / e.path).read_bytes() == (testdata / e.path).read_bytes(), e.path
    sums = tmp_path / "rt_utils_rtstruct" / "SHA256SUMS"
    assert sums.read_bytes() == (testdata / "rt_utils_rtstruct" / "SHA256SUMS").read_bytes()

    # A second fetch downloads nothing; damage is found.
    calls.clear()
    assert reg.fetch(tmp_path, part) == [] and calls == []
    (tmp_path / part[0].path).write_bytes(b"damaged")
    (tmp_path / part[1].path).unlink()
    (tmp_path / "stray.txt").write_text("x")
    problems = reg.check_copy(tmp_path, part)
    assert any(p.startswith(f"{part[0].path}: SHA-256") for p in problems)
    assert f"{part[1].path}: missing" in problems
    assert any(p.startswith("stray.txt: not in the registry") for p in problems)
