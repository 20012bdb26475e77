"""The third-party reference data of the tests: where each file comes from, and its SHA-256.

``tests/testdata_registry.tsv`` has one row per file of the reference data folder
(``RADFLOW_TESTDATA``, default ``../shared/data``; its ``INDEX.md`` and each folder's
``PROVENANCE.md`` say what the data is):

``path``
    The file, relative to the folder.
``sha256``
    SHA-256 of the file as the tests use it.
``source``
    A key of :data:`SOURCES`: a public repository at a pinned commit (one URL per file), a
    package file on PyPI at a pinned version (downloaded once, with its own SHA-256, and the file
    taken out of it), ``repo`` (written for radflow's tests, not downloadable as such: shipped in
    ``tests/testdata_local/``; ``note`` says why) or ``generated`` (``SHA256SUMS``, written here).
``upstream``
    The file's path in the source.
``recipe``
    How the upstream file becomes the file here: empty (a byte-for-byte copy), ``gzip -9 -n``
    (IBSI 2 response maps; GNU gzip reproduces the bytes, another gzip the same content) or
    ``crlf`` (line ends LF -> CRLF, as in the PyPI package the file was first taken from).
``upstream_sha256``
    With a recipe: SHA-256 of the upstream file, checked when it is downloaded.

``python tests/testdata_registry.py fetch DIR`` (``make testdata``) downloads what ``DIR`` lacks
with pooch, checks every SHA-256 and writes each folder's ``SHA256SUMS``;
``python tests/testdata_registry.py verify DIR`` checks a copy without the network (CI runs the
same check, ``tests/test_testdata.py``, on ``../shared/data``).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
REGISTRY = HERE / "testdata_registry.tsv"
LOCAL = HERE / "testdata_local"


@dataclass(frozen=True)
class Source:
    """Where files come from: ``url`` has a ``{path}`` field (one download per file), or is one
    package file (``sha256`` set) of which ``{path}`` names a member, below its top folder
    for a source distribution."""

    url: str
    what: str
    sha256: str = ""


def _github(repo: str, commit: str, date: str) -> Source:
    return Source(f"https://raw.githubusercontent.com/{repo}/{commit}/{{path}}",
                  f"GitHub {repo}, commit {commit[:8]} ({date})")


#: Every source of the registry, each at a pinned version (PROVENANCE.md of each folder).
SOURCES: dict[str, Source] = {
    "dicom2nifti": _github("icometrix/dicom2nifti", "d68253ef3b173f43067b6f9db83788bc25cf50cd",
                           "2025-06-23"),
    "highdicom": _github("ImagingDataCommons/highdicom",
                         "49728738b395c40058f091f13a514b468dff9451", "2026-08-07"),
    "ibsi_data_sets": _github("theibsi/data_sets", "6da96021bc91faf4c0cb7fd7fa56a4225d2064a8",
                              "2024-08-14"),
    "ibsi_doc": _github("theibsi/ibsi-doc", "b952e71e9d40569e8a9ff3c740bc389c04dd6c28",
                        "2021-12-13"),
    "ibsi2_reference_data": _github("theibsi/ibsi_2_reference_data",
                                    "5404579fb3e0d17e8db421f0e82d64ce2432ec03", "2023-05-23"),
    "mirp": _github("oncoray/mirp", "d8a6a7264a4d0ccb1f88cc670e0b6d047235909f", "2025-07-02"),
    "rt_utils": _github("qurit/rt-utils", "026e6645e851dab7cea2c424165ffc62c38d34c6",
                        "2026-08-14"),
    # The commit pydicom 3.0's own data manager downloads from (pydicom/data/urls.json); the
    # files equal those of the PyPI package pydicom-data 1.0.0 (34 MB), the first source.
    "pydicom_data": _github("pydicom/pydicom-data", "39a2eb31815eec435dc26c322c27aec5cfcbddb6",
                            "pydicom-data 1.0.0"),
    "pydicom_wheel": Source(
        "https://files.pythonhosted.org/packages/27/a6/98651e752a49f341aa99aa3f6c8ba361728dfc"
        "064242884355419df63669/pydicom-3.0.1-py3-none-any.whl",
        "PyPI pydicom 3.0.1 wheel (2.4 MB)",
        "db32f78b2641bd7972096b8289111ddab01fb221610de8d7afa835eb938adb41"),
    "pyradiomics_sdist": Source(
        "https://files.pythonhosted.org/packages/32/fa/f537d03512335d6f9ba4e1678679a845bc2e73"
        "c9d9c1ddbe666909e10c14/pyradiomics_bhklab-3.1.4.tar.gz",
        "PyPI pyradiomics-bhklab 3.1.4 source distribution (34 MB)",
        "a44a087efc4ede91b5dfa5cf0de58ea3596bfaec1ef2484f278504b0a8fd5ffb"),
    "repo": Source("", "written for radflow's tests; shipped in tests/testdata_local/"),
    "generated": Source("", "written by `make testdata` from the other files"),
}
RECIPES = ("", "gzip -9 -n", "crlf", "sha256sum")


@dataclass(frozen=True)
class Entry:
    """One row of the registry (see the module docstring)."""

    path: str
    sha256: str
    source: str
    upstream: str
    recipe: str
    upstream_sha256: str
    note: str

    @property
    def url(self) -> str:
        """The download URL of the file, or of the package file it is in ("" if none)."""
        source = SOURCES[self.source]
        return source.url.format(path=quote(self.upstream)) if "{path}" in source.url \
            else source.url

    @property
    def download_sha256(self) -> str:
        """SHA-256 of what is downloaded for this entry (the file, or the upstream file)."""
        return self.upstream_sha256 or self.sha256


def read_registry(path: Path = REGISTRY) -> list[Entry]:
    """The registry's rows."""
    with open(path, encoding="utf-8", newline="") as fh:
        return [Entry(**row) for row in csv.DictReader(fh, delimiter="\t",
                                                       quoting=csv.QUOTE_NONE)]


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256sums(folder: Path, names: Iterable[str]) -> str:
    """``sha256sum`` output for the files ``names`` (paths relative to ``folder``) that exist,
    sorted by path."""
    return "".join(f"{sha256_of((folder / n).read_bytes())}  ./{n}\n" for n in sorted(names)
                   if (folder / n).is_file())


