"""Compile Morvo's translations (``locale/<lang>/LC_MESSAGES/*.po`` → ``.mo``) with polib.

Django's ``compilemessages`` needs GNU gettext's ``msgfmt``; this does the same job with
the pure-Python polib from the virtualenv, so contributors without gettext can compile.
Extracting strings (``makemessages``) still needs gettext; the ``.mo`` files are
committed, so running the project needs neither.

    python scripts/compile_messages.py            # compile every .po under locale/
    python scripts/compile_messages.py --check    # exit 1 if a .mo is missing or stale
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import polib

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
PLACEHOLDER = re.compile(r"%\([A-Za-z_][A-Za-z0-9_]*\)[sdif]|%[sdif]")

Catalog = dict[tuple[str, str], tuple[str, ...]]


def placeholder_problems(po: polib.POFile) -> list[str]:
    """Translations that drop or invent a ``%(name)s`` placeholder fail at run time."""
    problems = []
    for entry in po.translated_entries():
        expected = sorted(PLACEHOLDER.findall(entry.msgid_plural or entry.msgid))
        translations = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        for translation in translations:
            found = sorted(PLACEHOLDER.findall(translation))
            # Plural forms may leave the count out (Arabic "one" and "two" often do).
            if found != expected and not (entry.msgid_plural and set(found) <= set(expected)):
                problems.append(f"line {entry.linenum}: {entry.msgid!r} has {found}, expected {expected}")
    return problems


def catalog_of(entries: list[polib._BaseEntry]) -> Catalog:
    """(context, msgid) → translations, ignoring the header entry."""
    catalog: Catalog = {}
    for entry in entries:
        if not entry.msgid:
            continue
        if entry.msgid_plural:
            forms = tuple(entry.msgstr_plural[index] for index in sorted(entry.msgstr_plural))
        else:
            forms = (entry.msgstr,)
        catalog[(entry.msgctxt or "", entry.msgid)] = forms
    return catalog


def is_stale(po: polib.POFile, mo_path: Path) -> bool:
    if not mo_path.exists():
        return True
    return catalog_of(po.translated_entries()) != catalog_of(list(polib.mofile(str(mo_path))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compile locale/*/LC_MESSAGES/*.po into .mo files with polib.")
    parser.add_argument("--check", action="store_true", help="only report .mo files that are missing or stale")
    parser.add_argument("--locale-dir", type=Path, default=LOCALE_DIR)
    args = parser.parse_args(argv)

    po_paths = sorted(args.locale_dir.glob("*/LC_MESSAGES/*.po"))
    if not po_paths:
        print(f"no .po files under {args.locale_dir}", file=sys.stderr)
        return 1

    failed = False
    for po_path in po_paths:
        po = polib.pofile(str(po_path))
        mo_path = po_path.with_suffix(".mo")
        problems = placeholder_problems(po)
        for problem in problems:
            print(f"{po_path}: {problem}", file=sys.stderr)
        if problems:
            failed = True
            continue
        if args.check:
            if is_stale(po, mo_path):
                print(f"{mo_path}: missing or stale, run scripts/compile_messages.py", file=sys.stderr)
                failed = True
            continue
        # Like msgfmt (and Django), fuzzy and untranslated entries are left out.
        po.save_as_mofile(str(mo_path))
        total = len([entry for entry in po if not entry.obsolete])
        print(f"{mo_path}: {len(po.translated_entries())} of {total} messages translated")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
