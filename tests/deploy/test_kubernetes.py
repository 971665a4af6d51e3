"""deploy/kubernetes: the manifests use flags and ports `caseroute serve` really has."""

import re
import subprocess
import sys
from pathlib import PurePosixPath
from typing import Any

from ruamel.yaml import YAML

from caseroute.grpc_api.server import ROUTING_SERVICE
from caseroute.testing import REPO_ROOT

MANIFESTS = REPO_ROOT / "deploy" / "kubernetes"


def documents(name: str) -> list[dict[str, Any]]:
    """The YAML documents of one manifest file."""
    return [doc for doc in YAML(typ="safe").load_all((MANIFESTS / name).read_text()) if doc]


DEPLOYMENT = documents("deployment.yaml")[0]
POD = DEPLOYMENT["spec"]["template"]["spec"]
SERVER = POD["containers"][0]
ARGS: list[str] = SERVER["args"]


def flag(name: str) -> str:
    """The value the Deployment passes for ``--name``."""
    return ARGS[ARGS.index(name) + 1]


def serve_help() -> str:
    """`caseroute serve --help` as this checkout prints it."""
    done = subprocess.run(
        [sys.executable, "-m", "caseroute.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_every_flag_the_deployment_passes_exists() -> None:
    """Each `--flag` in the container args is one `caseroute serve --help` lists."""
    offered = set(re.findall(r"(--[a-z][a-z-]*)", serve_help()))
    passed = [arg for arg in ARGS if arg.startswith("--")]
    assert ARGS[0] == "serve"
    assert len(passed) == 10
    assert [arg for arg in passed if arg not in offered] == []


def test_the_ports_agree_with_the_flags_service_and_scrape_annotations() -> None:
    """--port is the grpc containerPort and the Service's target; --metrics-port is scraped."""
    ports = {p["name"]: p["containerPort"] for p in SERVER["ports"]}
    assert ports == {"grpc": int(flag("--port")), "metrics": int(flag("--metrics-port"))}
    annotations = DEPLOYMENT["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": flag("--metrics-port"),
        "prometheus.io/path": "/metrics",
    }
    service = documents("service.yaml")[0]
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(50051, "grpc")]
    labels = DEPLOYMENT["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()


def test_probes_are_native_grpc_probes_on_the_serving_port() -> None:
    """Startup, readiness and liveness ask grpc.health.v1 on --port; readiness names the API."""
    port = int(flag("--port"))
    probes = {kind: SERVER[kind] for kind in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert {
        kind: set(probe) & {"grpc", "exec", "httpGet", "tcpSocket"}
        for kind, probe in probes.items()
    } == {kind: {"grpc"} for kind in probes}
    assert {kind: probe["grpc"] for kind, probe in probes.items()} == {
        "startupProbe": {"port": port},
        "readinessProbe": {"port": port, "service": ROUTING_SERVICE},
        "livenessProbe": {"port": port},
    }


def test_resources_match_the_worker_count() -> None:
    """One whole CPU per worker, requested and limited alike, so no worker is throttled."""
    workers = int(flag("--workers"))
    resources = SERVER["resources"]
    assert (resources["requests"]["cpu"], resources["limits"]["cpu"]) == (str(workers),) * 2
    assert resources["requests"]["memory"] == resources["limits"]["memory"] == "1Gi"


def test_the_pod_runs_as_the_images_numeric_user_without_privileges() -> None:
    """The pod sets runAsNonRoot, uid 10001 as in the image, no escalation, a read-only root."""
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert re.findall(r"^USER (\S+)$", dockerfile, re.MULTILINE) == ["10001:10001"]
    security = POD["securityContext"]
    assert (security["runAsNonRoot"], security["runAsUser"], security["runAsGroup"]) == (
        True,
        10001,
        10001,
    )
    assert (security["fsGroup"], security["fsGroupChangePolicy"]) == (10001, "OnRootMismatch")
    for container in (SERVER, *POD["initContainers"]):
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }


def test_service_links_cannot_override_caseroute_settings() -> None:
    """Service links are off: a Service named caseroute would inject CASEROUTE_PORT=tcp://..."""
    assert documents("service.yaml")[0]["metadata"]["name"] == "caseroute"
    assert POD["enableServiceLinks"] is False


def mounts(container: dict[str, Any]) -> dict[str, str]:
    """Volume name -> mount path of a container."""
    return {m["name"]: m["mountPath"] for m in container["volumeMounts"]}


def test_the_decision_log_is_on_the_claim_and_the_key_is_not() -> None:
    """The PVC is mounted where the image keeps the log; the key file comes from a Secret copy."""
    claim = documents("pvc.yaml")[0]
    volumes = {v["name"]: v for v in POD["volumes"]}
    assert volumes["decision-log"]["persistentVolumeClaim"] == {
        "claimName": claim["metadata"]["name"]
    }
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert (DEPLOYMENT["spec"]["replicas"], DEPLOYMENT["spec"]["strategy"]) == (
        1,
        {"type": "Recreate"},
    )
    log_dir = mounts(SERVER)["decision-log"]
    assert (
        "CASEROUTE_AUDIT_DB=/var/lib/caseroute/audit.db" in (REPO_ROOT / "Dockerfile").read_text()
    )
    assert log_dir == "/var/lib/caseroute"
    key = PurePosixPath(flag("--audit-key-file"))
    assert not key.is_relative_to(log_dir)
    assert str(key.parent) == mounts(SERVER)["secret-files"]


def test_the_init_container_copies_exactly_the_secret_files_the_server_reads() -> None:
    """Key and token files passed to serve are the ones copied (mode 600) from the Secrets."""
    init = POD["initContainers"][0]
    command = init["command"]
    assert command[:3] == ["install", "-m", "0600"]
    target = command[-1].rstrip("/")
    assert target == mounts(init)["secret-files"] == mounts(SERVER)["secret-files"]
    copied = {f"{target}/{PurePosixPath(source).name}" for source in command[3:-1]}
    read = {
        flag(name)
        for name in (
            "--audit-key-file",
            "--admin-token-file",
            "--caller-token-file",
            "--audit-token-file",
        )
    }
    assert copied == read
    init_mounts = mounts(init)
    secrets = {v["name"]: v["secret"]["secretName"] for v in POD["volumes"] if "secret" in v}
    sources = {
        secrets[name] + ":" + PurePosixPath(source).name
        for source in command[3:-1]
        for name, path in init_mounts.items()
        if source.startswith(path + "/")
    }
    example = {
        doc["metadata"]["name"] + ":" + key
        for doc in documents("secrets.example.yaml")
        for key in doc["stringData"]
    }
    assert sources <= example
    assert len(sources) == 4
    volumes = {v["name"]: v for v in POD["volumes"]}
    assert volumes["secret-files"]["emptyDir"]["medium"] == "Memory"


def test_the_tls_secret_holds_what_the_tls_flags_need() -> None:
    """The optional TLS Secret is mounted, and the flags docs/deploy.md says to add exist."""
    volumes = {v["name"]: v for v in POD["volumes"]}
    assert volumes["tls"]["secret"] == {
        "secretName": "caseroute-tls",
        "defaultMode": 0o440,
        "optional": True,
    }
    assert mounts(SERVER)["tls"] == "/etc/caseroute/tls"
    assert {"--tls-cert", "--tls-key"} <= set(re.findall(r"--[a-z-]+", serve_help()))


def test_the_kustomization_applies_every_manifest_but_the_secret_example() -> None:
    """kustomization.yaml lists each manifest file except secrets.example.yaml (never applied)."""
    listed = documents("kustomization.yaml")[0]["resources"]
    files = sorted(p.name for p in MANIFESTS.glob("*.yaml"))
    assert sorted(listed) == [
        f for f in files if f not in {"kustomization.yaml", "secrets.example.yaml"}
    ]
    assert "secrets.example.yaml" in files


def test_the_example_secrets_are_empty() -> None:
    """The shape-only Secret example holds no value that could be deployed as a real key."""
    values = [v for doc in documents("secrets.example.yaml") for v in doc["stringData"].values()]
    assert values == [""] * 6
