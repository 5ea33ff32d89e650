"""The reference tables of docs/ that the code can say itself, written from the code.

    .venv/bin/python .ci/reference_docs.py           rewrite the generated parts
    .venv/bin/python .ci/reference_docs.py --check   exit 1 naming the pages that differ

Each generated part of a page sits between two comments,

    <!-- BEGIN GENERATED <name> ... -->
    <!-- END GENERATED <name> -->

and only that part is written; the prose around it is the page's own. The parts:

    docs/reference/configuration.md  settings  every variable of app/settings.py: kind, default,
                                               meaning (the field's docstring)
    docs/reference/metrics.md        metrics   every series of app/metrics.py with its labels and
                                               help, and the label values exported at 0
    docs/operations/commands.md      commands  every subcommand of `python -m app`: usage, what it
                                               does, exit codes
    docs/deploy/monitoring.md        dashboard the Grafana dashboard's panels and what each shows

tests/unit/test_docs.py fails while a page differs from what this writes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, get_args

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # this checkout's `app`, whichever venv runs the script

from pydantic import SecretStr  # noqa: E402
from pydantic.fields import FieldInfo  # noqa: E402
from pydantic_settings import BaseSettings  # noqa: E402

SCRIPT = ".ci/reference_docs.py"
BEGIN = "<!-- BEGIN GENERATED {name}: written by .ci/reference_docs.py from {source}; edit that, then run it -->"
END = "<!-- END GENERATED {name} -->"

GROUP_TITLES = {
    "kafka": "Kafka",
    "topics": "Topics",
    "anva": "ANVA Hub",
    "portal": "MijnKlantportaal",
    "elements": "Elements",
    "contracts": "Elements contracts",
    "retry": "Retries",
    "forms": "Forms ingress",
    "backfill": "Backfill",
    "tracing": "Tracing",
    "state": "Durable memory",
}
"""Headings of the settings groups (by their field in `Settings`); a group not named here is
titled by its class."""
SERVICE_TITLE = "Service"
SERVICE_INTRO = "The worker's HTTP side, its logs and its shutdown."


def cell(text: str) -> str:
    """One table cell: one line, its pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def first_paragraph(doc: str | None) -> str:
    return " ".join((doc or "").strip().split("\n\n")[0].split())


# --- settings -----------------------------------------------------------------------------


def default_text(info: FieldInfo) -> str:
    if info.is_required():
        return "—"
    value = info.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    if isinstance(value, dict):
        return f"`{json.dumps(value, ensure_ascii=False)}`"
    return f"`{value}`"


def is_secret(info: FieldInfo) -> bool:
    return info.annotation is SecretStr or SecretStr in get_args(info.annotation)


def kind_text(info: FieldInfo) -> str:
    from app.settings import FOR_THE_DEPLOYMENT, PER_TENANT

    marks = set(info.metadata)
    if info.is_required():
        kind = "**required**, per tenant" if PER_TENANT in marks else "**required**"
    elif PER_TENANT in marks:
        kind = "per tenant"
    elif FOR_THE_DEPLOYMENT in marks:
        kind = "deployment"
    else:
        kind = "tuning"
    return f"{kind}, secret" if is_secret(info) else kind


def setting_rows(group: type[BaseSettings]) -> Iterator[str]:
    prefix = str(group.model_config.get("env_prefix", ""))
    for name, info in group.model_fields.items():
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseSettings):
            continue
        if not info.description:
            raise SystemExit(f"{group.__name__}.{name} has no docstring: say what it means")
        variable = f"{prefix}{name}".upper()
        yield (
            f"| `{variable}` | {kind_text(info)} | {cell(default_text(info))} "
            f"| {cell(info.description)} |"
        )


def settings_part() -> str:
    from app.settings import Settings

    lines: list[str] = []
    groups = {
        field: info.annotation
        for field, info in Settings.model_fields.items()
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseSettings)
    }
    sections: list[tuple[str, str, type[BaseSettings]]] = [
        (GROUP_TITLES.get(field, group.__name__), first_paragraph(group.__doc__), group)
        for field, group in groups.items()
    ]
    sections.append((SERVICE_TITLE, SERVICE_INTRO, Settings))
    for title, intro, group in sections:
        lines += [f"### {title}", "", intro, ""]
        lines += ["| variable | kind | default | meaning |", "|---|---|---|---|"]
        lines += [*setting_rows(group), ""]
    return "\n".join(lines).rstrip()


# --- metrics ------------------------------------------------------------------------------


def series_name(metric: Any) -> str:
    name, kind = metric._name, metric._type
    if kind == "counter":
        return f"`{name}_total`"
    if kind == "info":
        return f"`{name}_info`"
    if kind == "histogram":
        return f"`{name}` (`_bucket`, `_sum`, `_count`)"
    return f"`{name}`"


