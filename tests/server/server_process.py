"""Starts `alspec serve` on a free loopback port for the server tests and talks HTTP to it (stdlib only)."""

import http.client
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

SOURCE_DIR = Path(os.environ.get("ALSPEC_SOURCE_DIR", Path(__file__).resolve().parents[2]))
MODEL = SOURCE_DIR / "assets" / "models" / "stories260K.gguf"


def alspec_bin() -> str:
    b = os.environ.get("ALSPEC_BIN")
    if not b:
        raise RuntimeError("set ALSPEC_BIN to the alspec binary (ctest does)")
    return b


def start_and_read_port(cmd, env, timeout: float, new_session: bool = False):
    """Starts `alspec serve ... --port 0` (or a launcher running it); returns (process, port,
    stderr lines so far) once the start-up line names the port. Kills it and raises if the line
    does not come within `timeout` seconds."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=new_session)
    lines = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if m:
            return proc, int(m.group(1)), lines
    if new_session:
        os.killpg(proc.pid, signal.SIGKILL)  # a launcher and everything it started
    else:
        proc.kill()
    proc.wait(timeout=10)
    raise RuntimeError("server did not start: " + "".join(lines))


class ServerProcess:
    """`alspec serve --port 0 ...`; the chosen port is read from the start-up line on stderr."""

    def __init__(self, *extra_args: str, model: Path = MODEL, start_timeout: float = 30.0):
        self.args = [alspec_bin(), "serve", "--model", str(model), "--host", "127.0.0.1", "--port", "0",
                     # One thread per slot: the shared 2-core test machine is oversubscribed, and
                     # results do not depend on the thread count.
                     "--threads", "1", *extra_args]
        # Under AddressSanitizer, freed memory sits in a 256 MB quarantine that would read as RSS
        # growth in the load test; keep it small (ignored by normal builds).
        env = {**os.environ, "ASAN_OPTIONS": "quarantine_size_mb=8:" + os.environ.get("ASAN_OPTIONS", "")}
        self.proc, self.port, self.stderr_lines = start_and_read_port(self.args, env, start_timeout)

    # --- HTTP ---------------------------------------------------------------------------------
    def request(self, method: str, path: str, body=None, raw: bytes | None = None, timeout: float = 60.0,
                headers: dict | None = None):
        """Returns (status, headers, body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
            h = {"Content-Type": "application/json"}
            h.update(headers or {})
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            conn.close()

    def post(self, path: str, body=None, **kw):
        status, _, data = self.request("POST", path, body, **kw)
        return status, json.loads(data) if data else None

    def get(self, path: str, **kw):
        status, headers, data = self.request("GET", path, **kw)
        if headers.get("Content-Type", "").startswith("application/json"):
            return status, json.loads(data)
        return status, data.decode()

    def stream(self, path: str, body: dict, timeout: float = 60.0):
        """POST with stream=true; returns the list of SSE data payloads (parsed JSON, or '[DONE]')."""
        status, headers, data = self.request("POST", path, {**body, "stream": True}, timeout=timeout)
        assert status == 200, data
        assert headers.get("Content-Type", "").startswith("text/event-stream")
        events = []
        for block in data.decode().split("\n\n"):
            if not block.strip():
                continue
            assert block.startswith("data: "), block
            payload = block[len("data: "):]
            events.append(payload if payload == "[DONE]" else json.loads(payload))
        return events

    # --- process ------------------------------------------------------------------------------
    def rss_kib(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def terminate(self, timeout: float = 30.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.kill()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
