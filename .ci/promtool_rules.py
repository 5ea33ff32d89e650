"""promtool on the alert rules as kustomize renders them: `promtool check rules`, then each test
of k8s/monitoring/alerts.test.yaml run on its own, so the output names every test and its result.

    .venv/bin/python .ci/promtool_rules.py RENDERED.yaml SCRATCH_DIR

RENDERED.yaml is `kubectl kustomize k8s/monitoring` (or, without kubectl, prometheusrule.yaml
itself); its one PrometheusRule's spec.groups is written to SCRATCH_DIR/elements-sync.rules.yaml,
the file the tests name. The tests' `$RUNBOOK_URL` is the rendered runbook address (the part of
each runbook_url before "#"), so a tenant's own address does not fail them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

TESTS = Path(__file__).parents[1] / "k8s" / "monitoring" / "alerts.test.yaml"
RULE_FILE = "elements-sync.rules.yaml"


def prometheus_rule(rendered: Path) -> dict[str, Any]:
    rules = [
        doc
        for doc in yaml.safe_load_all(rendered.read_text())
        if doc and doc.get("kind") == "PrometheusRule"
    ]
    if len(rules) != 1:
        sys.exit(f"{rendered}: expected one PrometheusRule, found {len(rules)}")
    return rules[0]


def runbook_url(groups: list[dict[str, Any]]) -> str:
    bases = {
        rule["annotations"]["runbook_url"].split("#")[0]
        for group in groups
        for rule in group["rules"]
        if "alert" in rule
    }
    if len(bases) != 1:
        sys.exit(f"the alerts' runbook_url should share one address, found {sorted(bases)}")
    return bases.pop()


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False)


def main(rendered: Path, scratch: Path) -> int:
    groups = prometheus_rule(rendered)["spec"]["groups"]
    (scratch / RULE_FILE).write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))

    checked = run("promtool", "check", "rules", str(scratch / RULE_FILE))
    print(checked.stdout.strip() or checked.stderr.strip())
    if checked.returncode != 0:
        print(checked.stderr, file=sys.stderr)
        return 1

    text = TESTS.read_text().replace("$RUNBOOK_URL", runbook_url(groups))
    document = yaml.safe_load(text)
    if document["rule_files"] != [RULE_FILE]:
        sys.exit(f"{TESTS}: rule_files should be [{RULE_FILE}]")
    failed = 0
    print(f"promtool test rules {TESTS.name}, each test on its own:")
    for index, test in enumerate(document["tests"]):
        single = scratch / f"test-{index:02d}.yaml"
        single.write_text(yaml.safe_dump({**document, "tests": [test]}, sort_keys=False))
        result = run("promtool", "test", "rules", str(single))
        print(f"  {'SUCCESS' if result.returncode == 0 else 'FAILED '}  {test['name']}")
        if result.returncode != 0:
            failed += 1
            print(result.stdout + result.stderr, file=sys.stderr)
    print(
        f"promtool: {len(document['tests']) - failed} of {len(document['tests'])} tests succeeded"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