def _sums_members(entries: Sequence[Entry], sums: Entry) -> list[str]:
    """The files a folder's ``SHA256SUMS`` lists: all but itself and PROVENANCE.md."""
    folder = sums.path.rsplit("/", 1)[0] + "/"
    return [e.path[len(folder):] for e in entries if e.path.startswith(folder)
            and e.source != "generated" and not e.path.endswith("/PROVENANCE.md")]


def _is_right(entry: Entry, data: bytes) -> bool:
    """``data`` is the registry's file (a ``gzip -9 -n`` file: or its upstream content)."""
    return sha256_of(data) == entry.sha256 or (
        entry.recipe == "gzip -9 -n" and sha256_of(gzip.decompress(data)) == entry.upstream_sha256)


def check_copy(root: Path, entries: Sequence[Entry] | None = None) -> list[str]:
    """Problems of the reference data at ``root`` (empty: every file is there and right).

    Every registry file must exist with the registry's SHA-256; a ``gzip -9 -n`` file may
    instead have been compressed by another gzip (its content has the upstream SHA-256). Each
    ``SHA256SUMS`` must list its folder's files with their sums, and every file under ``root``
    (but hidden ones) must be in the registry. No network.
    """
    entries = read_registry() if entries is None else entries
    problems = []
    for e in entries:
        path = root / e.path
        if not path.is_file():
            problems.append(f"{e.path}: missing")
        elif e.source == "generated":
            expected = sha256sums(path.parent, _sums_members(entries, e))
            if path.read_text("utf-8", "replace") != expected:
                problems.append(f"{e.path}: does not list its folder's files and sums")
        elif not _is_right(e, path.read_bytes()):
            problems.append(f"{e.path}: SHA-256 {sha256_of(path.read_bytes())[:12]}..., "
                            f"registry {e.sha256[:12]}...")
    known = {e.path for e in entries}
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if path.is_file() and "/".join(parts) not in known and not any(
                part.startswith(".") for part in parts):
            problems.append(f"{'/'.join(parts)}: not in the registry (tests/testdata_registry.tsv)")
    return problems


def _download(url: str, sha256: str, folder: Path) -> Path:
    import pooch  # the test extra (pyproject.toml); only `make testdata` needs it

    name = hashlib.sha256(url.encode()).hexdigest()[:16] + "-" + url.rsplit("/", 1)[-1]
    return Path(pooch.retrieve(url, known_hash=f"sha256:{sha256}", fname=name, path=folder,
                               progressbar=False))


