"""Every repository path the documentation names exists.

Files move (the composition layer left ``kordon/``, the test kit left ``tests/``, test files
went into one folder per role) and prose does not follow on its own: a reader sent to a file
that is gone stops trusting the rest. This reads README.md, docs/*.md, the test and CI
scripts, and the docstrings and comments of every ``*.py`` file, finds what names a path under
one of the repository's top-level folders (``tests/collector/test_spool.py``,
``testkit/chaos/``, ``docs/storage.md``, ``deploy/mosquitto.conf``, ...), and fails naming
each one that does not exist, with the file and line that names it. Also checked:

- ``python -m MODULE`` commands of the repository's own packages (``python -m bench.ingest``);
- ``path.py::test_name``: the test function exists in that file;
- relative Markdown links (``[storage](storage.md#field-types-the-type-rule)``), their target
  and, where one is given, the heading it points at.

What is not a path is told apart by shape, not by a list of exceptions: MQTT topics
(``kordon/v1/...``) and URL paths (``/api/v1/...``, ``/var/lib/kordon/...``) start with a
version segment or follow a ``/``. Placeholders are allowed where a reader sees they are one:
``*`` globs, ``<kind>``, ``{site}``, an upper-case ``NAME``, and a trailing ``...`` (the
folder must exist and the rest must match something).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The folders a repository path starts with (every top-level folder that is not hidden).
TOPS = (
    "kordon", "composition", "collector", "alerts", "api", "simulators", "bridges",
    "dashboards", "tests", "testkit", "bench", "docs", "deploy", "scripts", ".ci",
)
SKIP_DIRS = {".venv", ".git", "build", "dist", "__pycache__", ".pytest_cache", ".ruff_cache"}

# Paths that are named on purpose but are not in the repository.
NOT_IN_REPOSITORY = {
    "tests/artifacts": "written by the browser test (ignored by git)",
    "docs/nut-names.txt": "Network UPS Tools' own documentation, in networkupstools/nut",
}

_PATH = re.compile(
    r"(?<![\w./~$@:%-])"  # not the tail of a longer path, URL or topic
    r"(?:" + "|".join(re.escape(top) for top in TOPS) + r")"
    r"/[\w.*{}<>\[\]/-]*(?:::\w+)?"
)
_VERSION_SEGMENT = re.compile(r"^(?:kordon|api)/v\d+(?:/|$)")  # MQTT topics, API URLs
_MODULE = re.compile(r"python3? -m ([A-Za-z_][\w.]*)")
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_PLACEHOLDER = re.compile(r"<[^>/]*>|\{[^}/]*\}|\[[^\]/]*\]")
_UPPER = re.compile(r"[A-Z][A-Z0-9_]+(?=\.\w+$|$)")  # a whole segment: bench/NAME.py
_REAL_UPPER = {"README", "LICENSE", "CHANGELOG"}


@dataclass(frozen=True, slots=True)
class Mention:
    source: str  # file and line, for the failure message
    text: str


def _files(pattern: str) -> Iterator[Path]:
    for path in sorted(ROOT.glob(pattern)):
        if not SKIP_DIRS.intersection(path.relative_to(ROOT).parts) and path.is_file():
            yield path


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *_files("docs/*.md")]


def script_files() -> list[Path]:
    return [*_files("scripts/*"), *_files(".ci/*")]


def python_files() -> list[Path]:
    return [p for p in _files("**/*.py") if not p.relative_to(ROOT).parts[0].endswith(".egg-info")]


def prose_of_python(source: str) -> Iterator[tuple[int, str]]:
    """Comments and docstrings of a module, each with the line it starts on."""
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                value = body[0].value.value
                if isinstance(value, str):
                    yield body[0].lineno, value


def texts() -> Iterator[tuple[Path, int, str]]:
    """(file, first line, text) of everything a reader reads as documentation."""
    for path in (*markdown_files(), *script_files()):
        yield path, 1, path.read_text(encoding="utf-8")
    for path in python_files():
        for line, text in prose_of_python(path.read_text(encoding="utf-8")):
            yield path, line, text


def mentions(pattern: re.Pattern[str], path: Path, first: int, text: str) -> Iterator[Mention]:
    for match in pattern.finditer(text):
        line = first + text.count("\n", 0, match.start())
        yield Mention(f"{path.relative_to(ROOT)}:{line}", match.group(match.lastindex or 0))


def clean(raw: str) -> str:
    """A mention without the punctuation of the sentence around it."""
    text = raw.split("::")[0]
    while text and text[-1] in ".,:;)]}'\"`" and not text.endswith("..."):
        text = text[:-1]
    return text


def as_glob(text: str) -> str:
    """``alerts/notify/<kind>.py`` -> ``alerts/notify/*.py``; ``collector/...`` ->
    ``collector/*``; an upper-case word (``bench/NAME.py``) is a placeholder too."""
    text = _PLACEHOLDER.sub("*", text.removesuffix("..."))
    segments = [
        _UPPER.sub("*", segment, count=1)
        if _UPPER.fullmatch(segment.split(".")[0]) and segment.split(".")[0] not in _REAL_UPPER
        else segment
        for segment in text.split("/")
    ]
    return "/".join(segments).rstrip("/") or text


def exists(text: str) -> bool:
    for known in NOT_IN_REPOSITORY:
        if text == known or text.startswith(known + "/"):
            return True
    pattern = as_glob(text)
    if any(c in pattern for c in "*?"):
        return any(True for _ in ROOT.glob(pattern))
    return (ROOT / pattern).exists()


def problem_with_path(raw: str) -> str | None:
    if _VERSION_SEGMENT.match(raw):
        return None
    text = clean(raw)
    if text.rstrip("/") in TOPS or "/" not in text:
        return None
    if not exists(text):
        return f"{text}: no such file or folder"
    if "::" in raw:
        name = raw.split("::")[1]
        file = ROOT / text
        if file.suffix == ".py" and not re.search(rf"^\s*(?:async )?def {name}\b", file.read_text(
                encoding="utf-8"), re.MULTILINE):
            return f"{raw}: no test {name} in {text}"
    return None


def problem_with_module(module: str) -> str | None:
    top = module.split(".")[0]
    if top not in TOPS:
        return None
    base = ROOT.joinpath(*module.split("."))
    if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
        return None
    return f"python -m {module}: no such module"


def github_anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (heading := re.match(r"#{1,6} (.+)", line)):
            anchor = github_anchor(heading.group(1))
            count = seen.get(anchor, 0)
            seen[anchor] = count + 1
            found.add(anchor if count == 0 else f"{anchor}-{count}")
    return found


def problem_with_link(document: Path, target: str) -> str | None:
    if re.match(r"[a-z]+:", target) or target == "#":
        return None  # http:, https:, mailto:
    file, _, anchor = target.partition("#")
    resolved = (document.parent / file).resolve() if file else document
    if not resolved.exists():
        return f"link {target}: no such file"
    if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
        return f"link {target}: no heading with that anchor in {resolved.relative_to(ROOT)}"
    return None


def path_problems() -> tuple[int, list[str]]:
    checked = 0
    problems = []
    for path, first, text in texts():
        for mention in mentions(_PATH, path, first, text):
            checked += 1
            if problem := problem_with_path(mention.text):
                problems.append(f"{mention.source}: {problem}")
        for mention in mentions(_MODULE, path, first, text):
            checked += 1
            if problem := problem_with_module(mention.text):
                problems.append(f"{mention.source}: {problem}")
        if path.suffix == ".md":
            for mention in mentions(_LINK, path, first, text):
                checked += 1
                if problem := problem_with_link(path, mention.text):
                    problems.append(f"{mention.source}: {problem}")
    return checked, problems


def test_every_path_the_documentation_names_exists() -> None:
    checked, problems = path_problems()
    assert checked > 300, f"only {checked} references found: is the pattern still right?"
    assert not problems, f"{len(problems)} of {checked} references are broken:\n" + "\n".join(
        problems
    )


@pytest.mark.parametrize(
    ("text", "broken"),
    [
        ("see `tests/test_layering.py` for the rule", True),  # moved to tests/kernel/
        ("the old harness, tests/harness/mqtt.py.", True),
        ("kordon/app/cli.py wires the roles", True),
        ("`tests/collector/test_nothing_here.py`", True),
        ("`tests/collector/test_sessions.py::test_no_such_test`", True),
        ("run `python -m kordon.dashboards.build`", True),
        ("run `python -m dashboards.build`", False),
        ("`tests/kernel/test_layering.py` keeps the floors", False),
        ("`tests/storage/test_lineprotocol*.py`", False),
        ("one module per receiver, `alerts/notify/<kind>.py`", False),
        ("`bench/NAME.py`", False),
        ("`docs/NAME_OF.md`", False),
        ("`bench/README.md`", True),
        ("every module of collector/... is small", False),
        ("`testkit/chaos/`, then docs/storage.md.", False),
        ("topic `kordon/v1/{site}/ups/{device}/telemetry`", False),
        ("`GET /api/v1/devices` and sqlite:///var/lib/kordon/telemetry.db", False),
        ("Grafana's `/api/health`, https://example.org/tests/x.py", False),
    ],
)
def test_the_checker_tells_broken_from_sound(text: str, broken: bool) -> None:
    found = [
        problem
        for pattern, check in ((_PATH, problem_with_path), (_MODULE, problem_with_module))
        for mention in mentions(pattern, ROOT / "README.md", 1, text)
        if (problem := check(mention.text))
    ]
    assert bool(found) == broken, found


def test_the_checker_reads_links_and_their_anchors() -> None:
    readme = ROOT / "README.md"
    assert problem_with_link(readme, "docs/storage.md#field-types-the-type-rule") is None
    assert problem_with_link(readme, "docs/storage.md#no-such-heading")
    assert problem_with_link(readme, "docs/no-such-page.md")
    assert problem_with_link(readme, "https://networkupstools.org") is None
    assert github_anchor("Field types: the type rule") == "field-types-the-type-rule"
    library = "the-library-simulatorsscenarios"
    assert github_anchor("The library (`simulators/scenarios/`)") == library
