"""deploy/kubernetes/replicas: the replicas + PostgreSQL example uses real flags, wired right."""

import re
from pathlib import Path, PurePosixPath
from typing import Any

from ruamel.yaml import YAML

from caseroute.grpc_api.server import ROUTING_SERVICE
from caseroute.testing import REPO_ROOT
from tests.deploy.test_kubernetes import serve_help

EXAMPLE = REPO_ROOT / "deploy" / "kubernetes" / "replicas"


def documents(name: str) -> list[dict[str, Any]]:
    """The YAML documents of one manifest file of the example."""
    return documents_of(EXAMPLE / name)


def documents_of(path: Path) -> list[dict[str, Any]]:
    """The YAML documents of one manifest file."""
    return [doc for doc in YAML(typ="safe").load_all(path.read_text()) if doc]


DEPLOYMENT = documents("deployment.yaml")[0]
POD = DEPLOYMENT["spec"]["template"]["spec"]
SERVER = POD["containers"][0]
ARGS: list[str] = SERVER["args"]
LABELS = DEPLOYMENT["spec"]["template"]["metadata"]["labels"]


def flag(name: str) -> str:
    """The value the Deployment passes for ``--name``."""
    return ARGS[ARGS.index(name) + 1]


def test_every_flag_exists_and_the_log_is_a_postgresql_url_from_a_secret() -> None:
    """Flags are serve's own; --audit-db comes from the caseroute-audit-db Secret, not args."""
    offered = set(re.findall(r"(--[a-z][a-z-]*)", serve_help()))
    passed = [arg for arg in ARGS if arg.startswith("--")]
    assert ARGS[0] == "serve"
    assert [arg for arg in passed if arg not in offered] == []
    assert "--audit-db" not in ARGS
    env = {e["name"]: e for e in SERVER["env"]}
    assert env["CASEROUTE_AUDIT_DB"]["valueFrom"] == {
        "secretKeyRef": {"name": "caseroute-audit-db", "key": "url"}
    }
    [secret] = documents("secrets.example.yaml")
    assert (secret["metadata"]["name"], secret["stringData"]) == ("caseroute-audit-db", {"url": ""})


def test_every_replica_refuses_a_stale_now_as_the_single_pod_does() -> None:
    """--max-now-skew 300 as in the single-pod manifest: a stale now cannot pass a licence."""
    single = documents_of(REPO_ROOT / "deploy" / "kubernetes" / "deployment.yaml")[0]
    single_args: list[str] = single["spec"]["template"]["spec"]["containers"][0]["args"]
    single_skew = single_args[single_args.index("--max-now-skew") + 1]
    assert ("--max-now-skew" in ARGS, single_skew) == (True, "300")
    assert flag("--max-now-skew") == single_skew


def test_several_replicas_roll_without_ever_dropping_below_the_count() -> None:
    """Three replicas, RollingUpdate with no unavailable pod, a PDB keeping two, no SQLite claim."""
    spec = DEPLOYMENT["spec"]
    assert (spec["replicas"], spec["strategy"]) == (
        3,
        {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
    )
    [pdb] = documents("pdb.yaml")
    assert pdb["spec"]["minAvailable"] == 2
    assert pdb["spec"]["selector"]["matchLabels"].items() <= LABELS.items()
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in POD["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert claims == ["caseroute-rulesets"]


def test_every_replica_serves_one_shared_rulesets_volume_it_polls() -> None:
    """--rulesets is the ReadWriteMany claim's mount, seeded from the image, polled every 2 s."""
    [claim] = documents("rulesets-pvc.yaml")
    assert (claim["metadata"]["name"], claim["spec"]["accessModes"]) == (
        "caseroute-rulesets",
        ["ReadWriteMany"],
    )
    mounts = {m["name"]: m["mountPath"] for m in SERVER["volumeMounts"]}
    assert flag("--rulesets") == mounts["rulesets"]
    assert flag("--reload-interval") == "2"
    seed = next(c for c in POD["initContainers"] if c["name"] == "seed-rulesets")
    assert seed["command"] == ["cp", "-R", "-n", "/app/rulesets/.", mounts["rulesets"] + "/"]


def test_a_headless_service_for_round_robin_and_a_cluster_ip_for_a_proxy() -> None:
    """Both Services select the replicas on the grpc port; one is headless (clusterIP None)."""
    services = {s["metadata"]["name"]: s for s in documents("service.yaml")}
    assert services["caseroute-replicas"]["spec"]["clusterIP"] == "None"
    assert services["caseroute"]["spec"]["type"] == "ClusterIP"
    port = int(flag("--port"))
    for service in services.values():
        assert service["spec"]["selector"].items() <= LABELS.items()
        assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(port, "grpc")]
    readiness = SERVER["readinessProbe"]["grpc"]
    assert readiness == {"port": port, "service": ROUTING_SERVICE}


def test_the_database_service_and_the_same_key_for_every_replica() -> None:
    """caseroute-postgres names the primary; every replica reads one masking-key Secret."""
    [database] = documents("postgres-service.yaml")
    assert (database["metadata"]["name"], database["spec"]["type"]) == (
        "caseroute-postgres",
        "ExternalName",
    )
    secrets = {v["name"]: v["secret"]["secretName"] for v in POD["volumes"] if "secret" in v}
    assert secrets["audit-key"] == "caseroute-audit-key"
    key = PurePosixPath(flag("--audit-key-file"))
    assert key.name == "audit.key"


def test_the_kustomization_applies_every_manifest_but_the_secret_example() -> None:
    """kustomization.yaml lists each manifest file except secrets.example.yaml (never applied)."""
    listed = documents("kustomization.yaml")[0]["resources"]
    files = sorted(p.name for p in EXAMPLE.glob("*.yaml"))
    assert sorted(listed) == [
        f for f in files if f not in {"kustomization.yaml", "secrets.example.yaml"}
    ]
