"""The docs cannot drift from the code: README.md and docs/ are checked against what they describe.

Pure: these tests read files and import the code, nothing else. The reference tables the code can
say itself are written by .ci/reference_docs.py; the first test fails while a page differs from
what it writes. The rest hold what is written by hand: every setting, error code, metric, command,
readiness reason, dead-letter header and alert on its page, every relative link and anchor
resolving, every alert's runbook_url leading to its section, a short README that keeps CI's test
command, and no development history outside docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import get_args

import pytest
from prometheus_client.metrics import MetricWrapperBase
from pydantic_settings import BaseSettings

from app.errors import RetryableError, SyncError
from app.events import RejectReason
from app.metrics import Metrics, dead_letter_reasons
from app.readiness import NotReadyReason
from app.settings import SECRETS_DIR_VARIABLE, Settings
from tests.monitoring_queries import alert_rules

ROOT = Path(__file__).parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
RUNBOOK = DOCS / "operations" / "runbook.md"
RUNBOOK_PATH = "docs/operations/runbook.md"
README_MAX_LINES = 250
HISTORY_ALLOWED = {DOCS / "benchmarks.md"}
"""Where issue numbers, commit hashes and before/after figures may stand, with their dates."""


def pages() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def page(relative: str) -> str:
    return (DOCS / relative).read_text()


@functools.cache
def generator() -> ModuleType:
    """.ci/reference_docs.py, the writer of the generated parts (`.ci` is no package)."""
    spec = importlib.util.spec_from_file_location("reference_docs", ROOT / ".ci/reference_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- reading Markdown ---------------------------------------------------------------------


def prose(text: str) -> str:
    """The text without fenced code blocks (a `#` or a `[x](y)` there is no heading or link)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)


def headings(text: str) -> list[str]:
    return re.findall(r"^#{1,6} (.+?)\s*$", prose(text), flags=re.MULTILINE)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped (`-` and `_` kept),
    spaces as hyphens. GitLab's agrees while a slug has no two hyphens in a row."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(h) for h in headings(path.read_text())}


def links(text: str) -> Iterator[str]:
    """The targets of the Markdown links of the prose, inline code left out."""
    without_code = re.sub(r"`[^`\n]*`", "", prose(text))
    yield from re.findall(r"\]\(([^)\s]+)\)", without_code)


def table_rows(text: str, first_cell: str) -> dict[str, list[str]]:
    """Rows whose first cell matches `first_cell` (a regex with one group): the group → the
    row's other cells."""
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        match = re.match(rf"^\| {first_cell} \|(.*)\|$", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in match.group(2).split(" | ")]
    return rows


# --- generated parts ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(generator().PARTS))
def test_the_generated_parts_are_what_the_generator_writes(name: str) -> None:
    """Run `.venv/bin/python .ci/reference_docs.py` after changing what they are written from."""
    assert (ROOT / name).read_text() == generator().rendered(name), (
        f"{name} is out of date: run .venv/bin/python .ci/reference_docs.py"
    )


# --- reference pages against the code -----------------------------------------------------


def environment_variables() -> set[str]:
    """Every variable the settings tree reads, prefix included, and the secrets directory."""
    names = {SECRETS_DIR_VARIABLE}
    for field, info in Settings.model_fields.items():
        group = info.annotation
        if isinstance(group, type) and issubclass(group, BaseSettings):
            prefix = str(group.model_config.get("env_prefix", ""))
            names |= {f"{prefix}{name}".upper() for name in group.model_fields}
        else:
            names.add(field.upper())
    return names


def test_every_setting_has_its_row_in_the_configuration_reference() -> None:
    """A row of its own, not a mention in another's; the secrets directory is told in prose."""
    text = page("reference/configuration.md")
    documented = set(table_rows(text, r"`([A-Z][A-Z0-9_]+)`"))
    if f"`{SECRETS_DIR_VARIABLE}`" in text:
        documented.add(SECRETS_DIR_VARIABLE)

    assert sorted(environment_variables() - documented) == []


def error_codes() -> dict[str, tuple[str, str]]:
    """Every code a result or dead letter can carry → (its result status, retryable): an error
    class's `code`, or the reason a message was rejected. `dead_letter_reasons()` is the list
    `redrive --reason` and `dead-letters --reason` accept."""

    def classes(error: type[SyncError]) -> Iterator[type[SyncError]]:
        yield error
        for subclass in error.__subclasses__():
            yield from classes(subclass)

    codes = {
        cls.code: ("failed", "yes" if issubclass(cls, RetryableError) else "no")
        for cls in classes(SyncError)
    }
    codes |= {reason: ("rejected", "no") for reason in get_args(RejectReason)}
    assert set(codes) == set(dead_letter_reasons())
    return codes


