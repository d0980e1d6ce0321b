"""Nothing opens to the network by default: every process of deploy/Procfile binds loopback unless a
host is given, checked on the expanded command lines and on the socket a real webserver listens on."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROCFILE = REPO / "deploy" / "Procfile"
LOOPBACK = {"127.0.0.1", "::1"}


def procfile_commands() -> dict[str, str]:
    lines = [line.partition(":") for line in PROCFILE.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return {name.strip(): command.strip() for name, _, command in lines}


def without_tradepipe_hosts(**extra: str) -> dict[str, str]:
    """The environment of a Procfile line started by hand, outside `make deploy`: no host, no port."""
    env = {k: v for k, v in os.environ.items() if not (k.startswith("TRADEPIPE_") and k.endswith(("_HOST", "_PORT")))}
    return {**env, **extra}


def expanded(command: str, env: dict[str, str]) -> list[str]:
    """The arguments the shell gives the process, as honcho starts the line (sh -c)."""
    completed = subprocess.run(["/bin/sh", "-c", f"printf '%s\\n' {command}"], env=env, capture_output=True, text=True, check=True)
    return completed.stdout.splitlines()


@pytest.mark.parametrize("process", ["code", "webserver"])
def test_every_listening_procfile_line_binds_loopback_without_a_host(process: str) -> None:
    arguments = expanded(procfile_commands()[process], without_tradepipe_hosts())
    assert arguments[arguments.index("-h") + 1] == "127.0.0.1"
    port = arguments[arguments.index("-p") + 1]
    assert port.isdigit(), arguments
    # an explicit host is used as given
    given = expanded(procfile_commands()[process], without_tradepipe_hosts(TRADEPIPE_WEBSERVER_HOST="0.0.0.0", TRADEPIPE_CODE_SERVER_HOST="0.0.0.0"))
    assert given[given.index("-h") + 1] == "0.0.0.0"


def test_the_daemon_listens_on_nothing() -> None:
    assert "-h" not in expanded(procfile_commands()["daemon"], without_tradepipe_hosts())


def _listening(port: int) -> set[str]:
    """Addresses with a TCP socket in LISTEN on ``port``, from /proc/net/tcp and tcp6."""
    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, _, hex_port = local.partition(":")
            if state != "0A" or int(hex_port, 16) != port:
                continue
            raw = bytes.fromhex(address)
            # the kernel prints each 32-bit word in host (little-endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found.add(socket.inet_ntop(family, raw))
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads the listening sockets from /proc (Linux)")
def test_the_webserver_started_from_the_procfile_without_a_host_listens_on_loopback_only(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = without_tradepipe_hosts(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        DAGSTER_HOME=str(tmp_path), TRADEPIPE_WEBSERVER_PORT=str(port),
        # the workspace names the code server by these; none runs, the UI starts and shows the location's error
        TRADEPIPE_CODE_SERVER_HOST="127.0.0.1", TRADEPIPE_CODE_SERVER_PORT="9",
    )
    log = tmp_path / "webserver.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["/bin/sh", "-c", f"exec {procfile_commands()['webserver']}"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240  # a bound on a busy machine, not a measured time
        while not (addresses := _listening(port)):
            assert process.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, "webserver did not listen within 240 s:\n" + log.read_text()[-2000:]
            time.sleep(0.5)
        assert addresses <= LOOPBACK, addresses
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
