"""Figures of the package's layout: service vs sandbox lines, largest classes, longest functions.

    .venv/bin/python .ci/layout_figures.py [app]

"Sandbox" is what the project fakes (app/sandbox/, and before it moved there: simulators,
demo, bench, soak, embedded_broker, report); everything else under app/ is the service.
"""

from __future__ import annotations

import ast
import pathlib
import sys

SANDBOX = (
    "sandbox",
    "simulators",
    "demo.py",
    "bench.py",
    "soak.py",
    "embedded_broker.py",
    "report.py",
)


def main(root: pathlib.Path) -> None:
    service = sandbox = 0
    classes: list[tuple[int, int, str]] = []
    functions: list[tuple[int, str]] = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        relative = path.relative_to(root)
        lines = len(text.splitlines())
        if any(part in SANDBOX for part in relative.parts):
            sandbox += lines
        else:
            service += lines
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if isinstance(node, ast.ClassDef):
                methods = [
                    m for m in node.body if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)
                ]
                classes.append((len(methods), length, f"{relative}:{node.name}"))
            else:
                functions.append((length, f"{relative}:{node.name}"))
    print(f"service {service} lines, sandbox {sandbox} lines ({sandbox / (service + sandbox):.0%})")
    print("largest classes (methods, lines):", sorted(classes, reverse=True)[:4])
    print("longest functions (lines):", sorted(functions, reverse=True)[:4])


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "app"))
