"""README.md tells the truth: Space front matter, files it links to, CLI commands and scripts it names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text(encoding="utf-8")


def front_matter(text: str) -> dict[str, str]:
    """The ``key: value`` lines between the leading ``---`` fences (top-level scalars only)."""
    match = re.match(r"---\n(.*?)\n---\n", text, re.DOTALL)
    assert match, "README.md must start with Hugging Face Space front matter between --- lines"
    pairs = (line.split(":", 1) for line in match.group(1).splitlines() if re.match(r"^\w[\w_]*:", line))
    return {key.strip(): value.strip().strip('"') for key, value in pairs}


def test_space_front_matter(readme: str) -> None:
    meta = front_matter(readme)
    assert meta["sdk"] == "gradio"
    assert re.fullmatch(r"\d+\.\d+\.\d+", meta["sdk_version"])
    assert (ROOT / meta["app_file"]).is_file()
    assert meta["python_version"] == "3.11"
    assert meta.get("title")


def test_linked_files_exist(readme: str) -> None:
    links = re.findall(r"\]\(([^)#\s]+)\)", readme)
    local = [link for link in links if not re.match(r"^[a-z]+://", link)]
    assert "docs/screenshot.png" in local
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing, f"README links to missing files: {missing}"


def test_cli_commands_exist(readme: str) -> None:
    from ganfit_core.__main__ import COMMANDS

    used = set(re.findall(r"python -m ganfit_core (\w+)", readme))
    assert {"assets", "detect", "fit"} <= used
    assert used <= set(COMMANDS), f"README uses unknown commands: {used - set(COMMANDS)}"


def test_scripts_named_in_readme_exist(readme: str) -> None:
    scripts = set(re.findall(r"(?:python|bash) ((?:bench|examples|\.ci)/[\w./-]+)", readme))
    assert scripts, "README should name the CI script and the benchmarks"
    missing = sorted(s for s in scripts if not (ROOT / s).is_file())
    assert not missing, f"README names missing scripts: {missing}"
