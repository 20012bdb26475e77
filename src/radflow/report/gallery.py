"""The QC gallery: one picture per pair, written as PNG files named by the pair key.

Pairs on one image share one read of the image. A pair that is not ``ok``, or whose files cannot
be read, gets a card without a picture that says why (never a failure of the report). A pair with
RECIST landmarks (``merge/landmarks.tsv``, :func:`read_landmarks`) gets the RECIST panel.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd
import SimpleITK as sitk

from radflow.errors import InputFileError
from radflow.io.atomic import write_bytes
from radflow.io.nifti import read_image
from radflow.records import PairRecord, Status, read_pair_record
from radflow.records.side import Landmark
from radflow.report.qc import PairPicture, pair_picture_pngs
from radflow.report.settings import ReportSettings

logger = logging.getLogger(__name__)

#: Folders of the pictures inside the report folder (relative links of the page).
QC_DIR = "qc"
THUMB_DIR = "assets/thumbs"


def read_pair_records(paths: Iterable[str]) -> list[PairRecord]:
    """The pair stage's records, sorted by ``pair_id``."""
    return sorted((read_pair_record(p) for p in paths), key=lambda r: r.pair_id)


def read_landmarks(path: str) -> dict[str, tuple[Landmark, ...]]:
    """Pair key -> its two-point landmarks (RECIST axes, 3-D diameter) in ``merge/landmarks.tsv``
    ("" or a table without rows, as when the families are off: none).

    Raises
    ------
    InputFileError
        The table is unreadable or lacks its columns (``bad-landmarks-table``).
    """
    if not path:
        return {}
    try:
        table = pd.read_csv(path, sep="\t", dtype={"pair_id": str})
        ends = table[["x1", "y1", "z1", "x2", "y2", "z2"]].to_numpy(dtype=float)
        out: dict[str, list[Landmark]] = {}
        for row, (x1, y1, z1, x2, y2, z2) in zip(table.itertuples(), ends, strict=True):
            k = None if pd.isna(row.slice_index) else int(row.slice_index)
            out.setdefault(str(row.pair_id), []).append(
                Landmark(str(row.landmark), k, ((x1, y1, z1), (x2, y2, z2))))
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise InputFileError(f"{Path(path).name}: cannot read the landmarks table ({exc})",
                             reason="bad-landmarks-table") from exc
    return {pair: tuple(marks) for pair, marks in out.items()}


def _is_ok(status: str) -> bool:
    try:
        return Status.parse(status).is_ok
    except ValueError:  # a status this version does not know: not ok
        return False


def write_gallery(records: list[PairRecord], modality_of: Mapping[str, str],
                  settings: ReportSettings, report_dir: str | Path,
                  landmarks: Mapping[str, Sequence[Landmark]] | None = None
                  ) -> list[PairPicture]:
    """Write ``qc/<pair_id>.png`` and ``assets/thumbs/<pair_id>.png`` of every ``ok`` pair.

    Parameters
    ----------
    records
        The pair records (:func:`read_pair_records`), in page order.
    modality_of
        Image series key -> modality (``CT``, ``MR``, ``PT``, ...; crawl/series.tsv).
    settings
        The report settings (planes, margin, windows).
    report_dir
        The report folder.
    landmarks
        Pair key -> its landmarks (:func:`read_landmarks`); a pair with a RECIST long axis gets
        the RECIST panel, a pair without has none.

    Returns
    -------
    list of PairPicture
        One per record, in order; ``picture`` empty (and ``note`` saying why) for pairs without
        a picture.
    """
    out = Path(report_dir)
    cards: list[PairPicture] = []
    cached: tuple[str, sitk.Image] | None = None  # (path, image): the pairs of one image in a row
    for rec in sorted(records, key=lambda r: (r.image or "", r.pair_id)):
        modality = modality_of.get(rec.image_key or "", "")
        base = {"pair_id": rec.pair_id, "case_id": rec.case_id or "", "roi": rec.roi or "",
                "label": "" if rec.label is None else str(rec.label), "status": rec.status,
                "modality": modality}
        if not _is_ok(rec.status) or not rec.image or not rec.mask:
            cards.append(PairPicture(**base, note=f"no picture: the pair is {rec.status}"))
            continue
        try:
            if cached is None or cached[0] != rec.image:
                cached = (rec.image, read_image(rec.image, name="the image"))
            full, thumb, window = pair_picture_pngs(
                rec.image, rec.mask, int(rec.label or 1), modality,
                f"{rec.pair_id}  ·  {rec.roi or ''}  ·  {modality}", settings,
                image=cached[1], landmarks=(landmarks or {}).get(rec.pair_id, ()))
        except InputFileError as exc:
            logger.warning("report: pair %s: no picture (%s)", rec.pair_id, exc.reason)
            cards.append(PairPicture(**base, note=f"no picture: {exc.reason}"))
            continue
        picture, thumbnail = f"{QC_DIR}/{rec.pair_id}.png", f"{THUMB_DIR}/{rec.pair_id}.png"
        write_bytes(out / picture, full)
        write_bytes(out / thumbnail, thumb)
        cards.append(PairPicture(**base, picture=picture, thumbnail=thumbnail,
                                 window=window.name))
    logger.info("report: %d QC pictures of %d pairs", sum(bool(c.picture) for c in cards),
                len(cards))
    return sorted(cards, key=lambda c: c.pair_id)


__all__ = ["QC_DIR", "THUMB_DIR", "read_landmarks", "read_pair_records", "write_gallery"]
