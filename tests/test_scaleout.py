"""The scale-out checks (an S3 server, Ray) run in a loopback-only network namespace: `unshare -n -p`, then
`ip link set lo up`, then pytest on tests/netns. Anything there that tried to reach beyond loopback (Ray's
cloud-metadata probes, a mistyped endpoint) fails instead of leaving the machine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# A network namespace with loopback only, and a PID namespace: when the checks end, the kernel ends every process
# they started (Ray's workers put themselves in sessions of their own, so killing a process group misses them).
UNSHARE = ["unshare", "--net", "--pid", "--fork", "--mount-proc", "--kill-child"]  # a timeout ends them all
pytest.importorskip("moto", reason="the scale-out checks need the test extra (moto, ray, lance-ray)")


def _namespace_allowed() -> str | None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare or ip (util-linux, iproute2) not installed"
    probe = subprocess.run([*UNSHARE, "sh", "-c", "ip link set lo up"], capture_output=True, text=True)
    return None if probe.returncode == 0 else f"network namespaces not permitted here: {probe.stderr.strip()}"


def run_in_namespace(check: str, timeout: int = 900) -> None:
    why = _namespace_allowed()
    if why:
        pytest.skip(why)
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-o", "python_files=check_*.py",
           "-o", "addopts=", f"tests/netns/{check}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}
    shell = "ip link set lo up && exec " + " ".join(cmd)
    done = subprocess.run([*UNSHARE, "sh", "-c", shell], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    # the failure itself (before pytest's "Captured log" sections, which Ray's logs fill) and the summary
    failure = done.stdout.split("- Captured")[0][-6000:]
    tail = failure + "\n...\n" + (done.stdout + done.stderr)[-1500:]
    assert done.returncode == 0, tail
    assert " passed" in done.stdout and "skipped" not in done.stdout.splitlines()[-1], tail


def test_a_library_on_s3() -> None:
    run_in_namespace("check_library_s3.py")


def test_index_with_ray_equals_the_single_process_indexer() -> None:
    run_in_namespace("check_ray_index.py")


def test_ray_faults_races_and_the_index_job() -> None:
    run_in_namespace("check_ray_faults.py")
