"""The deployment files keep the promises docs/deploy/ makes about them.

CI validates the manifests against the Kubernetes schemas and lints the Dockerfile
(.ci/deploy-checks); these tests hold what no schema knows: what the base applies, that the
handover fits in the grace period, the memory sizing, which settings are secrets and how they
arrive, where Redis is reached, and that compose wires the worker to the simulators.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from app.events import InputEvent, parse_event
from app.sandbox.serve_simulators import SimulatorPorts, worker_settings
from app.sandbox.simulators.seed import sample_customer
from app.sandbox.tenant import tenant_environment
from app.settings import KafkaSettings, Settings, environment_names, read_settings

ROOT = Path(__file__).parents[2]
K8S = ROOT / "k8s"
MEMORY_BASE_MIB, MEMORY_PER_DOSSIER_KIB, MEMORY_HEADROOM = 110, 1.8, 1.25
"""docs/deploy/kubernetes.md, "Memory": limit = 1.25 * (110 MiB + 1.8 KiB * dossiers)."""
READINESS_BROKER_PING_S = 1.0
"""`Runtime.ready()` pings the broker with this timeout."""


def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def base() -> dict[str, dict[str, Any]]:
    """The base's resources by kind, as the kustomization lists them."""
    kustomization = load(K8S / "kustomization.yaml")[0]
    docs = [doc for name in kustomization["resources"] for doc in load(K8S / name)]
    return {doc["kind"]: doc for doc in docs}


def config() -> dict[str, str]:
    data: dict[str, str] = base()["ConfigMap"]["data"]
    return data


def pod() -> dict[str, Any]:
    spec: dict[str, Any] = base()["Deployment"]["spec"]["template"]["spec"]
    return spec


def secret_variables() -> set[str]:
    """The variables the settings tree reads as `SecretStr`."""
    names: set[str] = set()
    for field in Settings.model_fields.values():
        group = field.annotation
        if isinstance(group, type) and issubclass(group, BaseSettings):
            prefix = str(group.model_config.get("env_prefix", ""))
            names |= {
                f"{prefix}{name}".upper()
                for name, info in group.model_fields.items()
                if "SecretStr" in str(info.annotation)
            }
    return names


def test_kustomization_applies_every_base_manifest_and_no_secret() -> None:
    kustomization = load(K8S / "kustomization.yaml")[0]
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}

    assert sorted(kustomization["resources"]) == sorted(manifests)
    assert set(base()) == {"ConfigMap", "Deployment", "Service", "Ingress", "NetworkPolicy"}
    assert [doc["kind"] for doc in load(K8S / "examples" / "secret.example.yaml")] == ["Secret"]


def test_secret_example_carries_every_secret_and_the_configmap_none() -> None:
    secret = load(K8S / "examples" / "secret.example.yaml")[0]["stringData"]

    assert secret_variables() <= set(secret)
    assert not set(secret) & set(config())
    assert [name for name in config() if not name.startswith(environment_names())] == []


def test_the_configmap_leaves_every_tenant_id_empty_and_the_settings_name_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No placeholder id is taken for the tenant's: the worker does not start until they are set."""
    tenant_ids = set(tenant_environment())
    for name, value in config().items():
        monkeypatch.setenv(name, value)

    problems = {p.variable: p.message for p in read_settings().problems}

    assert {name: config()[name] for name in tenant_ids} == dict.fromkeys(tenant_ids, "")
    assert {name: problems.get(name) for name in tenant_ids} == dict.fromkeys(
        tenant_ids, "empty: set it to this tenant's id"
    )


def test_the_check_job_reads_the_settings_as_the_worker_does_and_runs_check() -> None:
    """The same ConfigMap, Secret files and TLS files, so `check` checks what the worker uses;
    none of the worker's labels, so the Service never routes to it."""
    job = load(K8S / "examples" / "check-job.yaml")[0]
    spec, worker = job["spec"]["template"]["spec"], pod()
    container, worker_container = spec["containers"][0], worker["containers"][0]
    same = ("envFrom", "env", "volumeMounts", "securityContext")

    assert container["command"] == ["python", "-m", "app", "check"]
    assert {k: container[k] for k in same} == {k: worker_container[k] for k in same}
    assert spec["volumes"] == worker["volumes"]
    assert spec["securityContext"] == worker["securityContext"]
    assert (spec["restartPolicy"], job["spec"]["backoffLimit"]) == ("Never", 0)
    selector = base()["Service"]["spec"]["selector"]
    assert not selector.items() <= job["spec"]["template"]["metadata"]["labels"].items()