def test_every_error_code_is_in_the_events_reference_with_its_status_and_retryable() -> None:
    """Status `—` is a code no result carries (a base class, or a wait that never fails)."""
    text = page("reference/events.md")
    section = text[text.index("## Error codes") : text.index("## Dead letters")]
    rows = table_rows(section, r"`(\w+)`")
    documented = {code: (cells[0], cells[1]) for code, cells in rows.items()}
    expected = error_codes()

    assert sorted(set(expected) - set(documented)) == [], "codes missing from the table"
    assert sorted(set(documented) - set(expected)) == [], "codes the service does not have"
    for code, (status, retryable) in expected.items():
        assert documented[code][0] in {status, "—"}, code
        assert documented[code][1] == retryable, code
    assert all(
        status == "rejected" for status, _ in (documented[c] for c in get_args(RejectReason))
    )


def exported_series() -> set[str]:
    """The worker's own series by the name they are exported under."""
    suffixes = {"counter": "_total", "info": "_info"}
    return {
        f"{metric._name}{suffixes.get(metric._type, '')}"
        for metric in vars(Metrics()).values()
        if isinstance(metric, MetricWrapperBase)
    }


def test_every_metric_has_its_row_in_the_metrics_reference() -> None:
    documented = set(table_rows(page("reference/metrics.md"), r"`(elements_sync_\w+)`[^|]*"))

    assert sorted(exported_series() - documented) == []


def test_every_command_has_its_section_in_the_commands_reference() -> None:
    from app.__main__ import _parser

    [subparsers] = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    sections = set(headings(page("operations/commands.md")))

    assert sorted(f"`{name}`" for name in subparsers.choices if f"`{name}`" not in sections) == []


def test_every_readiness_reason_is_in_the_http_reference() -> None:
    rows = table_rows(page("reference/http.md"), r"`(\w+)`")

    assert sorted(set(get_args(NotReadyReason)) - set(rows)) == []


def test_every_dead_letter_header_is_in_the_events_reference() -> None:
    source = (ROOT / "app/kafka/publisher.py").read_text() + (
        ROOT / "app/commands/redrive.py"
    ).read_text()
    headers = set(re.findall(r'"(x-[a-z-]*[a-z])"', source))
    text = page("reference/events.md")

    assert {"x-dead-letter-reason", "x-redriven-from"} <= headers
    assert sorted(h for h in headers if f"`{h}`" not in text) == []


# --- alerts and their runbook -------------------------------------------------------------


def test_every_alerts_runbook_url_leads_to_its_section_of_the_runbook() -> None:
    sections = anchors(RUNBOOK)
    wrong = {
        r["alert"]: r["annotations"]["runbook_url"]
        for r in alert_rules()
        if r["annotations"]["runbook_url"] != f"{RUNBOOK_PATH}#{r['alert'].lower()}"
        or r["alert"].lower() not in sections
    }

    assert wrong == {}


def test_the_runbook_lists_every_alert_with_its_severity_and_duration() -> None:
    rows = table_rows(RUNBOOK.read_text(), r"\[(ElementsSync\w+)\]\(#\w+\)")

    assert set(rows) == {r["alert"] for r in alert_rules()}
    for r in alert_rules():
        severity, _, duration = rows[r["alert"]]
        assert (severity, duration) == (r["labels"]["severity"], r.get("for", "—")), r["alert"]


# --- links, anchors, the README -----------------------------------------------------------


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in links(path.read_text()):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        if not resolved.exists() or not resolved.is_relative_to(ROOT):
            broken.append(f"{target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target} (no such heading)")
    return broken


@pytest.mark.parametrize("path", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(path: Path) -> None:
    assert broken_links(path) == []


@pytest.mark.parametrize("path", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_heading_has_one_anchor_on_github_and_gitlab(path: Path) -> None:
    """No two headings of a page share an anchor (GitHub would number the second), and none has
    two hyphens in a row (GitLab would merge them)."""
    slugs = [slug(h) for h in headings(path.read_text())]

    assert [s for s in slugs if "--" in s] == []
    assert sorted({s for s in slugs if slugs.count(s) > 1}) == []


def test_the_readme_is_short_and_keeps_the_test_command_ci_runs() -> None:
    readme = README.read_text()
    [ci_line] = [
        line for line in (ROOT / ".ci/run").read_text().splitlines() if "-m pytest" in line
    ]

    assert len(readme.splitlines()) < README_MAX_LINES
    assert f"```sh\n{ci_line}\n```" in readme


HISTORY = {
    "an issue number": re.compile(r"\b[Ii]ssues? #?\d+"),
    "a commit hash": re.compile(
        r"(?<![\w-])(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}(?![\w-])"
    ),
    "a before/after column": re.compile(r"^\|(?:.*\|)? *(?:before|after)\b[^|]*\|.*\n\|-", re.M),
}


@pytest.mark.parametrize(
    "path",
    [p for p in pages() if p not in HISTORY_ALLOWED],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_user_docs_carry_no_development_history(path: Path) -> None:
    text = path.read_text()
    found = {what: pattern.findall(text) for what, pattern in HISTORY.items()}

    assert {what: hits for what, hits in found.items() if hits} == {}


def test_every_page_of_docs_is_in_its_index() -> None:
    """docs/README.md lists every page, so a reader finds each from the README's link to it."""
    index = DOCS / "README.md"
    listed = {(DOCS / target.partition("#")[0]).resolve() for target in links(index.read_text())}

    assert (
        sorted(
            str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md") if p != index and p not in listed
        )
        == []
    )
