"""The house rules a newcomer relies on, checked by `scripts/test`.

- No production file (`domain/`, `projections/`, `adapters/`) over `MAX_FILE_LINES` lines.
- No function over `MAX_FUNCTION_LINES` lines, in production code or in `tools/`, except the
  builders of a command line's argument parser (a list of options reads best as one list).
- The README, CONTRIBUTING.md, BENCHMARKS.md and `docs/` link only inside the repository: every
  relative link resolves to a file of this checkout, and the only URLs are the local server's
  (`http://127.0.0.1…`, `http://localhost…`), which a reader runs themselves.

Run `uv run python -m tools.house_rules`; it prints each breach and exits 1 if there is one.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path

MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 60
PRODUCTION = ("domain", "projections", "adapters")
CHECKED_FUNCTIONS = (*PRODUCTION, "tools")
DOCUMENTS = ("README.md", "CONTRIBUTING.md", "BENCHMARKS.md")
LOCAL_URL = re.compile(r"^https?://(127\.0\.0\.1|localhost)([:/]|$)")
# [text](target) and <target> autolinks; code spans are removed first.
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|<(https?://[^>\s]+)>")
CODE_SPAN = re.compile(r"`[^`\n]*`")
FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)


def _is_parser_builder(name: str) -> bool:
    return name.endswith("parser") or name.endswith("_parser_of")


def long_files(root: Path) -> Iterator[str]:
    for package in PRODUCTION:
        for path in sorted((root / package).rglob("*.py")):
            lines = path.read_text(encoding="utf-8").count("\n")
            if lines > MAX_FILE_LINES:
                yield f"{path.relative_to(root)}: {lines} lines (at most {MAX_FILE_LINES})"


def long_functions(root: Path) -> Iterator[str]:
    for package in CHECKED_FUNCTIONS:
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES and not _is_parser_builder(node.name):
                    where = f"{path.relative_to(root)}:{node.lineno}"
                    yield f"{where}: {node.name} is {length} lines (at most {MAX_FUNCTION_LINES})"


def documents(root: Path) -> list[Path]:
    found = [root / name for name in DOCUMENTS if (root / name).exists()]
    return found + sorted((root / "docs").rglob("*.md"))


def links_out(root: Path) -> Iterator[str]:
    for document in documents(root):
        text = CODE_SPAN.sub("", FENCE.sub("", document.read_text(encoding="utf-8")))
        for match in MARKDOWN_LINK.finditer(text):
            target = match.group(1) or match.group(2)
            problem = _link_problem(root, document, target)
            if problem:
                yield f"{document.relative_to(root)}: {target} {problem}"
        if "../shared" in document.read_text(encoding="utf-8"):
            yield f"{document.relative_to(root)}: names ../shared, which a clone does not have"


def _link_problem(root: Path, document: Path, target: str) -> str | None:
    if LOCAL_URL.match(target):
        return None
    if re.match(r"^[a-z][a-z0-9+.-]*:", target):
        return "leaves the repository (say the name in words, or copy what is needed into docs/)"
    path = target.split("#", 1)[0]
    if not path:
        return None  # an anchor in the same document
    resolved = (document.parent / path).resolve()
    if not resolved.is_relative_to(root.resolve()):
        return "points outside the repository"
    if not resolved.exists():
        return "points to no file of the repository"
    return None


def breaches(root: Path) -> list[str]:
    return [*long_files(root), *long_functions(root), *links_out(root)]


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    found = breaches(root)
    for breach in found:
        print(breach)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
