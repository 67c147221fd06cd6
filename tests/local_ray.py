"""A real two-node Ray cluster on this machine, for tests and benchmarks/cluster_bench.py.

``with local_ray_cluster(tmp) as address:`` starts ``ray start --head`` and a second worker
node (``ray start --address=…``), each with one CPU and a small object store, on loopback addresses, and stops both
(their process groups, by id) on the way out, also after a failure. The nodes run this
checkout's code (``PYTHONPATH`` points at it), as every node of a real cluster must run the
same musicrec as the machine that scans.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAD_IP = "127.0.0.2"


def use_own_token() -> None:
    """Token authentication with a new token of this process's own, through the environment.

    The cluster's nodes and every driver in this process (and its children) use it, so ~/.ray is
    neither read nor written, and the GCS, which listens on every interface, takes no stranger.
    Call it before ``import ray``: Ray reads its authentication settings when it is imported.
    """
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    os.environ.pop("RAY_AUTH_TOKEN_PATH", None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ray_command() -> list[str]:
    # The ``ray`` script of this interpreter's environment; ``python -m ray.scripts.scripts`` is the same CLI.
    script = Path(sys.executable).with_name("ray")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ray.scripts.scripts"]


def _stop(process: subprocess.Popen) -> None:
    """Stop a ``ray start --block`` and everything it started (its own process group)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            # Ctrl-C: --block then kills the node's processes at exit at once (a SIGTERM to each would
            # have each shut down gracefully, some taking half a minute).
            os.kill(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # anything of that group left behind
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def _stop_with_parent() -> None:
    """In the child before exec: a Ctrl-C when this process dies, however it dies (Linux), so no node outlives it."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGINT)


def _wait_for_nodes(address: str, processes: list[subprocess.Popen], timeout: float, log: Path) -> None:
    """Wait until the cluster reports a live node per process (asked in a child: this process stays unconnected)."""
    count = len(processes)
    code = ("import ray, logging, sys; ray.init(address=sys.argv[1], logging_level=logging.ERROR, log_to_driver=False); "
            "print(sum(1 for n in ray.nodes() if n['Alive']))")
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        if processes[-1].poll() is not None:
            tail = log.read_text(errors="replace")[-1500:]
            raise RuntimeError(f"'ray start' exited with status {processes[-1].returncode}:\n{tail}")
        result = subprocess.run([sys.executable, "-c", code, address], capture_output=True, text=True,
                                timeout=max(5.0, deadline - time.monotonic()), env=_env())
        seen = result.stdout.strip() or result.stderr.strip()[-500:]
        if result.returncode == 0 and seen.isdigit() and int(seen) >= count:
            return
        time.sleep(0.5)
    raise RuntimeError(f"the local Ray cluster at {address} did not show {count} nodes in {timeout:g} s: {seen}")


def _env() -> dict[str, str]:
    env = dict(os.environ)  # with the cluster's token (RAY_AUTH_*), set by local_ray_cluster
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    return env


@contextlib.contextmanager
def local_ray_cluster(workdir: Path, *, object_store_mb: int = 150, timeout: float = 90.0):
    """A head node (127.0.0.2) and one worker node (127.0.0.1), one CPU each; yields the head's ``host:port``.

    Parameters
    ----------
    workdir : Path
        The output of ``ray start`` goes there; Ray's own session folder is a new short folder in /tmp,
        removed at the end: nothing of another Ray on this machine is touched.
    object_store_mb : int
        Each node's object store (small: this machine is shared).
    timeout : float
        Seconds for the nodes to come up.
    """
    port = free_port()
    # Ray replaces a head's 127.0.0.1 by the machine's outward address; 127.0.0.2 is loopback too and
    # kept as given. The worker node then reaches it, and is reached, on 127.0.0.1.
    address = f"{HEAD_IP}:{port}"
    # Ray's socket paths must fit in 107 bytes: its session folder goes in a short one of its own.
    temp = Path(tempfile.mkdtemp(prefix="mrray", dir="/tmp" if os.path.isdir("/tmp") else None))
    common = ["--block", "--num-cpus=1", f"--object-store-memory={object_store_mb * 1_000_000}",
              "--disable-usage-stats"]
    processes: list[subprocess.Popen] = []
    logs = []
    if os.environ.get("RAY_AUTH_MODE") != "token" or not os.environ.get("RAY_AUTH_TOKEN"):
        raise RuntimeError("call local_ray.use_own_token() before Ray is imported")
    try:
        for name, args in (("head", ["--head", f"--port={port}", f"--node-ip-address={HEAD_IP}",
                                      "--include-dashboard=false",
                                      f"--temp-dir={temp}", f"--ray-client-server-port={free_port()}"]),
                           ("worker", [f"--address={address}"])):
            log = open(Path(workdir) / f"ray-{name}.log", "wb")
            logs.append(log)
            processes.append(subprocess.Popen(_ray_command() + ["start", *args, *common], stdout=log,
                                              stderr=subprocess.STDOUT, env=_env(), start_new_session=True,
                                              preexec_fn=_stop_with_parent))
            _wait_for_nodes(address, processes, timeout, Path(log.name))
        yield address
    finally:
        for process in reversed(processes):
            _stop(process)
        for log in logs:
            log.close()
        shutil.rmtree(temp, ignore_errors=True)