def metrics_part() -> str:
    from prometheus_client.metrics import MetricWrapperBase

    from app.kafka.flow import PauseReason
    from app.kafka.publisher import FinishStep
    from app.metrics import FORMS_WATCHED_CODES, RATE_LIMITED, Metrics, dead_letter_reasons

    metrics = [m for m in vars(Metrics()).values() if isinstance(m, MetricWrapperBase)]
    lines = ["| series | type | labels | meaning |", "|---|---|---|---|"]
    for metric in metrics:
        labels = ", ".join(f"`{label}`" for label in metric._labelnames) or "—"
        lines.append(
            f"| {series_name(metric)} | {metric._type} | {labels} | {cell(metric._documentation)} |"
        )

    def values(items: Any) -> str:
        return ", ".join(f"`{item}`" for item in items)

    lines += [
        "",
        "Label values exported at 0 from the start, so that a rule's `increase()` counts the "
        "first occurrence:",
        "",
        "| series | label | values |",
        "|---|---|---|",
        f"| `elements_sync_dead_letters_total`, `elements_sync_dead_letters_outstanding` "
        f"| `reason` | {values(dead_letter_reasons())} |",
        f"| `elements_sync_intake_paused` | `reason` | {values(get_args(PauseReason))} |",
        f"| `elements_sync_finish_failures_total` | `step` | {values(get_args(FinishStep))} |",
        f"| `elements_sync_upstream_requests_total` | `code` | {values([RATE_LIMITED])} "
        "(per `api`) |",
        f"| `elements_sync_forms_requests_total` | `code` | {values(FORMS_WATCHED_CODES)} "
        "(per `route`) |",
        "| `elements_sync_assigned_partitions` | `topic` | every input topic, the backfill "
        "topic's too |",
    ]
    return "\n".join(lines)


# --- commands -----------------------------------------------------------------------------


def usage(name: str, command: argparse.ArgumentParser) -> str:
    """The command line, without -h and --version (every command has both); an option shows
    its metavar, else its default."""
    words = [f"python -m app {name}"]
    for action in command._actions:
        if isinstance(action, argparse._HelpAction | argparse._VersionAction):
            continue
        if not action.option_strings:
            words.append(str(action.metavar or action.dest.upper()))
        elif action.nargs == 0:
            words.append(f"[{action.option_strings[0]}]")
        else:
            # its metavar when it has one, else its default, else its name
            shown = action.metavar or action.default
            words.append(f"[{action.option_strings[0]} {shown or action.dest.upper()}]")
    return " ".join(words)


def commands_part() -> str:
    from app.__main__ import EXIT_CODES, _parser

    parser = _parser()
    [subparsers] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    helps = {choice.dest: choice.help or "" for choice in subparsers._choices_actions}
    lines = ["| command | what it does | exit codes |", "|---|---|---|"]
    for name, command in subparsers.choices.items():
        exits = "; ".join(f"{code} {meaning}" for code, meaning in sorted(EXIT_CODES[name]))
        lines.append(
            f"| [`{usage(name, command)}`](#{name}) | {cell(helps[name])} | {cell(exits)} |"
        )
    return "\n".join(lines)


# --- dashboard ----------------------------------------------------------------------------


def dashboard_part() -> str:
    board = json.loads((ROOT / "k8s/monitoring/dashboard.json").read_text())
    return "\n".join(f"- **{p['title']}**: {cell(p['description'])}" for p in board["panels"])


# --- pages --------------------------------------------------------------------------------

PARTS: dict[str, list[tuple[str, str, Callable[[], str]]]] = {
    "docs/reference/configuration.md": [("settings", "app/settings.py", settings_part)],
    "docs/reference/metrics.md": [("metrics", "app/metrics.py", metrics_part)],
    "docs/operations/commands.md": [("commands", "app/__main__.py", commands_part)],
    "docs/deploy/monitoring.md": [("dashboard", "k8s/monitoring/dashboard.json", dashboard_part)],
}
"""Per page, its generated parts: (name, what it is written from, how)."""


def rendered(page: str) -> str:
    """The page as it should be: its text with every generated part written afresh."""
    text = (ROOT / page).read_text()
    for name, source, part in PARTS[page]:
        begin, end = BEGIN.format(name=name, source=source), END.format(name=name)
        pattern = re.compile(
            re.escape(f"<!-- BEGIN GENERATED {name}:") + r".*?" + re.escape(end), re.DOTALL
        )
        found = list(pattern.finditer(text))
        if len(found) != 1:
            raise SystemExit(f"{page}: needs one part between {begin!r} and {end!r}")
        [where] = found
        text = f"{text[: where.start()]}{begin}\n\n{part()}\n\n{end}{text[where.end() :]}"
    return text


def main(argv: list[str]) -> int:
    check = argv == ["--check"]
    if argv and not check:
        print(__doc__, file=sys.stderr)
        return 2
    stale = []
    for page in PARTS:
        text = rendered(page)
        if (ROOT / page).read_text() != text:
            stale.append(page)
            if not check:
                (ROOT / page).write_text(text)
    if check and stale:
        print(f"generated parts out of date: {', '.join(stale)}; run {SCRIPT}", file=sys.stderr)
        return 1
    for page in stale:
        print(f"wrote {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
