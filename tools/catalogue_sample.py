"""scripts/catalogue_sample: regenerate the catalogue sample ordo ships, from a full download.

  scripts/catalogue_sample FULL_DIR [--date 2022-06-02] [--out adapters/catalogue/sample]

Keeps, from each of the five official BDPM files, the lines of a few medicines (the packs
ordo's demo and tests use, narcotics with and without fractioning, tramadol and codeine
products, a paracetamol) and of the other members of their generic groups, byte for byte:
same encoding (Windows-1252), same line ends, same quirks. Writes the sample's README with
the attribution the Licence Ouverte asks for.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from datetime import date
from pathlib import Path

from adapters.catalogue.bdpm import ENCODING, FILES, GENERICS, fields_of
from adapters.catalogue.importer import check_files, files_date

ROOT = Path(__file__).resolve().parent.parent
# The medicines (CIS) the sample is built around; their generic groups come along.
SEEDS = {
    "61227030": "SKENAN L.P. 10 mg (morphine; narcotic, 28 days): CIP13 3400933323523",
    "64288864": "ACTISKENAN 10 mg (morphine; narcotic)",
    "61200108": "OXYCONTIN LP 10 mg (oxycodone; narcotic)",
    "60914025": "DUROGESIC 25 µg/h (fentanyl; narcotic, fractions of 14 days)",
    "68945058": "SUBUTEX 8 mg (buprenorphine; secure, fractions of 7 days, not a narcotic)",
    "63435884": "TOPALGIC 50 mg (tramadol; assimilated): CIP13 3400933911881",
    "60904643": "CODOLIPRANE 500 mg/30 mg (paracetamol and codeine; assimilated)",
    "67707794": "CLAMOXYL 500 mg (amoxicillin, princeps): CIP13 3400931587538",
    "66082724": "AMOXICILLINE ARROW 500 mg (generic of Clamoxyl): CIP13 3400935765680",
    "60234100": "DOLIPRANE 1000 mg, comprimé (paracetamol): CIP13 3400935955838",
    "69309629": "DOLIPRANE 1000 mg, gélule (paracetamol)",
    "68588503": "LEVOTHYROX 25 µg (levothyroxine; narrow therapeutic margin): B/30 3400930065556, "
    "B/90 3400930065570",
    "60782303": "LOVENOX 4 000 UI (enoxaparin; biological, no generic group): CIP13 3400936468665",
    "61189163": "INHIXA 4 000 UI (enoxaparin; biosimilar of Lovenox): CIP13 3400930129753",
    "64558256": "MINIDRIL (contraceptive): 1 cycle 3400931823902, 3 cycles 3400931824091",
    "66477582": "DOLIPRANE 2,4 % oral suspension, a 100 ml bottle (no unit count): 3400934615467",
    "60080232": "VENOFER 20 mg/mL (iron sucrose; reserved to hospital use): CIP13 3400957128340",
    "63179285": "STILNOX 10 mg (zolpidem; chevauchement interdit): B/7 3400933903619, "
    "B/14 3400934658570",
}
GROUP_MEMBERS_KEPT = 4  # of each seed's generic group, besides the seed (the first by order)


def cis_of(name: str, raw: bytes) -> str:
    fields = fields_of(raw.rstrip(b"\r\n").decode(ENCODING, errors="replace"))
    if not fields:
        return ""
    return fields[-3] if name == GENERICS and len(fields) >= 5 else fields[0]


def chosen_medicines(full: Path) -> set[str]:
    members: dict[str, list[tuple[int, str]]] = defaultdict(list)
    groups_of: dict[str, set[str]] = defaultdict(set)
    for raw in (full / GENERICS).read_bytes().splitlines():
        fields = fields_of(raw.decode(ENCODING, errors="replace"))
        if len(fields) < 5:
            continue
        group, cis, order = fields[0], fields[-3], int(fields[-1])
        members[group].append((order, cis))
        groups_of[cis].add(group)
    chosen = set(SEEDS)
    for seed in SEEDS:
        for group in groups_of[seed]:
            others = [cis for _, cis in sorted(members[group]) if cis != seed]
            chosen.update(others[:GROUP_MEMBERS_KEPT])
    return chosen


def write_subset(full: Path, out: Path, medicines: set[str]) -> dict[str, int]:
    kept: dict[str, int] = {}
    for name in FILES:
        lines = (full / name).read_bytes().splitlines(keepends=True)
        subset = [raw for raw in lines if cis_of(name, raw) in medicines]
        (out / name).write_bytes(b"".join(subset))
        kept[name] = len(subset)
    return kept


def write_readme(out: Path, snapshot: date, kept: dict[str, int]) -> None:
    counts = "\n".join(f"| `{name}` | {count} |" for name, count in kept.items())
    seeds = "\n".join(f"- {text}" for text in SEEDS.values())
    (out / "README.md").write_text(
        f"""# Medicines catalogue sample (BDPM, {snapshot:%-d %B %Y})

Source : Base de données publique des médicaments (https://base-donnees-publique.medicaments.gouv.fr),
snapshot of {snapshot.isoformat()}, reused under the Licence Ouverte / Open Licence (Etalab).

A small subset of the five official files, lines kept byte for byte (Windows-1252,
tab-separated, no header, the files' own line ends), so that `scripts/demo` and fresh clones have
real products and visible rules without downloading anything:

```sh
uv run ordo catalogue import adapters/catalogue/sample --date {snapshot.isoformat()}
```

The medicines it is built around, with up to {GROUP_MEMBERS_KEPT} other members of each one's
generic group:

{seeds}

| file | lines |
| --- | --- |
{counts}

Regenerate it from a full download with
`scripts/catalogue_sample FULL_DIR --date YYYY-MM-DD` (the date of the download).
"""
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="scripts/catalogue_sample",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("full", type=Path, help="a directory with the five official files")
    parser.add_argument(
        "--date", type=date.fromisoformat, help="default: the newest file's modification day"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "adapters/catalogue/sample")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    kept = write_subset(args.full, args.out, chosen_medicines(args.full))
    write_readme(args.out, args.date or files_date(check_files(args.full)), kept)
    for name, count in kept.items():
        print(f"{name}: {count} lines")


if __name__ == "__main__":
    main()
