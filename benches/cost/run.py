#!/usr/bin/env python3
"""What Gatehouse costs to run on AWS, per request and per month, measured on the real server.

    python3 benches/cost/run.py [--out DIR] [--pending-cap N]

1. walk.py: starts moto (tests/moto_serial.py) on a free loopback port and a DynamoDB-mode
   `gatehouse serve` behind a recording proxy, walks one MCP connection, and records every
   DynamoDB call with the sizes of the items it touched (calls.json, items.json, logs.json).
2. units.py: read/write request units per request (steps.json).
3. model.py: the monthly cost at 1,000 / 100,000 / 10,000,000 connections (model.json).

Prints the per-request units, the cost tables and the assumptions' sensitivity, and writes them
to report.txt in the output directory (default: a new temporary directory, printed). These
figures are the README's "Cost on paper" section.

Needs the test venv (boto3, moto; `./tests/run` creates it at $GATEHOUSE_VENV or .venv) and the
debug `gatehouse` binary: $GATEHOUSE_BIN, else $CARGO_TARGET_DIR/debug/gatehouse (built with
`cargo build -p gatehouse` if missing). Reports only; asserts nothing about cost.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = Path(__file__).resolve().parents[2]


def ensure_venv() -> None:
    """Re-runs this script under the test venv's Python unless boto3 and moto import here."""
    try:
        import boto3  # noqa: F401
        import moto  # noqa: F401
        return
    except ImportError:
        pass
    venv = Path(os.environ.get("GATEHOUSE_VENV", REPO / ".venv"))
    python = venv / "bin" / "python"
    if not python.is_file() or Path(sys.executable).resolve() == python.resolve():
        sys.exit(f"boto3 and moto are missing and there is no test venv at {venv}: run "
                 "./tests/run once, or set GATEHOUSE_VENV")
    os.execv(python, [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])


def gatehouse_binary() -> Path:
    """The debug binary the black-box tests use; built if it is not there. Used in place:
    the binary's name matters to it (`gatehouse serve`), so it is never copied or renamed."""
    if os.environ.get("GATEHOUSE_BIN"):
        path = Path(os.environ["GATEHOUSE_BIN"])
        if not os.access(path, os.X_OK):
            sys.exit(f"GATEHOUSE_BIN={path} is not an executable")
        return path
    target = Path(os.environ.get("CARGO_TARGET_DIR", "target"))
    path = (target if target.is_absolute() else REPO / target) / "debug" / "gatehouse"
    if not os.access(path, os.X_OK):
        print(f"{path} missing: cargo build -p gatehouse", flush=True)
        subprocess.run(["cargo", "build", "-p", "gatehouse"], cwd=REPO, check=True)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_moto(log: Path) -> tuple[subprocess.Popen, str]:
    """moto serving one request at a time (tests/moto_serial.py), on a free loopback port.
    Another process can take the port between the probe and moto's bind, so a moto that exits
    at start is tried again on another port."""
    for _ in range(3):
        port = free_port()
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, str(REPO / "tests" / "moto_serial.py"), "127.0.0.1", str(port)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if port_open(port):
                return proc, f"http://127.0.0.1:{port}"
            time.sleep(0.1)
        stop(proc)
    sys.exit(f"moto did not start; see {log}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def measure(binary: Path, out: Path, pending_cap: int | None) -> dict:
    import walk  # needs the venv's boto3 and the test harness: imported once both are there

    moto, endpoint = start_moto(out / "moto.log")
    try:
        return walk.run(binary, endpoint, out, pending_cap)
    finally:
        stop(moto)


def report(measured: dict, out: Path) -> str:
    import model
    import units

    steps = units.per_step(measured["calls"])
    (out / "steps.json").write_text(json.dumps(steps, indent=1))
    result = model.model(steps, measured["logs"], measured["calls"])
    (out / "model.json").write_text(json.dumps(result, indent=1))
    sizes = units.item_sizes(measured["calls"], measured["items"])
    return "\n\n".join([
        "DynamoDB calls and request units per request (tenant and keys cached):",
        units.format_steps(steps), units.format_sizes(sizes),
        "Per request: function memory, calls, units, billed ms (assumed), log bytes:",
        model.format_model(result)]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="directory for the JSON outputs "
                        "(default: a new temporary directory)")
    parser.add_argument("--pending-cap", type=int, help="GATEHOUSE_PENDING_CLIENT_CAP of the "
                        "measured server (default: the server's default; 0 turns the cap off)")
    args = parser.parse_args()
    ensure_venv()
    sys.path.insert(0, str(HERE))
    # A plain kill must still stop moto and the server: turn it into an exception so every
    # `finally` runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    out = args.out or Path(tempfile.mkdtemp(prefix="gatehouse-cost-"))
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    print(f"output directory: {out}", flush=True)
    binary = gatehouse_binary()
    measured = measure(binary, out, args.pending_cap)
    text = report(measured, out)
    (out / "report.txt").write_text(text)
    print(text, end="")
    print(f"\n{len(measured['calls'])} DynamoDB calls, {len(measured['items'])} items; "
          f"binary {binary}; outputs in {out}")


if __name__ == "__main__":
    main()
