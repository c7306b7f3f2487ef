"""The documentation cannot rot: the site builds strictly, and every command it names exists.

The site is ``docs/`` built by MkDocs from ``mkdocs.yml``; ``make docs`` (part of
``make test``) builds it with ``--strict``. These tests run the real ``mkdocs`` and the
real ``ctloop`` command.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CTLOOP = str(Path(sys.executable).parent / "ctloop")


def build_site(project: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` of the project folder ``project`` into ``site``."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    done = build_site(ROOT, tmp_path / "site")
    assert done.returncode == 0, done.stderr
    for page in ("index.html", "serving/index.html", "cli/index.html", "benchmarks/index.html"):
        assert (tmp_path / "site" / page).is_file(), page
    serving = (tmp_path / "site" / "serving" / "index.html").read_text(encoding="utf-8")
    assert "Protocol extensions supported" in serving
    benchmarks = (tmp_path / "site" / "benchmarks" / "index.html").read_text(encoding="utf-8")
    assert "Pipeline overhead" in benchmarks  # benchmarks/README.md, included whole


def test_a_broken_link_or_anchor_fails_the_strict_build(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(DOCS, project / "docs")
    shutil.copy(ROOT / "mkdocs.yml", project / "mkdocs.yml")
    (project / "benchmarks").mkdir()
    shutil.copy(ROOT / "benchmarks" / "README.md", project / "benchmarks" / "README.md")
    with (project / "docs" / "concepts.md").open("a", encoding="utf-8") as page:
        page.write(
            "\nSee [the old page](no-such-page.md) and [caching](pipelines.md#no-such-part).\n"
        )

    done = build_site(project, tmp_path / "site")

    assert done.returncode != 0
    assert "no-such-page.md" in done.stderr
    assert "#no-such-part" in done.stderr


# -- commands named in the docs ------------------------------------------------------------

_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_COMMAND = re.compile(r"^(?:\S*/)?ctloop\s+([a-z][a-z-]*)(?:\s+([a-z][a-z-]*|-\S*)(?=\s|$))?")


def named_commands(markdown: str) -> set[tuple[str, str | None]]:
    """``(command, word after it)`` for every ``ctloop …`` command line or code span."""
    found: set[tuple[str, str | None]] = set()
    candidates = [match.group(1) for match in _INLINE_CODE.finditer(_FENCE.sub("", markdown))]
    for fence in _FENCE.finditer(markdown):
        if fence.group(1) in ("bash", "console", "sh", ""):
            candidates += fence.group(2).splitlines()
    for text in candidates:
        match = _COMMAND.match(text.strip().removeprefix("$ "))
        if match:
            found.add((match.group(1), match.group(2)))
    return found


@cache
def subcommands(*words: str) -> frozenset[str]:
    """The commands that ``ctloop WORDS --help`` lists (empty for a plain command)."""
    done = subprocess.run(
        [CTLOOP, *words, "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    names: set[str] = set()
    listing = False
    for line in done.stdout.splitlines():
        if re.match(r"^[\s│╭─]*Commands\b", line):
            listing = True
            continue
        if listing:
            match = re.match(r"^[\s│]*([a-z][a-z-]*)\s{2,}\S", line)
            if match:
                names.add(match.group(1))
            elif re.match(r"^\S", line):  # the next section
                listing = False
    return frozenset(names)


def test_named_commands_reads_code_not_prose() -> None:
    markdown = (
        "Run `ctloop runs show RUN`, then `from ctloop import step` and ctloop runs fast.\n"
        "```bash\nctloop serve flights@champion --port 8080\n$ ctloop models card flights\n"
        ".venv/bin/ctloop data stats f.csv\n```\n"
        "```python\nctloop = 1\n```\n"
    )
    assert named_commands(markdown) == {
        ("runs", "show"),
        ("serve", None),
        ("models", "card"),
        ("data", "stats"),
    }


def test_every_command_the_docs_name_exists() -> None:
    top = subcommands()
    assert {"run", "serve", "models", "monitor"} <= top  # the help listing was read
    pages = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    reference = named_commands((DOCS / "cli.md").read_text(encoding="utf-8"))
    assert len(reference) >= 40, "the CLI reference should name every command"
    missing = []
    for page in pages:
        for command, word in sorted(named_commands(page.read_text(encoding="utf-8")), key=str):
            group = subcommands(command) if command in top else frozenset()
            if command not in top:
                missing.append(f"{page.name}: ctloop {command}")
            elif group and word is not None and not word.startswith("-") and word not in group:
                missing.append(f"{page.name}: ctloop {command} {word}")
    assert not missing, "commands named in the docs that `ctloop --help` lacks: " + ", ".join(
        missing
    )


# -- the README ----------------------------------------------------------------------------

_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def test_every_relative_link_in_the_readme_points_to_a_file() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = [match.group(1) for match in _LINK.finditer(readme)]
    relative = [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:|^#", t)]
    assert len(relative) >= 10, "the README links to the docs pages"
    broken = [t for t in relative if not (ROOT / t.split("#")[0]).exists()]
    assert not broken, f"README.md links to files that do not exist: {broken}"


def marked_block(path: Path, name: str) -> str:
    """The fenced block between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``."""
    text = path.read_text(encoding="utf-8")
    marked = re.search(rf"<!-- {name}:start -->\n```\w*\n(.*?)```\n<!-- {name}:end -->", text, re.S)
    assert marked, f"{path.name} has no {name} block between <!-- {name}:start/end --> markers"
    return marked.group(1)


def test_the_readme_quickstart_runs_as_written(tmp_path: Path) -> None:
    code = marked_block(ROOT / "README.md", "quickstart")
    commands = marked_block(ROOT / "README.md", "quickstart-commands")
    assert code == marked_block(DOCS / "getting-started.md", "quickstart")
    assert commands == marked_block(DOCS / "getting-started.md", "quickstart-commands")
    (tmp_path / "quickstart.py").write_text(code, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    programs = {"python": sys.executable, "ctloop": CTLOOP}

    outputs = []
    for line in commands.splitlines():
        words = line.split("#")[0].split()
        done = subprocess.run(
            [programs.get(words[0], words[0]), *words[1:]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, f"{line.strip()}\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout)

    assert outputs[0].split()[-1] == "succeeded"  # python quickstart.py
    assert (tmp_path / ".ctloop" / "metadata.db").is_file()  # state under .ctloop/ of the folder
    listed = subprocess.run(
        [CTLOOP, "runs", "list", "--json"], cwd=tmp_path, env=env, capture_output=True, check=True
    )
    runs = sorted(json.loads(listed.stdout), key=lambda run: run["started_at"])
    assert [run["status"] for run in runs] == ["succeeded"] * 3
    assert [run["parameters"] for run in runs] == [{"C": 1.0}, {"C": 1.0}, {"C": 0.5}]

    def steps(run: dict[str, Any]) -> dict[str, str]:
        shown = subprocess.run(
            [CTLOOP, "runs", "show", run["id"], "--json"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            check=True,
        )
        return {e["step"]: e["status"] for e in json.loads(shown.stdout)["executions"]}

    assert steps(runs[0]) == {"load": "succeeded", "train": "succeeded"}
    assert steps(runs[1]) == {"load": "cached", "train": "cached"}  # run again: cache hits
    assert steps(runs[2]) == {"load": "cached", "train": "succeeded"}  # a new parameter