def _members(archive: Path, names: set[str]) -> dict[str, bytes]:
    """The files ``names`` of a wheel (paths as they are) or a source distribution (paths below
    its top folder)."""
    found: dict[str, bytes] = {}
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zf:
            found = {name: zf.read(name) for name in names}
    else:
        with tarfile.open(archive) as tf:
            for info in tf:
                name = info.name.split("/", 1)[-1]
                handle = tf.extractfile(info) if info.isfile() and name in names else None
                if handle is not None:
                    found[name] = handle.read()
    missing = sorted(names - set(found))
    if missing:
        raise KeyError(f"{archive.name} lacks {', '.join(missing)}")
    return found


def _gzip(data: bytes) -> bytes:
    """``gzip -9 -n`` (GNU gzip when installed: the bytes of the reference copy)."""
    gzip_tool = shutil.which("gzip")
    if gzip_tool:
        return subprocess.run([gzip_tool, "-9", "-n", "-c"], input=data, capture_output=True,
                              check=True).stdout
    return gzip.compress(data, compresslevel=9, mtime=0)


def _make(entry: Entry, upstream: bytes) -> bytes:
    """The file from its upstream bytes (see ``recipe``)."""
    if entry.recipe == "gzip -9 -n":
        return _gzip(upstream)
    if entry.recipe == "crlf":
        return upstream.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return upstream


def fetch(root: Path, entries: Sequence[Entry] | None = None, *, jobs: int = 8) -> list[str]:
    """Download every registry file ``root`` lacks (or has with another SHA-256), check it,
    write each folder's ``SHA256SUMS``, then :func:`check_copy`; returns its problems.

    ``entries``: the registry (default) or a part of it (tests)."""
    import pooch

    pooch.get_logger().setLevel("WARNING")
    entries = read_registry() if entries is None else entries
    wanted = [e for e in entries if e.source != "generated" and not (
        (root / e.path).is_file() and _is_right(e, (root / e.path).read_bytes()))]
    with tempfile.TemporaryDirectory(prefix="radflow-testdata-") as tmp:
        cache = Path(tmp)
        upstream: dict[str, bytes] = {}   # entry path -> bytes of package members
        for name in sorted({e.source for e in wanted if SOURCES[e.source].sha256}):
            print(f"testdata: {SOURCES[name].what}", flush=True)
            mine = [e for e in wanted if e.source == name]
            members = _members(_download(SOURCES[name].url, SOURCES[name].sha256, cache),
                               {e.upstream for e in mine})
            upstream.update({e.path: members[e.upstream] for e in mine})

        def one(entry: Entry) -> None:
            if entry.source == "repo":
                data = (LOCAL / entry.path).read_bytes()
            elif entry.path in upstream:
                data = upstream[entry.path]
            else:
                data = _download(entry.url, entry.download_sha256, cache / "files").read_bytes()
            if entry.upstream_sha256 and sha256_of(data) != entry.upstream_sha256:
                raise ValueError(f"{entry.path}: upstream SHA-256 {sha256_of(data)}")
            data = _make(entry, data)
            if not _is_right(entry, data):
                raise ValueError(f"{entry.path}: SHA-256 {sha256_of(data)} != {entry.sha256}")
            target = root / entry.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

        for folder in sorted({e.path.split("/", 1)[0] for e in wanted}):
            n = sum(e.path.split("/", 1)[0] == folder for e in wanted)
            print(f"testdata: {folder}: {n} file(s) to get", flush=True)
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(one, wanted))
    for sums in (e for e in entries if e.source == "generated"):
        target = root / sums.path
        text = sha256sums(target.parent, _sums_members(entries, sums))
        if not target.is_file() or target.read_text("utf-8", "replace") != text:
            target.write_text(text, "utf-8")
    return check_copy(root, entries)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["fetch", "verify"])
    parser.add_argument("root", type=Path, help="the reference data folder (RADFLOW_TESTDATA)")
    args = parser.parse_args(argv)
    problems = fetch(args.root) if args.command == "fetch" else check_copy(args.root)
    for problem in problems:
        print(f"testdata: {problem}", file=sys.stderr)
    print(f"testdata: {args.root}: {'OK' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
