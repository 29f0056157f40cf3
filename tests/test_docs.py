"""Docs that stay true: every relative link in the README and docs/ resolves (anchors too),
every `rewardkit …` command line they show parses against the real CLI, the README's
quickstart runs (on a tiny model), and the README stays a front door."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer

from rewardkit.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
COMMAND = re.compile(r"\s*(\$ )?([A-Z_]+=\S* )*rewardkit\s")  # `rewardkit …`, maybe after VAR=value
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", text))


def anchors(page: Path) -> set[str]:
    prose = FENCE.sub("", page.read_text())
    return {slug(line.lstrip("#")) for line in prose.splitlines() if line.startswith("#")}


def links(page: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", page.read_text()))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    broken = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target} (no heading with that anchor)")
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"


def command_lines(page: Path) -> list[str]:
    """Every `rewardkit …` line of the page's shell blocks, continuations joined, comments dropped."""
    lines = []
    for language, body in FENCE.findall(page.read_text()):
        if language not in ("", "bash", "sh", "shell", "console"):
            continue
        for line in body.replace("\\\n", " ").splitlines():
            if not COMMAND.match(line):
                continue
            words = shlex.split(line.strip().removeprefix("$ "), comments=True)
            while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):  # VAR=… rewardkit …
                words = words[1:]
            if words[:1] == ["rewardkit"]:
                lines.append(words)
    return lines


def parse(words: list[str]) -> None:
    """Parse (never run) a command line: click resolves each sub-command and checks every option,
    its value's type and the required arguments."""
    command = typer.main.get_command(app)
    args, name = words[1:], "rewardkit"
    while True:
        context = command.make_context(name, list(args))
        if not hasattr(command, "resolve_command"):  # a command, not a group of them
            return
        rest = [*getattr(context, "_protected_args", []), *context.args]
        name, command, args = command.resolve_command(context, rest)


def test_the_docs_show_commands():
    assert sum(len(command_lines(page)) for page in PAGES) >= 25  # the check below is not vacuous


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_line_shown_parses(page):
    failures = []
    for words in command_lines(page):
        try:
            parse(words)
        except typer.TyperException as exc:  # click's errors, as typer vendors them
            failures.append(f"{shlex.join(words)}\n    → {exc.format_message()}")
    assert not failures, f"{page.relative_to(ROOT)}:\n" + "\n".join(failures)


def test_a_wrong_flag_is_caught_by_the_parser():
    with pytest.raises(typer.TyperException, match="no-such-flag"):
        parse(["rewardkit", "eval", "--model", "m", "--data", "d.jsonl", "--no-such-flag"])
    with pytest.raises(typer.TyperException):
        parse(["rewardkit", "no-such-command"])


def quickstart() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return FENCE.search(section).group(2)


def test_the_readme_quickstart_runs(tiny_model_dir, tmp_path, monkeypatch):
    """The quickstart as printed, with the tiny model for the built-in one and the server not
    started (its last line builds the app only)."""
    code = quickstart().replace('"smollm2-135m"', repr(str(tiny_model_dir)))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md quickstart", "exec"), namespace)
    assert (tmp_path / "runs" / "quick-bt" / "rewardkit.json").is_file()
    assert namespace["bt"].kind == "bradley_terry" and namespace["app"].title
    assert len(namespace["bt"].reward(["What is 2+2?"], ["4"])) == 1


def test_the_readme_is_a_front_door():
    text = (ROOT / "README.md").read_text()
    lines = text.splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; guides belong in docs/"
    first_two_screens = "\n".join(lines[:130])
    for must in ("## Install", "## The two commands", "## Quickstart", "## Results", "scripts/demo.sh", "scripts/test.sh"):
        assert must in first_two_screens, must
    assert "## Results" in text and "95%" in text.split("## Results", 1)[1]


def test_the_layout_page_names_every_module_and_only_modules_that_exist():
    text = (ROOT / "docs" / "layout.md").read_text()
    tree = FENCE.search(text).group(2)
    named = set(re.findall(r"[\w]+\.py", tree))
    package = ROOT / "rewardkit"
    files = {p.name for p in package.rglob("*.py")} | {p.name for p in (ROOT / "bench").glob("*.py")
                                                     if p.name in ("common.py", "quality_study.py", "gpu_check.py")}
    scripts = {p.name for p in (ROOT / "scripts").glob("*.py")} | {"tiny.py"}
    missing = sorted(p.relative_to(ROOT).as_posix() for p in package.rglob("*.py")
                     if p.name not in named and p.name != "__init__.py")
    assert not missing, f"docs/layout.md does not name {missing}"
    assert not named - files - scripts, f"docs/layout.md names files that do not exist: {sorted(named - files - scripts)}"
    packages = {p.parent.name for p in package.rglob("__init__.py") if p.parent != package}
    assert all(f"{name}/" in tree for name in packages), sorted(n for n in packages if f"{n}/" not in tree)