def test_secret_is_mounted_as_files_where_the_settings_read_them() -> None:
    container = pod()["containers"][0]
    secrets_dir = {e["name"]: e["value"] for e in container["env"]}["SETTINGS_SECRETS_DIR"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod()["volumes"]}

    assert mounts["secrets"] == secrets_dir
    assert volumes["secrets"]["secret"]["secretName"] == "elements-sync"
    assert "secretRef" not in str(container["envFrom"])


def test_the_handover_fits_in_the_grace_period_before_the_pod_is_killed() -> None:
    """SIGTERM hands the partitions over: it waits at most KAFKA_HANDOVER_TIMEOUT_S for the
    requests in flight, however many events are in flight (no drain to size the window by)."""
    handover_s = float(config().get("KAFKA_HANDOVER_TIMEOUT_S", KafkaSettings().handover_timeout_s))
    grace_s = float(config()["SHUTDOWN_GRACE_PERIOD_S"])

    assert "KAFKA_MAX_IN_FLIGHT" not in config(), "the default; nothing to size it by"
    assert handover_s <= grace_s < pod()["terminationGracePeriodSeconds"]


def test_the_memory_request_equals_the_limit_the_docs_formula_sizes() -> None:
    resources = pod()["containers"][0]["resources"]
    limit_mib = int(resources["limits"]["memory"].removesuffix("Mi"))
    dossiers = (limit_mib / MEMORY_HEADROOM - MEMORY_BASE_MIB) * 1024 / MEMORY_PER_DOSSIER_KIB
    sizing = (ROOT / "docs" / "deploy" / "kubernetes.md").read_text()

    assert resources["requests"]["memory"] == resources["limits"]["memory"]
    assert (
        f"The {limit_mib}Mi limit of\n`k8s/deployment.yaml` serves up to about **{round(dossiers, -4):,.0f} dossiers**"
        in sizing
    )


def test_the_otlp_example_is_the_http_exporters_port() -> None:
    text = (K8S / "configmap.yaml").read_text()

    assert "OTEL_EXPORTER_OTLP_ENDPOINT: http://otel-collector.monitoring.svc:4318" in text
    assert ":4317" not in text


def test_probes_wait_longer_than_the_readiness_check_waits_for_the_broker() -> None:
    container = pod()["containers"][0]
    probes = {name: container[name] for name in ("startupProbe", "livenessProbe", "readinessProbe")}

    assert {name: probe["timeoutSeconds"] >= 3 for name, probe in probes.items()} == dict.fromkeys(
        probes, True
    )
    assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert probes["readinessProbe"]["timeoutSeconds"] > READINESS_BROKER_PING_S


def test_pod_meets_the_restricted_pod_security_standard() -> None:
    spec = pod()
    container = spec["containers"][0]["securityContext"]

    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] > 0
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert container["readOnlyRootFilesystem"] is True


def test_podmonitor_scrapes_the_metrics_of_the_base_pods() -> None:
    monitor = load(K8S / "monitoring" / "podmonitor.yaml")[0]
    deployment = base()["Deployment"]["spec"]
    ports = {p["name"]: p["containerPort"] for p in pod()["containers"][0]["ports"]}

    assert monitor["kind"] == "PodMonitor"
    assert monitor["spec"]["selector"] == deployment["selector"]
    assert [(e["port"], e["path"]) for e in monitor["spec"]["podMetricsEndpoints"]] == [
        ("http", "/metrics")
    ]
    assert ports["http"] == int(config()["HTTP_PORT"])


def test_ingress_exposes_only_the_forms_routes() -> None:
    rules = base()["Ingress"]["spec"]["rules"]
    paths = [(p["path"], p["pathType"]) for rule in rules for p in rule["http"]["paths"]]

    assert paths == [("/forms/", "Prefix")]


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return document


