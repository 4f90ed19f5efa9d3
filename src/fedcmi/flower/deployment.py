"""A local TLS Flower deployment (SuperLink + SuperNodes on 127.0.0.1) for the tests and
``fedcmi bench engines``. Every process starts in its own session, so stopping kills
exactly the process groups started here, children included, also when a run fails."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager, suppress
from pathlib import Path

from fedcmi.errors import RunFailure

REPO = Path(__file__).resolve().parents[3]  # the source checkout holding pyproject.toml
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RunFailure(f"process exited early; log:\n{log.read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise TimeoutError(f"port {port} did not open in {timeout} s; log:\n{log.read_text()[-2000:]}")


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def tls_deployment(
    workdir: Path,
    num_nodes: int,
    certs: dict[str, Path],
    data_dir: Path,
    node_keys: list[tuple[Path, Path]] | None = None,
    intruder_key: Path | None = None,
):
    """Yield (env, connection name) for `flwr run` against a fresh TLS deployment.

    With ``node_keys`` (one (private, public) OpenSSH key pair per node, see
    :func:`fedcmi.flower.certs.make_node_keys`) the SuperLink only admits SuperNodes whose
    public key was registered (``--enable-supernode-auth``); every node's key is
    registered with ``flwr supernode register`` before it starts. ``intruder_key``
    starts one more SuperNode with that unregistered private key, which the SuperLink
    must refuse."""
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "FLWR_HOME": str(workdir / "flwr-home"),
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        "FEDCMI_CACHE": str(data_dir),
    }
    procs: list[subprocess.Popen] = []

    def start(name: str, args: list[str]) -> subprocess.Popen:
        log = workdir / f"{name}.log"
        proc = subprocess.Popen(
            args,
            stdout=open(log, "w"),  # noqa: SIM115 - the child process owns it
            stderr=subprocess.STDOUT,
            env=env,
            cwd=workdir,
            start_new_session=True,
        )
        procs.append(proc)
        return proc

    try:
        port = free_port()
        link = start(
            "superlink",
            [
                str(BIN / "flower-superlink"),
                "--ssl-ca-certfile",
                str(certs["ca"]),
                "--ssl-certfile",
                str(certs["server_cert"]),
                "--ssl-keyfile",
                str(certs["server_key"]),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--disable-runtime-dependency-installation",
                *(["--enable-supernode-auth"] if node_keys else []),
            ],
        )
        wait_for_port(port, 90, link, workdir / "superlink.log")
        home = workdir / "flwr-home"
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.toml").write_text(
            '[superlink]\ndefault = "tls-local"\n\n[superlink.tls-local]\n'
            f'address = "127.0.0.1:{port}"\nroot-certificates = "{certs["ca"]}"\n'
        )
        for _, public in node_keys or []:
            register_node(env, "tls-local", public)

        def supernode(name: str, node_config: str, private: Path | None) -> None:
            auth = ["--auth-supernode-private-key", str(private)] if private else []
            start(
                name,
                [
                    str(BIN / "flower-supernode"),
                    "--superlink",
                    f"127.0.0.1:{port}",
                    "--root-certificates",
                    str(certs["ca"]),
                    "--port",
                    str(free_port()),
                    "--node-config",
                    node_config,
                    *auth,
                ],
            )

        for i in range(num_nodes):
            config = f"partition-id={i} num-partitions={num_nodes} data-dir='{data_dir}'"
            supernode(f"supernode{i}", config, node_keys[i][0] if node_keys else None)
        if intruder_key is not None:
            config = f"partition-id=0 num-partitions={num_nodes} data-dir='{data_dir}'"
            supernode("intruder", config, intruder_key)
        yield env, "tls-local"
    finally:
        stop(procs)


def flwr_run(
    env: dict,
    connection: str,
    config: Path | None,
    out: Path,
    timeout: float,
    resume: bool = False,
) -> subprocess.CompletedProcess:
    """``flwr run`` of this project against ``connection``, streaming until the run ends:
    ``config`` into the new run folder ``out``, or (``resume``) the interrupted run in
    ``out`` continued from its checkpoint."""
    run_config = f"resume='{out}'" if resume else f"config='{config}' out='{out}'"
    return subprocess.run(
        [str(BIN / "flwr"), "run", str(REPO), connection, "--stream", "--run-config", run_config],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def register_node(env: dict, connection: str, public_key: Path) -> None:
    """``flwr supernode register``: admit the SuperNode holding this key's private half."""
    result = subprocess.run(
        [str(BIN / "flwr"), "supernode", "register", str(public_key), connection],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RunFailure(f"flwr supernode register failed: {result.stdout}{result.stderr}")


def flwr_submit(env: dict, connection: str, config: Path, out: Path) -> int:
    """Start a run without waiting for it; returns its run id (for ``flwr_stop``)."""
    result = subprocess.run(
        [
            str(BIN / "flwr"),
            "run",
            str(REPO),
            connection,
            "--format",
            "json",
            "--run-config",
            f"config='{config}' out='{out}'",
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    reply = json.loads(result.stdout[result.stdout.index("{") :])
    if not reply.get("success"):
        raise RunFailure(f"flwr run was refused: {result.stdout[-2000:]}{result.stderr[-2000:]}")
    return int(reply["run-id"])


def flwr_stop(env: dict, connection: str, run_id: int) -> subprocess.CompletedProcess:
    """Stop a run on the SuperLink (its ServerApp ends wherever it is)."""
    return subprocess.run(
        [str(BIN / "flwr"), "stop", str(run_id), connection],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
