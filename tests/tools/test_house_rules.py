"""The link rule of the house rules: the documents link only inside the repository."""

from __future__ import annotations

from pathlib import Path

from tools.house_rules import breaches, links_out


def checkout(root: Path, readme: str, docs: dict[str, str] | None = None) -> Path:
    (root / "README.md").write_text(readme, encoding="utf-8")
    (root / "docs").mkdir()
    for name, text in (docs or {}).items():
        (root / "docs" / name).write_text(text, encoding="utf-8")
    return root


def test_a_link_to_a_web_site_is_a_breach(tmp_path: Path) -> None:
    root = checkout(tmp_path, "See [uv](https://docs.astral.sh/uv/).\n")

    assert list(links_out(root)) == [
        "README.md: https://docs.astral.sh/uv/ leaves the repository "
        "(say the name in words, or copy what is needed into docs/)"
    ]


def test_a_link_to_the_shared_folder_beside_the_checkout_is_a_breach(tmp_path: Path) -> None:
    (tmp_path / "shared" / "docs").mkdir(parents=True)
    (tmp_path / "shared" / "docs" / "contract.md").write_text("# Contract\n")
    (tmp_path / "repo").mkdir()
    root = checkout(tmp_path / "repo", "The [contract](../shared/docs/contract.md).\n")

    assert list(links_out(root)) == [
        "README.md: ../shared/docs/contract.md points outside the repository",
        "README.md: names ../shared, which a clone does not have",
    ]


def test_a_link_to_a_missing_file_is_a_breach(tmp_path: Path) -> None:
    root = checkout(tmp_path, "", {"rules.md": "Decided in [the code](../domain/gone.py).\n"})

    assert list(links_out(root)) == [
        "docs/rules.md: ../domain/gone.py points to no file of the repository"
    ]


def test_local_links_anchors_code_and_the_local_server_are_fine(tmp_path: Path) -> None:
    root = checkout(
        tmp_path,
        "The [guide](docs/guide.md#paging), [below](#walkthrough), <http://127.0.0.1:8000/schema>,"
        " `[not a link](https://example.org)`.\n\n```sh\ncurl https://example.org\n```\n",
        {"guide.md": "Back to the [README](../README.md).\n"},
    )

    assert list(links_out(root)) == []
    assert breaches(root) == []
