"""Joining or starting Ray without reaching beyond this machine unless asked to.

Ray's head probes cloud metadata addresses (169.254.169.254, metadata.google.internal) to report which cloud
it runs on, unless a bootstrap config names the provider. A local start therefore turns usage stats off, starts
no dashboard, binds to 127.0.0.1 and writes ~/ray_bootstrap_config.yaml with `provider: {type: local}` when
there is none."""

from __future__ import annotations

import os
from pathlib import Path

from mmsearch.errors import MissingExtra, MMSearchError

BOOTSTRAP = Path("~/ray_bootstrap_config.yaml")
_BOOTSTRAP_TEXT = ("# Written by mmsearch: tells Ray it runs on a local machine, so it never asks a cloud\n"
                   "# metadata address which cloud it is on.\nprovider:\n  type: local\n")


def require_ray() -> None:
    try:
        import lance_ray  # noqa: F401
        import ray  # noqa: F401
    except ImportError:
        raise MissingExtra("--ray needs Ray Data and lance-ray: pip install 'mmsearch[scale]'") from None


def connect(address: str, actors: int = 2) -> str:
    """auto: join RAY_ADDRESS if set, else start Ray here (loopback only); ray://host:port: join that cluster."""
    require_ray()
    import ray

    if ray.is_initialized():
        return "already connected"
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # read by the processes ray.init starts
    quiet = {"include_dashboard": False, "configure_logging": False, "log_to_driver": False}
    if address == "auto" and not os.environ.get("RAY_ADDRESS"):
        local_bootstrap_config()
        # one CPU per model actor and at least one left for the decode tasks (logical CPUs: scheduling only)
        ray.init(_node_ip_address="127.0.0.1", num_cpus=max(os.cpu_count() or 1, actors + 1), **quiet)
        return "local Ray on 127.0.0.1"
    target = os.environ["RAY_ADDRESS"] if address == "auto" else address
    if not (target.startswith("ray://") or target.count(":") == 1):
        raise MMSearchError(f"--ray {address}: give auto or ray://HOST:PORT (the head's client port, 10001)")
    try:
        ray.init(address=target, **{k: v for k, v in quiet.items() if k != "include_dashboard"})
    except ConnectionError as exc:
        raise MMSearchError(f"--ray {target}: cannot reach the Ray cluster ({exc})") from None
    return f"Ray cluster at {target}"


def local_bootstrap_config(path: Path = BOOTSTRAP) -> Path:
    target = path.expanduser()
    if not target.exists():
        target.write_text(_BOOTSTRAP_TEXT)
    return target


def shutdown() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