def test_compose_worker_reaches_the_simulators_as_the_simulators_command_says() -> None:
    services = compose()["services"]
    command = services["simulators"]["command"]
    host = command[command.index("--advertised-host") + 1]
    expected = worker_settings(
        host,
        SimulatorPorts(anva=8081, portal=8082, elements=8083),
        elements_rate_limit=int(services["worker"]["environment"]["ELEMENTS_RATE_LIMIT"]),
    )

    assert services["simulators"]["ports"] == ["8081:8081", "8082:8082", "8083:8083"]
    assert expected.items() <= services["worker"]["environment"].items()


def test_compose_sample_events_are_customer_events_the_worker_accepts() -> None:
    script = compose()["services"]["sample-events"]["command"][0].replace("$$", "$")
    loop = script.split("| /opt/kafka")[0]
    printed = subprocess.run(["bash", "-c", loop], capture_output=True, text=True, check=True)
    records = [line.split("|", 1) for line in printed.stdout.splitlines()]
    events = [parse_event(value.encode()) for _, value in records]

    assert [key for key, _ in records] == [sample_customer(i).dossier_number for i in range(6)]
    assert all(isinstance(event, InputEvent) for event in events), events
    assert [(e.type, e.data.dossierNumber) for e in events if isinstance(e, InputEvent)] == [
        ("customer.changed", key) for key, _ in records
    ]


REPLICAS = K8S / "replicas"


def replicas_component() -> dict[str, Any]:
    return load(REPLICAS / "kustomization.yaml")[0]


def replicas_patch(name: str) -> dict[str, Any]:
    return load(REPLICAS / name)[0]


def test_replicas_component_lists_files_that_exist_and_applies_over_the_base() -> None:
    component = replicas_component()
    listed = [*component["resources"], *(p["path"] for p in component["patches"])]

    assert component["kind"] == "Component"
    assert sorted(listed) == sorted(
        p.name for p in REPLICAS.glob("*.yaml") if p.name != "kustomization.yaml"
    )


def test_replicas_roll_without_a_gap_and_a_drain_keeps_one_running() -> None:
    spec = replicas_patch("deployment-patch.yaml")["spec"]
    budget = replicas_patch("poddisruptionbudget.yaml")["spec"]

    assert spec["replicas"] >= 2
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    assert budget["minAvailable"] == 1
    assert budget["selector"] == base()["Deployment"]["spec"]["selector"]


def test_replicas_read_the_redis_url_from_the_mounted_secret_and_need_it_to_start() -> None:
    """The URL carries Redis' password: a file of the Secret, never an environment variable;
    ELEMENTS_LIMITER_SHARED makes a worker without it refuse to start."""
    patch = (REPLICAS / "deployment-patch.yaml").read_text()
    secret = load(K8S / "examples" / "secret.example.yaml")[0]
    shared = replicas_patch("configmap-patch.yaml")["data"]

    assert "secretKeyRef" not in patch and "ELEMENTS_LIMITER_REDIS_URL" not in str(
        replicas_patch("deployment-patch.yaml")["spec"]
    )
    assert shared == {"ELEMENTS_LIMITER_SHARED": "true"}
    assert "ELEMENTS_LIMITER_REDIS_URL" in secret["stringData"]
    assert "ELEMENTS_LIMITER_REDIS_URL" not in config()
    assert "ELEMENTS_LIMITER_REDIS_URL" in secret_variables(), "read from SETTINGS_SECRETS_DIR"


def test_replicas_spread_over_zones_and_over_nodes() -> None:
    spec = replicas_patch("deployment-patch.yaml")["spec"]["template"]["spec"]
    selector = base()["Deployment"]["spec"]["selector"]
    spread = {c["topologyKey"]: c for c in spec["topologySpreadConstraints"]}

    assert set(spread) == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    for constraint in spread.values():
        assert constraint["labelSelector"] == selector
        assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"


def test_replicas_may_reach_redis_through_the_network_policy() -> None:
    [rule] = load(REPLICAS / "networkpolicy-patch.yaml")[0]
    target = next(p["target"] for p in replicas_component()["patches"] if "target" in p)

    base_ports = {p["port"] for r in base()["NetworkPolicy"]["spec"]["egress"] for p in r["ports"]}

    assert target == {"kind": "NetworkPolicy", "name": base()["NetworkPolicy"]["metadata"]["name"]}
    assert rule["op"] == "add" and rule["path"] == "/spec/egress/-"
    assert {p["port"] for p in rule["value"]["ports"]} == {6379, 6380}
    assert not base_ports & {6379, 6380}, "the one replica of the base has no Redis"
