"""The default worker count follows the container's CPU quota (cgroup v1 and v2), not the host."""

from pathlib import Path

import pytest

from caseroute.grpc_api.supervisor import default_workers, quota_cpus


def _files(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "200000 100000\n"}, 2),
        ({"cpu.max": "150000 100000\n"}, 2),
        ({"cpu.max": "50000 100000\n"}, 1),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3),
        (
            {"cpu,cpuacct/cpu.cfs_quota_us": "250000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000"},
            3,
        ),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({"cpu.max": "garbage\n"}, None),
        ({}, None),
    ],
)
def test_quota_cpus_reads_cgroup_v2_then_v1(
    tmp_path: Path, files: dict[str, str], expected: int | None
) -> None:
    """quota/period rounded up; `max`, -1, missing or malformed files mean no quota."""
    assert expected == quota_cpus(_files(tmp_path, files))


def test_default_workers_is_the_quota_not_the_host_cores(tmp_path: Path) -> None:
    """A 2-CPU quota on a 64-core host gives 2 workers."""
    root = _files(tmp_path, {"cpu.max": "200000 100000\n"})
    assert default_workers(root, cores=lambda: 64) == 2


def test_default_workers_without_quota_is_the_cores(tmp_path: Path) -> None:
    """No quota: one worker per usable core."""
    assert default_workers(tmp_path, cores=lambda: 64) == 64


def test_default_workers_never_exceeds_the_cores(tmp_path: Path) -> None:
    """A quota above the cores (16 CPUs, 1 usable core) still gives 1 worker."""
    root = _files(tmp_path, {"cpu.max": "1600000 100000\n"})
    assert default_workers(root, cores=lambda: 1) == 1
