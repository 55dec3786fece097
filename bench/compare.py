#!/usr/bin/env python3
"""Portcullis side by side with nginx: the driver behind bench/compare.sh.

compare.sh installs the tools, builds the release binary and the core's
bench, makes a scratch directory and calls `compare.py run`; everything else
happens here. Python 3.11, standard library only.

The servers (Portcullis, nginx) run pinned to one CPU (SERVER_CPU, default
0), the load generators to the other (CLIENT_CPU, default 1). Every process
this script starts gets its own process group, whose id is appended to
WORK/pgids so that compare.sh's EXIT trap can end it even if this script
dies; the script ends them itself on the way out too.

Besides `run`, two subcommands are the load generators that wrk cannot be,
started by `run` itself on the client CPU:

  storm       B4: a login storm at a fixed rate over many connections
  idle        B6: opens N keep-alive connections, one request each, and
              holds them idle while the server's memory is measured

B3's client (full TLS 1.3 handshakes, one request per new connection) is
native, examples/bench_handshakes.rs, which compare.sh builds and names in
HANDSHAKE_CLIENT_BIN: wrk and h2load resume TLS sessions when they reconnect,
and a Python client costs several times the servers' CPU per handshake.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import http.client
import itertools
import json
import os
import platform
import re
import resource
import secrets
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_PATH = "/1k.html"
PAGE_BYTES = 1024
BENCH_USER = "bench"
STORM_USER = "storm"
# B7's hooks, asked of the server and the core (bench/README.md, "B7"). Each
# row runs once its hook exists and says what it needs until then.
SESSIONS = 1_000_000
PRELOAD_KEY = "bench-preload-sessions"  # config key: make N sessions at start
CAPACITY_KEY = "session-capacity"  # config key: the session store's capacity
STORE_BENCH = "session_store"  # core/benches/session_store.rs
IDLE_WARM = 1_000  # B6: connections opened before the measured ones
B4_MIN_ROUNDS = 5  # B4's rounds, at least
# What limits a goal that runs on this machine have missed, and what was
# tried: written under the table when the goal is missed again.
KNOWN_LIMITS = {
    "B5": (
        "B5, browser request: the engine's parse path runs at about 1.25× raw httparse (callgrind, "
        "`valgrind --tool=callgrind <head_path bench> --profile`: 5,710 against 4,291 instructions per "
        "request, 1.33×). The difference is work httparse does not do: a record per field (its offsets, "
        "four checks that it lies inside the head, and the CRLF line end httparse does not check: about 37 "
        "instructions per field, 16 fields here), the framing rules (a name filter, then Host, Connection, "
        "Content-Length: about 320), one allocation and the copy of the head into the owned Request "
        "(about 230), and handing it out as an event (about 250). Tried, from 1.53×: one allocation per "
        "request instead of two, a head that arrives whole parsed straight from the caller's bytes, one "
        "pass over the fields, a table-driven name filter, a smaller event. Folding the filter into the "
        "record loop, fields in chunks of 64 and records written in place were no faster. Below 1.2× would "
        "take dropping the bounds checks (a guard against parser surprises) or keeping no field positions "
        "(re-scanning the head on each lookup), which moves the cost to every lookup the guard and the site "
        "make. The minimal request meets the goal."
    ),
}
STORM_NICE = 10  # B4: the login storm client's nice value on the client CPU


# ----- settings ---------------------------------------------------------------


def seconds(text: str) -> float:
    """`8s`, `500ms`, `2m` or a bare number of seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*", text)
    if not m:
        raise SystemExit(f"not a duration: {text!r} (use e.g. 8s, 500ms, 2m)")
    value = float(m.group(1))
    return value * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[m.group(2)]


@dataclass
class Plan:
    """What one run does; every field comes from an environment variable."""

    duration: float = 8.0  # DURATION: each measured run
    rounds: int = 3  # ROUNDS: A/B pairs per benchmark
    warmup: float = 2.0  # WARMUP: once per server and benchmark, unmeasured
    connections: int = 50  # CONNECTIONS: wrk's connections (B1, B2, B4)
    server_cpu: str = "0"  # SERVER_CPU
    client_cpu: str = "1"  # CLIENT_CPU
    handshake_clients: int = 16  # HANDSHAKE_CLIENTS: B3 client threads
    storm_conns: int = 128  # STORM_CONNS: B4 login connections
    storm_rate: int = 400  # STORM_RATE: B4 login attempts per second
    idle_conns: int = 10_000  # IDLE_CONNS: B6 connections
    only: set[str] = field(default_factory=set)  # ONLY=B1,B5: a subset

    @staticmethod
    def from_env() -> Plan:
        env = os.environ
        plan = Plan()
        plan.duration = seconds(env.get("DURATION", "8s"))
        plan.rounds = int(env.get("ROUNDS", "3"))
        plan.warmup = seconds(env.get("WARMUP", "2s"))
        plan.connections = int(env.get("CONNECTIONS", "50"))
        plan.server_cpu = env.get("SERVER_CPU", "0")
        plan.client_cpu = env.get("CLIENT_CPU", "1")
        plan.handshake_clients = int(env.get("HANDSHAKE_CLIENTS", "16"))
        plan.storm_conns = int(env.get("STORM_CONNS", "128"))
        plan.storm_rate = int(env.get("STORM_RATE", "400"))
        plan.idle_conns = int(env.get("IDLE_CONNS", "10000"))
        plan.only = {x.strip().upper() for x in env.get("ONLY", "").split(",") if x.strip()}
        if plan.duration < 1 or plan.rounds < 1:
            raise SystemExit("DURATION must be at least 1s and ROUNDS at least 1")
        return plan

    def wants(self, bench: str) -> bool:
        return not self.only or bench in self.only


# ----- processes --------------------------------------------------------------


class Procs:
    """Starts processes in their own process groups and ends them all."""

    def __init__(self, work: Path):
        self.work = work
        self.live: list[subprocess.Popen] = []

    def start(self, argv: list[str], log: Path, **kw) -> subprocess.Popen:
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv, stdout=kw.pop("stdout", out), stderr=out, start_new_session=True, **kw
            )
        with open(self.work / "pgids", "a") as f:
            f.write(f"{proc.pid}\n")
        self.live.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=5)
            except (ProcessLookupError, PermissionError):
                pass
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc in self.live:
            self.live.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self.live):
            self.stop(proc)


def children(pid: int) -> list[int]:
    """Direct child processes of `pid` (nginx's worker)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def stat_fields(pid: int) -> list[str]:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2 :].split()


@dataclass
class Server:
    """A running server: its name, process, listeners and cookie."""

    name: str  # "portcullis" or "nginx"
    proc: subprocess.Popen
    plain_port: int | None = None
    tls_port: int | None = None
    cookie: dict[str, str] = field(default_factory=dict)  # "plain"/"tls" -> Cookie header

    def pids(self) -> list[int]:
        return [self.proc.pid, *children(self.proc.pid)]

    def cpu_seconds(self) -> float:
        """utime + stime of every process (each one's threads included)."""
        ticks = 0
        for pid in self.pids():
            fields = stat_fields(pid)
            ticks += int(fields[11]) + int(fields[12])
        return ticks / CLK_TCK

    def rss_bytes(self) -> int:
        total = 0
        for pid in self.pids():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        return total

    def open_fds(self) -> int:
        return sum(len(os.listdir(f"/proc/{pid}/fd")) for pid in self.pids())

    def alive(self) -> bool:
        return self.proc.poll() is None


class ServerHung(Exception):
    """A server stopped answering (or died) during a run."""

    def __init__(self, server: Server, during: str):
        super().__init__(f"{server.name} stopped answering during {during}")
        self.server = server
        self.during = during


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(
    port: int, proc: subprocess.Popen, log: Path, announce: str | None = None, most: float = 15.0
) -> None:
    """Waits until the server listens on `port`: its log shows `announce`
    when given, else a TCP connection succeeds. (Portcullis is watched
    through its log: a connection closed before its TLS handshake has been
    seen to hang its event loop, see the README of bench/.)"""
    deadline = time.monotonic() + most
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if announce is not None:
            if announce in log.read_text():
                return
        else:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                pass
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port} after {most:g} s:\n{log.read_text()[-3000:]}")


def run_quiet(argv: list[str], **kw) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, **kw)
    return (done.stdout + done.stderr).strip()


# ----- HTTP helpers -----------------------------------------------------------


def client_context() -> ssl.SSLContext:
    """TLS 1.3 only, no certificate check (the certificate is self-signed),
    no session reuse (Python resumes only when asked to)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def connection(port: int, tls: bool) -> http.client.HTTPConnection:
    if tls:
        return http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=client_context())
    return http.client.HTTPConnection("127.0.0.1", port, timeout=30)


def set_cookies(response: http.client.HTTPResponse) -> dict[str, str]:
    jar = {}
    for header in response.headers.get_all("Set-Cookie") or []:
        name, _, value = header.split(";", 1)[0].partition("=")
        jar[name.strip()] = value.strip()
    return jar


def prelogin(port: int, tls: bool) -> tuple[str, str]:
    """The login page's pre-login cookie (as a Cookie header) and its CSRF
    token. The token is a MAC of the cookie, so the pair can be reused."""
    conn = connection(port, tls)
    conn.request("GET", "/__login__", headers={"Accept": "text/html"})
    response = conn.getresponse()
    body = response.read().decode("utf-8", "replace")
    conn.close()
    jar = set_cookies(response)
    pre = [f"{k}={v}" for k, v in jar.items() if k.endswith("portcullis-pre")]
    token = re.search(r'name="csrf" value="([^"]*)"', body)
    if response.status != 200 or not pre or not token:
        raise SystemExit(f"login page: status {response.status}, cookies {list(jar)}, token {bool(token)}")
    return pre[0], token.group(1)


def login(port: int, tls: bool, user: str, password: str) -> str:
    """Logs in as a browser would; returns the session's Cookie header."""
    pre, token = prelogin(port, tls)
    conn = connection(port, tls)
    body = urllib.parse.urlencode({"username": user, "password": password, "csrf": token})
    conn.request(
        "POST",
        "/__login__",
        body=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": f"https://127.0.0.1:{port}",
            "Cookie": pre,
            "Accept": "text/html",
        },
    )
    response = conn.getresponse()
    response.read()
    conn.close()
    jar = set_cookies(response)
    session = [f"{k}={v}" for k, v in jar.items() if k in ("__Host-portcullis", "portcullis")]
    if response.status != 303 or not session:
        raise SystemExit(f"login as {user}: status {response.status}, cookies {list(jar)}")
    return session[0]


def fetch(port: int, tls: bool, cookie: str) -> tuple[int, int, str]:
    """GET the page with the cookie: status, body length, response head."""
    conn = connection(port, tls)
    conn.request("GET", PAGE_PATH, headers={"Cookie": cookie})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    head = f"HTTP/1.1 {response.status} {response.reason}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in response.getheaders()
    )
    return response.status, len(body), head


def read_response(sock) -> tuple[int, bytes]:
    """One response from a blocking socket (plain or TLS): status and head."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response head")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"\r\ncontent-length:[ \t]*(\d+)", head, re.I)
    need = int(length.group(1)) if length else 0
    while len(body) < need:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside the response body")
        body += chunk
    return int(head[9:12]), head


def get_request(port: int, cookie: str, close: bool) -> bytes:
    connection_header = "Connection: close\r\n" if close else ""
    return (
        f"GET {PAGE_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookie}\r\n"
        f"{connection_header}\r\n"
    ).encode()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ----- load generators (subcommands) ------------------------------------------


async def storm(args) -> dict:
    pre, token = prelogin(args.port, False)
    password = os.environ["STORM_PASSWORD"]  # not on the command line, where ps shows it
    body = urllib.parse.urlencode({"username": args.user, "password": password, "csrf": token}).encode()
    request = (
        f"POST /__login__ HTTP/1.1\r\nHost: 127.0.0.1:{args.port}\r\n"
        f"Origin: https://127.0.0.1:{args.port}\r\nCookie: {pre}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + args.duration
    slots = itertools.count()
    latencies: dict[str, list[float]] = {}
    counts = {"errors": 0, "sent": 0}

    async def one_connection() -> None:
        reader = writer = None
        while True:
            at = start + next(slots) / args.rate
            if at >= deadline:
                break
            if at > loop.time():
                await asyncio.sleep(at - loop.time())
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
                began = time.perf_counter()
                writer.write(request)
                counts["sent"] += 1
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"\r\ncontent-length:[ \t]*(\d+)", head, re.I)
                await reader.readexactly(int(length.group(1)) if length else 0)
                latencies.setdefault(head[9:12].decode(), []).append(time.perf_counter() - began)
                if re.search(rb"\r\nconnection:[ \t]*close", head, re.I):
                    writer.close()
                    writer = None
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                counts["errors"] += 1
                if writer is not None:
                    writer.close()
                writer = None
        if writer is not None:
            writer.close()

    tasks = [asyncio.create_task(one_connection()) for _ in range(args.conns)]
    _, pending = await asyncio.wait(tasks, timeout=args.duration + 5)
    for task in pending:
        task.cancel()
    elapsed = loop.time() - start
    return {
        "seconds": elapsed,
        "sent": counts["sent"],
        "errors": counts["errors"],
        "unanswered": len(pending),
        "statuses": {
            status: {
                "count": len(v),
                "p50_ms": percentile(v, 0.50) * 1e3,
                "p99_ms": percentile(v, 0.99) * 1e3,
                "max_ms": max(v) * 1e3,
            }
            for status, v in sorted(latencies.items())
        },
    }


def cmd_storm(args) -> None:
    """B4's login storm: `rate` login posts a second over `conns`
    keep-alive connections (each waits for its answer before the next), all
    with one pre-login cookie and its CSRF token; prints one JSON line."""
    print(json.dumps(asyncio.run(storm(args))))


def cmd_idle(args) -> None:
    """B6's client: opens `warm` connections, sends one request on each and
    reads the answer, prints one JSON line and waits for a line on stdin;
    then does the same with `n` more; holds them all until a last line
    arrives on stdin."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ctx = client_context() if args.tls else None
    request = get_request(args.port, args.cookie, close=False)
    held = []
    failures: dict[str, int] = {}

    def open_batch(count: int) -> None:
        start, before = time.monotonic(), len(held)
        for _ in range(count):
            try:
                raw = socket.create_connection(("127.0.0.1", args.port), timeout=10)
                # Closing with a reset at the end leaves no TIME_WAIT behind.
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                sock = ctx.wrap_socket(raw) if ctx else raw
                sock.sendall(request)
                status, _ = read_response(sock)
                if status != 200:
                    failures[str(status)] = failures.get(str(status), 0) + 1
                held.append(sock)
            except (OSError, ValueError) as e:
                failures[type(e).__name__] = failures.get(type(e).__name__, 0) + 1
        opened = time.monotonic() - start
        print(json.dumps({"ready": len(held) - before, "failures": failures, "open_seconds": opened}), flush=True)
        sys.stdin.readline()

    open_batch(args.warm)
    open_batch(args.n)
    for sock in held:
        sock.close()


# ----- the benchmark ----------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def parse_wrk(text: str) -> dict:
    def number(pattern: str, default=None):
        m = re.search(pattern, text, re.M)
        return float(m.group(1)) if m else default

    units = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m), ([\d.]+)(B|KB|MB|GB) read", text)
    if not p99 or not done:
        raise SystemExit(f"cannot read wrk's output:\n{text}")
    size = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}[done.group(5)]
    requests = int(done.group(1))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return {
        "rps": number(r"^Requests/sec:\s+([\d.]+)"),
        "requests": requests,
        "p99_ms": float(p99.group(1)) * units[p99.group(2)],
        "bytes_per_response": float(done.group(4)) * size / max(requests, 1),
        "non_2xx_3xx": int(number(r"Non-2xx or 3xx responses: (\d+)", 0)),
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
    }


class Bench:
    def __init__(self, args):
        self.plan = Plan.from_env()
        self.work = Path(args.work).resolve()
        self.bin = Path(args.bin).resolve()
        self.bench_dir = Path(__file__).resolve().parent
        self.repo = self.bench_dir.parent
        self.procs = Procs(self.work)
        self.www = self.work / "www"
        self.passwords = {BENCH_USER: secrets.token_urlsafe(18), STORM_USER: secrets.token_urlsafe(18)}
        self.rows: list[list[str]] = []
        self.runs: list[str] = []  # every measured run, for the appendix
        self.notes: list[str] = []
        self.tls_params: dict[str, str] = {}
        self.started = time.monotonic()
        self.load_at_start = os.getloadavg()[0]

    # --- setup ---

    def log(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", flush=True)

    def setup(self) -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        self.nofile = hard
        if hard < self.plan.idle_conns + IDLE_WARM + 200:
            self.plan.idle_conns = max(100, hard - IDLE_WARM - 200)
            self.notes.append(f"IDLE_CONNS lowered to {self.plan.idle_conns}: the open-files limit is {hard}")
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", str(self.work / "key.pem"), "-out", str(self.work / "cert.pem"),
                "-days", "90", "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ],
            check=True, capture_output=True,
        )  # fmt: skip
        # nginx's worker runs as another user (www-data) when started as root.
        os.chmod(self.work, 0o711)
        self.www.mkdir(mode=0o755)
        page = "<!doctype html>\n<html><head><title>1 KiB</title></head><body>\n<p>"
        tail = "</p>\n</body></html>\n"
        filler = "Portcullis benchmark page. " * 40
        page = page + filler[: PAGE_BYTES - len(page) - len(tail)] + tail
        assert len(page.encode()) == PAGE_BYTES
        (self.www / PAGE_PATH.lstrip("/")).write_text(page)
        os.chmod(self.www / PAGE_PATH.lstrip("/"), 0o644)
        users = self.work / "users.passwd"
        for user, password in self.passwords.items():
            subprocess.run(
                [str(self.bin), "passwd", "--file", str(users), "add", user, "--password-stdin"],
                input=password + "\n", text=True, check=True, capture_output=True,
            )  # fmt: skip

    def portcullis_config(self, label: str, tls: bool, port: int, extra: list[str]) -> Path:
        config = self.work / f"portcullis-{label}.toml"
        lines = [
            f'{"https" if tls else "http"} = "127.0.0.1:{port}"',
            'users = "users.passwd"',
            'root = "www"',
            "access-log = false",
            f"max-connections = {self.plan.idle_conns + 5000}",
            f"max-connections-per-client = {self.plan.idle_conns + 5000}",
            "workers = 1",
        ]
        if tls:
            lines += ['tls-cert = "cert.pem"', 'tls-key = "key.pem"']
        config.write_text("\n".join(lines + extra) + "\n")
        return config

    def start_portcullis(self, label: str, tls: bool, extra: list[str] = (), most: float = 15.0) -> Server:
        port = free_port()
        config = self.portcullis_config(label, tls, port, list(extra))
        log = self.work / f"portcullis-{label}.log"
        proc = self.procs.start(
            ["taskset", "-c", self.plan.server_cpu, str(self.bin), "serve", "--config", str(config)], log
        )
        wait_listening(
            port, proc, log, f"listening on {'https' if tls else 'http'}://127.0.0.1:{port}/", most
        )
        server = Server("portcullis", proc, **({"tls_port": port} if tls else {"plain_port": port}))
        mode = "tls" if tls else "plain"
        server.cookie[mode] = login(port, tls, BENCH_USER, self.passwords[BENCH_USER])
        self.check_page(server, mode)
        return server

    def start_nginx(self, label: str, cookies: dict[str, str]) -> Server:
        plain, tls = free_port(), free_port()
        values = {
            "WORK": str(self.work),
            "WWW": str(self.www),
            "NAME": label,
            "NOFILE": str(self.nofile),
            "WORKER_CONNECTIONS": str(self.nofile),
            "HTTP_PORT": str(plain),
            "HTTPS_PORT": str(tls),
            "PLAIN_COOKIE": cookies["plain"],
            "TLS_COOKIE": cookies["tls"],
            "TLS13_SUITE": self.tls_params["portcullis suite"],
            "TLS_GROUP": self.tls_params["portcullis group"],
        }
        text = (self.bench_dir / "nginx.conf.template").read_text()
        for key, value in values.items():
            text = text.replace(f"@{key}@", value)
        if "@" in re.sub(r"#.*", "", text):
            raise SystemExit("nginx.conf.template: a @NAME@ left unfilled")
        config = self.work / f"nginx-{label}.conf"
        config.write_text(text)
        log = self.work / f"nginx-{label}.log"
        proc = self.procs.start(
            [
                "taskset",
                "-c",
                self.plan.server_cpu,
                "nginx",
                "-p",
                str(self.work),
                "-e",
                str(self.work / f"nginx-{label}-error.log"),
                "-c",
                str(config),
            ],
            log,
        )
        wait_listening(plain, proc, log)
        wait_listening(tls, proc, log)
        server = Server("nginx", proc, plain_port=plain, tls_port=tls, cookie=dict(cookies))
        self.check_page(server, "plain")
        self.check_page(server, "tls")
        return server

    def check_page(self, server: Server, mode: str) -> None:
        port = server.tls_port if mode == "tls" else server.plain_port
        status, length, head = fetch(port, mode == "tls", server.cookie[mode])
        if (status, length) != (200, PAGE_BYTES):
            raise SystemExit(f"{server.name} {mode}: GET {PAGE_PATH} gave {status} with {length} bytes")
        # And without the cookie the page is refused, so the check is real.
        status, _, _ = fetch(port, mode == "tls", "x=y")
        if status == 200:
            raise SystemExit(f"{server.name} {mode}: the page is served without a session")
        self.heads = getattr(self, "heads", {})
        self.heads[f"{server.name} {mode}"] = head

    def negotiated(self, port: int) -> tuple[str, str, str]:
        """Protocol, cipher suite and key-exchange group that an OpenSSL
        client (like wrk's) gets from the server on `port`."""
        out = run_quiet(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-brief"],
            input="", timeout=20,
        )  # fmt: skip
        proto = re.search(r"Protocol version: (\S+)", out)
        suite = re.search(r"Ciphersuite: (\S+)", out)
        group = re.search(r"(?:Peer|Server) Temp Key: ([^,\s]+)", out)
        if not (proto and suite and group):
            raise SystemExit(f"openssl s_client against port {port}:\n{out}")
        return proto.group(1), suite.group(1), group.group(1)

    # --- measuring ---

    def wrk(self, server: Server, mode: str, duration: float, tag: str) -> dict:
        port = server.tls_port if mode == "tls" else server.plain_port
        scheme = "https" if mode == "tls" else "http"
        argv = [
            "taskset", "-c", self.plan.client_cpu, "wrk", "-t1", f"-c{self.plan.connections}",
            f"-d{round(duration)}s", "--latency", "-H", f"Cookie: {server.cookie[mode]}",
            f"{scheme}://127.0.0.1:{port}{PAGE_PATH}",
        ]  # fmt: skip
        log = self.work / "wrk.log"
        before = server.cpu_seconds()
        proc = self.procs.start(argv, log, stdout=subprocess.PIPE)
        out, _ = proc.communicate(timeout=duration + 60)
        self.procs.live.remove(proc)
        after = server.cpu_seconds()
        text = out.decode()
        self.check_alive(server, mode, tag)
        result = parse_wrk(text)
        result["cpu_us_per_req"] = (after - before) * 1e6 / max(result["requests"], 1)
        if not tag.startswith("warm-up"):
            self.runs.append(
                f"{tag}: {result['rps']:,.0f} req/s, p99 {result['p99_ms']:.2f} ms, "
                f"{result['cpu_us_per_req']:.1f} µs CPU/req, {result['bytes_per_response']:.0f} B/response, "
                f"non-2xx/3xx {result['non_2xx_3xx']}, socket errors {result['socket_errors']}"
            )
            self.log(self.runs[-1])
        return result

    def wait_idle(self, server: Server, most: float = 15.0) -> None:
        """Waits (at most `most` seconds) until the server uses under 5% of
        a CPU."""
        deadline = time.monotonic() + most
        while time.monotonic() < deadline:
            before = server.cpu_seconds()
            time.sleep(0.5)
            if server.cpu_seconds() - before < 0.025:
                return

    def check_alive(self, server: Server, mode: str, during: str) -> None:
        """After each run: the server still answers the page, within 5 s."""
        port = server.tls_port if mode == "tls" else server.plain_port
        try:
            conn = connection(port, mode == "tls")
            conn.timeout = 5
            conn.request("GET", PAGE_PATH, headers={"Cookie": server.cookie[mode]})
            response = conn.getresponse()
            response.read()
            conn.close()
            if response.status == 200 and server.alive():
                return
        except (OSError, http.client.HTTPException):
            pass
        raise ServerHung(server, during)

    def helper(self, args: list[str], timeout: float, nice: int = 0, **kw) -> subprocess.Popen:
        argv = ["taskset", "-c", self.plan.client_cpu, sys.executable, str(Path(__file__).resolve()), *args]
        if nice:
            argv = ["nice", "-n", str(nice), *argv]
        return self.procs.start(argv, self.work / "helpers.log", stdout=subprocess.PIPE, **kw)

    def finish_helper(self, proc: subprocess.Popen, timeout: float) -> dict:
        out, _ = proc.communicate(timeout=timeout)
        self.procs.live.remove(proc)
        if proc.returncode != 0:
            raise SystemExit(f"helper failed ({proc.returncode}); see {self.work / 'helpers.log'}")
        return json.loads(out.decode().strip().splitlines()[-1])

    def handshakes(self, server: Server, duration: float, tag: str) -> dict:
        """One B3 run: the native client (examples/bench_handshakes.rs, built
        by compare.sh) on the client CPU for `duration` seconds."""
        client = os.environ.get("HANDSHAKE_CLIENT_BIN", "")
        if not client or not os.access(client, os.X_OK):
            raise SystemExit(
                f"B3 needs its client (HANDSHAKE_CLIENT_BIN={client!r}): run it through bench/compare.sh, "
                "which builds it (cargo build --release --example bench_handshakes)"
            )
        argv = [
            "taskset", "-c", self.plan.client_cpu, client, "--connect", f"127.0.0.1:{server.tls_port}",
            "--duration", f"{duration:g}", "--threads", str(self.plan.handshake_clients),
            "--cert", str(self.work / "cert.pem"), "--cookie", server.cookie["tls"], "--path", PAGE_PATH,
            "--suite", self.tls_params["portcullis suite"], "--group", self.tls_params["portcullis group"],
        ]  # fmt: skip
        before = server.cpu_seconds()
        proc = self.procs.start(argv, self.work / "helpers.log", stdout=subprocess.PIPE)
        result = self.finish_helper(proc, duration + 60)
        after = server.cpu_seconds()
        self.check_alive(server, "tls", tag)
        n = max(result["handshakes"], 1)
        result["rate"] = result["handshakes"] / result["seconds"]
        result["cpu_us"] = (after - before) * 1e6 / n
        result["client_cpu_us"] = result["client_cpu"] * 1e6 / n
        # Busy shares say which side was the bound: the one near 100%.
        result["server_busy"] = (after - before) / result["seconds"]
        result["client_busy"] = result["client_cpu"] / result["seconds"]
        if not tag.startswith("warm-up"):
            self.runs.append(
                f"{tag}: {result['rate']:,.0f} handshakes/s, {result['cpu_us']:.0f} µs server CPU/handshake "
                f"(server busy {result['server_busy']:.0%}), {result['client_cpu_us']:.0f} µs "
                f"client CPU/handshake (client busy {result['client_busy']:.0%}, "
                f"{result['threads']} threads), statuses {result['statuses']}, resumed {result['reused']}, "
                f"hello retries {result['hello_retries']}, errors {result['errors']}, "
                f"closes without close_notify {result['unclean_closes']}"
            )
            self.log(self.runs[-1])
        return result

    def table_row(self, bench, what, ours, peer, ratio, goal, met) -> None:
        verdict = "—" if met is None else ("met" if met else "**missed**")
        self.rows.append([bench, what, ours, peer, ratio, goal, verdict])

    def b1_b2(self, bench: str, mode: str, p: Server, n: Server) -> None:
        for server in (p, n):
            self.wrk(server, mode, self.plan.warmup, f"warm-up {bench} {server.name}")
        results: dict[str, list[dict]] = {"portcullis": [], "nginx": []}
        for r in range(self.plan.rounds):
            for server in (p, n):
                results[server.name].append(
                    self.wrk(server, mode, self.plan.duration, f"{bench} round {r + 1} {server.name}")
                )
        med = {
            name: {
                k: median([x[k] for x in runs])
                for k in ("rps", "p99_ms", "cpu_us_per_req", "bytes_per_response")
            }
            for name, runs in results.items()
        }
        bad = sum(x["non_2xx_3xx"] + x["socket_errors"] for runs in results.values() for x in runs)
        if bad:
            self.notes.append(f"{bench}: {bad} non-2xx/3xx responses or socket errors (see the runs)")
        pm, nm = med["portcullis"], med["nginx"]
        rps = pm["rps"] / nm["rps"]
        p99 = pm["p99_ms"] / nm["p99_ms"]
        cpu = pm["cpu_us_per_req"] / nm["cpu_us_per_req"]
        self.table_row(
            bench, "requests/s", f"{pm['rps']:,.0f}", f"{nm['rps']:,.0f}", f"{rps:.2f}×", "≥ 1.0×", rps >= 1.0
        )
        # Only B1 has a latency goal; B2 shows it for information.
        has_goal = bench == "B1"
        self.table_row(
            bench,
            "p99 latency",
            f"{pm['p99_ms']:.2f} ms",
            f"{nm['p99_ms']:.2f} ms",
            f"{p99:.2f}×",
            "≤ 1.5×" if has_goal else "",
            p99 <= 1.5 if has_goal else None,
        )
        self.table_row(
            bench,
            "server CPU per request",
            f"{pm['cpu_us_per_req']:.1f} µs",
            f"{nm['cpu_us_per_req']:.1f} µs",
            f"{cpu:.2f}×",
            "",
            None,
        )
        self.table_row(
            bench,
            "bytes per response",
            f"{pm['bytes_per_response']:.0f}",
            f"{nm['bytes_per_response']:.0f}",
            "",
            "",
            None,
        )

    def b3(self, p: Server, n: Server) -> None:
        for server in (p, n):
            self.handshakes(server, self.plan.warmup, f"warm-up B3 {server.name}")
        results: dict[str, list[dict]] = {"portcullis": [], "nginx": []}
        for r in range(self.plan.rounds):
            for server in (p, n):
                results[server.name].append(
                    self.handshakes(server, self.plan.duration, f"B3 round {r + 1} {server.name}")
                )
        keys = ("rate", "cpu_us", "client_cpu_us", "server_busy", "client_busy")
        med = {name: {k: median([x[k] for x in runs]) for k in keys} for name, runs in results.items()}
        resumed = sum(x["reused"] + x["hello_retries"] for runs in results.values() for x in runs)
        bad = sum(
            x["errors"] + sum(v for s, v in x["statuses"].items() if s != "200")
            for runs in results.values()
            for x in runs
        )
        if resumed or bad:
            self.notes.append(
                f"B3: {resumed} resumed or retried (HelloRetryRequest) handshakes, {bad} errors or "
                "non-200 answers (see the runs)"
            )
        pm, nm = med["portcullis"], med["nginx"]
        rate = pm["rate"] / nm["rate"]
        cpu = pm["cpu_us"] / nm["cpu_us"]
        self.table_row(
            "B3",
            "full handshakes/s",
            f"{pm['rate']:,.0f}",
            f"{nm['rate']:,.0f}",
            f"{rate:.2f}×",
            "≥ 1.0×",
            rate >= 1.0,
        )
        self.table_row(
            "B3",
            "server CPU per handshake",
            f"{pm['cpu_us']:.0f} µs",
            f"{nm['cpu_us']:.0f} µs",
            f"{cpu:.2f}×",
            "≤ 1.0×",
            cpu <= 1.0,
        )
        self.table_row(
            "B3",
            "client CPU per handshake",
            f"{pm['client_cpu_us']:.0f} µs",
            f"{nm['client_cpu_us']:.0f} µs",
            "",
            "",
            None,
        )
        # The side near 100% is the bound; the server should be.
        self.table_row(
            "B3",
            "CPU busy: server / client",
            f"{pm['server_busy']:.0%} / {pm['client_busy']:.0%}",
            f"{nm['server_busy']:.0%} / {nm['client_busy']:.0%}",
            "",
            "",
            None,
        )

    def b4(self, p: Server) -> None:
        self.wrk(p, "plain", self.plan.warmup, "warm-up B4 portcullis")
        alone, storm, storms = [], [], []
        ramp = 1.0
        # p99 is a tail figure: more rounds than the others for a steady median.
        for r in range(max(self.plan.rounds, B4_MIN_ROUNDS)):
            alone.append(self.wrk(p, "plain", self.plan.duration, f"B4 round {r + 1} GETs alone"))
            storm_seconds = self.plan.duration + 2 * ramp
            proc = self.helper(
                ["storm", "--port", str(p.plain_port), "--user", STORM_USER,
                 "--conns", str(self.plan.storm_conns), "--rate", str(self.plan.storm_rate),
                 "--duration", str(storm_seconds)],
                storm_seconds + 30,
                # wrk shares the client CPU: the storm client yields it, so
                # wrk's own delays do not pass for the server's.
                nice=STORM_NICE,
                env={**os.environ, "STORM_PASSWORD": self.passwords[STORM_USER]},
            )  # fmt: skip
            time.sleep(ramp)
            storm.append(
                self.wrk(p, "plain", self.plan.duration, f"B4 round {r + 1} GETs during the login storm")
            )
            result = self.finish_helper(proc, storm_seconds + 30)
            storms.append(result)
            summary = ", ".join(
                f"{s}: {v['count']} (p50 {v['p50_ms']:.1f} ms, p99 {v['p99_ms']:.1f} ms, max {v['max_ms']:.1f} ms)"
                for s, v in result["statuses"].items()
            )
            self.runs.append(
                f"B4 round {r + 1} login storm: {result['sent']} posts in {result['seconds']:.1f} s; {summary}; "
                f"errors {result['errors']}, unanswered at the end {result['unanswered']}"
            )
            self.log(self.runs[-1])
            self.wait_idle(p)  # logins still queued are hashed before the next run
        base = median([x["p99_ms"] for x in alone])
        loaded = median([x["p99_ms"] for x in storm])
        ratio = loaded / base
        self.table_row(
            "B4",
            "p99 of authenticated GETs",
            f"{loaded:.2f} ms (storm)",
            f"{base:.2f} ms (alone)",
            f"{ratio:.2f}×",
            "≤ 1.5×",
            ratio <= 1.5,
        )
        rps_storm = median([x["rps"] for x in storm])
        rps_alone = median([x["rps"] for x in alone])
        self.table_row(
            "B4",
            "GET requests/s",
            f"{rps_storm:,.0f} (storm)",
            f"{rps_alone:,.0f} (alone)",
            f"{rps_storm / rps_alone:.2f}×",
            "",
            None,
        )
        excess = [s["statuses"]["503"] for s in storms if "503" in s["statuses"]]
        if excess:
            p99_503 = median([x["p99_ms"] for x in excess])
            count = median([x["count"] for x in excess])
            self.table_row(
                "B4",
                "p99 latency of the excess logins (503)",
                f"{p99_503:.2f} ms",
                "",
                f"{count:,.0f} per run",
                "≤ 10 ms",
                p99_503 <= 10,
            )
        else:
            self.table_row(
                "B4", "p99 latency of the excess logins (503)", "no 503 seen", "", "", "≤ 10 ms", False
            )
            self.notes.append(
                "B4: the storm never filled the verify queue (no 503): raise STORM_RATE/STORM_CONNS"
            )
        hashed = median([s["statuses"].get("303", {}).get("count", 0) / s["seconds"] for s in storms])
        self.table_row("B4", "logins checked per second (303)", f"{hashed:,.1f}", "", "", "", None)

    def core_bench(self, name: str) -> str:
        """Builds (if needed) the core's bench `name`; returns its path."""
        cargo = os.environ.get("CARGO", "cargo")
        out = subprocess.run(
            [cargo, "bench", "-p", "portcullis-core", "--bench", name, "--no-run", "--message-format=json"],
            cwd=self.repo, capture_output=True, text=True,
        )  # fmt: skip
        if out.returncode != 0:
            raise SystemExit(f"cargo bench --bench {name} --no-run failed:\n{out.stderr[-3000:]}")
        exe = None
        for line in out.stdout.splitlines():
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == name:
                exe = msg.get("executable") or exe
        if not exe:
            raise SystemExit(f"cargo bench --no-run did not name the {name} executable")
        return exe

    def b5(self) -> None:
        exe = self.core_bench("head_path")
        self.log("B5: head_path bench")
        text = run_quiet(["taskset", "-c", self.plan.server_cpu, exe, "--bench"], timeout=300)
        self.runs.append("B5 head_path output:\n\n```text\n" + text + "\n```")
        figures = {}
        for m in re.finditer(
            r"^(browser|minimal) \((\d+) B\)\s+(engine parse|engine|httparse uninit|httparse)\s+([\d.]+)\s+([\d.]+)x",
            text,
            re.M,
        ):
            figures[(m.group(1), m.group(3))] = (float(m.group(4)), float(m.group(5)), m.group(2))
        if not figures:
            raise SystemExit(f"cannot read head_path's output:\n{text}")
        for request in ("browser", "minimal"):
            ns, ratio, size = figures[(request, "engine parse")]
            base = figures[(request, "httparse")][0]
            self.table_row(
                "B5",
                f"head parse, {request} request ({size} B)",
                f"{ns:.0f} ns",
                f"{base:.0f} ns",
                f"{ratio:.2f}×",
                "≤ 1.2×",
                ratio <= 1.2,
            )
            ns, ratio, _ = figures[(request, "engine")]
            self.table_row(
                "B5",
                f"parse + answer, {request} request",
                f"{ns:.0f} ns",
                f"{base:.0f} ns",
                f"{ratio:.2f}×",
                "",
                None,
            )

    def idle_memory(self, server: Server, mode: str) -> dict:
        """The server's memory per additional idle connection: RSS after a
        warm-up batch of connections, then after `idle_conns` more. What the
        first connections cost once (allocator arenas and their first pages,
        caches, memory freed lazily after the login) stays out of the
        figure, for both servers alike."""
        port = server.tls_port if mode == "tls" else server.plain_port
        args = [
            "idle",
            "--port",
            str(port),
            "--cookie",
            server.cookie[mode],
            "--n",
            str(self.plan.idle_conns),
            "--warm",
            str(IDLE_WARM),
        ]
        proc = self.helper(args + (["--tls"] if mode == "tls" else []), 300, stdin=subprocess.PIPE)

        def batch_opened() -> dict:
            line = proc.stdout.readline()
            if not line:
                proc.wait()
                raise SystemExit(f"B6 client failed; see {self.work / 'helpers.log'}")
            time.sleep(1.0)  # let the server settle into idleness
            return json.loads(line)

        batch_opened()
        rss0, fds0 = server.rss_bytes(), server.open_fds()
        proc.stdin.write(b"next\n")
        proc.stdin.flush()
        opened = batch_opened()
        rss1, fds1 = server.rss_bytes(), server.open_fds()
        proc.communicate(input=b"done\n", timeout=60)
        self.procs.live.remove(proc)
        per = (rss1 - rss0) / max(opened["ready"], 1)
        result = {"per_conn": per, "open": fds1 - fds0, **opened}
        self.runs.append(
            f"B6 {server.name} {mode}: {opened['ready']} connections opened in {opened['open_seconds']:.1f} s "
            f"after {IDLE_WARM:,} warm-up ones (failures {opened['failures']}), server fds +{fds1 - fds0}, "
            f"RSS {rss0 / 2**20:.1f} → {rss1 / 2**20:.1f} MiB: {per:,.0f} B per connection"
        )
        self.log(self.runs[-1])
        if fds1 - fds0 < 0.99 * self.plan.idle_conns:
            self.notes.append(f"B6 {server.name} {mode}: only {fds1 - fds0} connections open at measurement")
        return result

    def b6(self) -> None:
        # Fresh servers: earlier runs' freed memory would hide new allocations.
        p_plain = self.start_portcullis("b6-plain", tls=False)
        p_tls = self.start_portcullis("b6-tls", tls=True)
        nginx = self.start_nginx("b6", {"plain": p_plain.cookie["plain"], "tls": p_tls.cookie["tls"]})
        figures = {}
        for mode, ours in (("plain", p_plain), ("tls", p_tls)):
            for server in (ours, nginx):
                figures[(server.name, mode)] = self.idle_memory(server, mode)
        for server in (p_plain, p_tls, nginx):
            self.procs.stop(server.proc)
        pp, np_ = figures[("portcullis", "plain")]["per_conn"], figures[("nginx", "plain")]["per_conn"]
        pt, nt = figures[("portcullis", "tls")]["per_conn"], figures[("nginx", "tls")]["per_conn"]
        n = f"{self.plan.idle_conns:,}"
        self.table_row(
            "B6",
            f"memory per idle connection, plain ({n})",
            f"{pp:,.0f} B",
            f"{np_:,.0f} B",
            f"{pp / np_:.2f}×",
            "≤ 1024 B",
            pp <= 1024,
        )
        self.table_row(
            "B6",
            f"memory per idle connection, TLS ({n})",
            f"{pt:,.0f} B",
            f"{nt:,.0f} B",
            f"{pt / nt:.2f}×",
            "≤ 0.5×",
            pt / nt <= 0.5,
        )

    def b7(self) -> None:
        self.b7_store()
        self.b7_serve()

    def b7_store(self) -> None:
        """The core's session store against a HashMap, from the core bench
        STORE_BENCH, whose output has lines `B7 <store|hashmap>
        <bytes_per_session|lookup_ns> <number>`."""
        if not (self.repo / "core" / "benches" / f"{STORE_BENCH}.rs").exists():
            needs = (
                f"needs: core/benches/{STORE_BENCH}.rs, printing `B7 store bytes_per_session N`, "
                "`B7 store lookup_ns N` and the same for `hashmap` (bench/README.md)"
            )
            self.table_row("B7", f"bytes per session ({SESSIONS:,} sessions)", needs, "", "", "≤ 150 B", None)
            self.table_row(
                "B7", f"lookup time ({SESSIONS:,} sessions)", "needs: the same bench", "", "", "", None
            )
            return
        exe = self.core_bench(STORE_BENCH)
        self.log(f"B7: {STORE_BENCH} bench")
        text = run_quiet(["taskset", "-c", self.plan.server_cpu, exe, "--bench"], timeout=300)
        self.runs.append(f"B7 {STORE_BENCH} output:\n\n```text\n{text}\n```")
        got = {
            (m.group(1), m.group(2)): float(m.group(3))
            for m in re.finditer(
                r"^B7 (store|hashmap) (bytes_per_session|lookup_ns) ([\d.]+)\s*$", text, re.M
            )
        }
        if len(got) != 4:
            raise SystemExit(f"cannot read {STORE_BENCH}'s output (want four `B7 ...` lines):\n{text}")
        ours, base = got[("store", "bytes_per_session")], got[("hashmap", "bytes_per_session")]
        self.table_row(
            "B7",
            f"bytes per session ({SESSIONS:,} sessions)",
            f"{ours:.0f} B",
            f"{base:.0f} B (HashMap)",
            f"{ours / base:.2f}×",
            "≤ 150 B",
            ours <= 150,
        )
        ours, base = got[("store", "lookup_ns")], got[("hashmap", "lookup_ns")]
        self.table_row(
            "B7",
            f"lookup time ({SESSIONS:,} sessions)",
            f"{ours:.0f} ns",
            f"{base:.0f} ns (HashMap)",
            f"{ours / base:.2f}×",
            "",
            None,
        )

    def b7_serve(self) -> None:
        """B1 against a server holding SESSIONS sessions, alternating with
        one holding only the benchmark's own."""
        extra = [f"{PRELOAD_KEY} = {SESSIONS}", f"{CAPACITY_KEY} = {SESSIONS + 1000}"]
        probe = self.portcullis_config("b7-probe", False, free_port(), extra)
        check = subprocess.run(
            [str(self.bin), "check-config", "--config", str(probe)], capture_output=True, text=True
        )
        if check.returncode != 0:
            if PRELOAD_KEY not in check.stderr and CAPACITY_KEY not in check.stderr:
                raise SystemExit(f"portcullis check-config refused the B7 config:\n{check.stderr}")
            self.table_row(
                "B7", f"B1 with {SESSIONS:,} sessions loaded",
                f"needs: config keys `{PRELOAD_KEY}` and `{CAPACITY_KEY}` in `portcullis serve` (bench/README.md)",
                "B1 with one session", "", "≥ 0.95×", None,
            )  # fmt: skip
            return
        one = self.start_portcullis("b7-one", tls=False)
        many = self.start_portcullis("b7-many", tls=False, extra=extra, most=120)
        sessions_rss = many.rss_bytes() - one.rss_bytes()
        one.name, many.name = "one session", f"{SESSIONS:,} sessions"
        for server in (one, many):
            self.wrk(server, "plain", self.plan.warmup, f"warm-up B7 {server.name}")
        results: dict[str, list[dict]] = {one.name: [], many.name: []}
        for r in range(self.plan.rounds):
            for server in (one, many):
                results[server.name].append(
                    self.wrk(server, "plain", self.plan.duration, f"B7 round {r + 1} B1 with {server.name}")
                )
        for server in (one, many):
            self.procs.stop(server.proc)
        med = {
            name: {k: median([x[k] for x in runs]) for k in ("rps", "p99_ms", "cpu_us_per_req")}
            for name, runs in results.items()
        }
        m, o = med[many.name], med[one.name]
        ratio = m["rps"] / o["rps"]
        self.table_row(
            "B7",
            f"B1 requests/s with {SESSIONS:,} sessions loaded",
            f"{m['rps']:,.0f}",
            f"{o['rps']:,.0f} (one session)",
            f"{ratio:.2f}×",
            "≥ 0.95×",
            ratio >= 0.95,
        )
        self.table_row(
            "B7",
            "B1 p99 latency, same runs",
            f"{m['p99_ms']:.2f} ms",
            f"{o['p99_ms']:.2f} ms",
            f"{m['p99_ms'] / o['p99_ms']:.2f}×",
            "",
            None,
        )
        self.table_row(
            "B7",
            "B1 server CPU per request, same runs",
            f"{m['cpu_us_per_req']:.1f} µs",
            f"{o['cpu_us_per_req']:.1f} µs",
            f"{m['cpu_us_per_req'] / o['cpu_us_per_req']:.2f}×",
            "",
            None,
        )
        self.table_row(
            "B7", "server RSS per preloaded session", f"{sessions_rss / SESSIONS:.0f} B", "", "", "", None
        )

    # --- the whole run ---

    def run(self) -> None:
        plan = self.plan
        self.log(f"work directory {self.work}")
        self.setup()
        wants_servers = any(plan.wants(b) for b in ("B1", "B2", "B3", "B4"))
        if wants_servers:
            p_plain = self.start_portcullis("plain", tls=False)
            p_tls = self.start_portcullis("tls", tls=True)
            proto, suite, group = self.negotiated(p_tls.tls_port)
            self.tls_params.update(
                {"portcullis protocol": proto, "portcullis suite": suite, "portcullis group": group}
            )
            nginx = self.start_nginx("main", {"plain": p_plain.cookie["plain"], "tls": p_tls.cookie["tls"]})
            self.tls_params.update(
                zip(("nginx protocol", "nginx suite", "nginx group"), self.negotiated(nginx.tls_port))
            )
            self.log(f"TLS: {self.tls_params}")
            p = Server("portcullis", p_plain.proc, plain_port=p_plain.plain_port, cookie=p_plain.cookie)
            pt = Server("portcullis", p_tls.proc, tls_port=p_tls.tls_port, cookie=p_tls.cookie)
            # B3 before B2: a server that hangs under wrk then spoils one row only.
            steps = [
                ("B1", lambda: self.b1_b2("B1", "plain", p, nginx), (p, nginx)),
                ("B3", lambda: self.b3(pt, nginx), (pt, nginx)),
                ("B2", lambda: self.b1_b2("B2", "tls", pt, nginx), (pt, nginx)),
                ("B4", lambda: self.b4(p), (p,)),
            ]
            hung: dict[int, str] = {}  # process id -> the run it stopped answering in
            for bench, step, needs in steps:
                if not plan.wants(bench):
                    continue
                gone = [hung[s.proc.pid] for s in needs if s.proc.pid in hung]
                if gone:
                    self.table_row(
                        bench,
                        "not measured",
                        f"skipped: the server stopped answering in {gone[0]}",
                        "",
                        "",
                        "",
                        False,
                    )
                    continue
                try:
                    step()
                except ServerHung as e:
                    hung[e.server.proc.pid] = e.during
                    cpu = e.server.cpu_seconds() if e.server.alive() else 0.0
                    time.sleep(1)
                    busy = (e.server.cpu_seconds() - cpu) if e.server.alive() else 0.0
                    self.table_row(bench, "not measured", f"failed: {e}", "", "", "", False)
                    self.notes.append(
                        f"{bench}: {e}; it used {busy * 100:.0f}% of a CPU in the second after, "
                        f"and was killed so that it would not disturb the other rows"
                    )
                    self.log(self.notes[-1])
                    self.procs.stop(e.server.proc)
            for server in (p_plain, p_tls, nginx):
                self.procs.stop(server.proc)
        elif plan.wants("B6"):
            # B6 needs the cipher settings for nginx's template.
            probe = self.start_portcullis("probe", tls=True)
            _, suite, group = self.negotiated(probe.tls_port)
            self.tls_params.update({"portcullis suite": suite, "portcullis group": group})
            self.procs.stop(probe.proc)
        if plan.wants("B5"):
            self.b5()
        if plan.wants("B6"):
            self.b6()
        if plan.wants("B7"):
            self.b7()
        self.report()

    # --- the report ---

    def settings(self) -> list[str]:
        plan = self.plan
        cpu_model = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor() or "unknown",
        )
        mem = next(
            (
                line.split()[1]
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal:")
            ),
            "0",
        )
        commit = run_quiet(["git", "-C", str(self.repo), "rev-parse", "--short", "HEAD"])
        # The results file of an earlier run does not change what is measured.
        dirty = run_quiet(
            ["git", "-C", str(self.repo), "status", "--porcelain", "--untracked-files=no", "--", ".",
             ":!bench/RESULTS.md"]
        )  # fmt: skip
        wrk_version = run_quiet(["wrk", "-v"]).splitlines()[0]
        versions = [
            run_quiet([str(self.bin), "--version"]),
            run_quiet(["nginx", "-v"]),
            wrk_version.split(" Copyright")[0],
            run_quiet(["openssl", "version"]),
            f"Python {platform.python_version()} (ssl: {ssl.OPENSSL_VERSION})",
            run_quiet(["rustc", "--version"]),
        ]
        tls = self.tls_params
        lines = [
            f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; the run took "
            f"{time.monotonic() - self.started:.0f} s (builds not counted).",
            f"- Machine: {os.cpu_count()} CPUs ({cpu_model}), {int(mem) / 2**20:.1f} GiB, "
            f"Linux {platform.release()}; load average {self.load_at_start:.2f} at the start, "
            f"{os.getloadavg()[0]:.2f} at the end (other work on the machine shows there).",
            f"- Portcullis: commit {commit}{' with uncommitted changes' if dirty else ''}, release build"
            f"{' (the binary given in PORTCULLIS_BIN: ' + str(self.bin) + ')' if os.environ.get('PORTCULLIS_BIN') else ''}; "
            f"config: `workers = 1`, `access-log = false`, `max-connections` and `max-connections-per-client` "
            f"{plan.idle_conns + 5000}, the rest default (`secure-cookies = true`: the session cookie is "
            f"`__Host-portcullis` on the plain listener too, as behind a TLS-terminating proxy; "
            f"`verify-queue = 64`, `verify-priority = \"idle\"`).",
            "- nginx: `worker_processes 1`, `access_log off`, `keepalive_requests 1000000000`, "
            "`ssl_protocols TLSv1.3`, the same cipher suite and group as Portcullis; "
            'the page behind `if ($http_cookie != "<the same Cookie header>") { return 403; }` '
            "(bench/nginx.conf.template).",
            f"- Servers pinned to CPU {plan.server_cpu} (`taskset -c {plan.server_cpu}`, nginx's master and "
            f"worker, Portcullis's loop and its password worker), load generators to CPU {plan.client_cpu}.",
            f"- The same ECDSA P-256 certificate (openssl, self-signed) and the same {PAGE_BYTES}-byte file "
            f"`{PAGE_PATH}` for both.",
        ]
        if tls:
            lines.append(
                f"- TLS as negotiated by `openssl s_client`: Portcullis {tls.get('portcullis protocol', '?')} "
                f"{tls.get('portcullis suite', '?')} {tls.get('portcullis group', '?')}; nginx "
                f"{tls.get('nginx protocol', '?')} {tls.get('nginx suite', '?')} {tls.get('nginx group', '?')}."
            )
        lines += [
            f"- Rounds: {plan.rounds} (B4: {max(plan.rounds, B4_MIN_ROUNDS)}), each server (B4: GETs alone, "
            f"then with the storm) in turn, A/B/A/B; "
            f"every figure is the median of its rounds. Runs of {plan.duration:g} s, after one unmeasured "
            f"warm-up run of {plan.warmup:g} s per server and benchmark.",
            f"- B1, B2, B4: `wrk -t1 -c{plan.connections} -d{round(plan.duration)}s --latency` with the session "
            f"cookie; p99 from wrk's latency distribution.",
            f"- B3: `examples/bench_handshakes.rs` (rustls with ring, release build), {plan.handshake_clients} "
            f"threads, each in a loop: connect, full TLS 1.3 handshake (resumption disabled; every connection's "
            f"handshake kind counted), the group and suite above, ALPN http/1.1, the certificate pinned and the "
            f"handshake signature verified, GET with the cookie and `Connection: close`, read to the end, "
            f"status and length checked, close. wrk and h2load resume "
            f"TLS sessions when they reconnect, so they cannot measure full handshakes. Client CPU: the "
            f"client's own utime + stime (/proc/self/stat); the \"CPU busy\" row is CPU seconds per second "
            f"of each side: the side near 100% is the bound.",
            f"- B4: the login storm (`compare.py storm`) posts {plan.storm_rate} logins/s (a real user, the right "
            f"password, one pre-login cookie and its CSRF token) over {plan.storm_conns} keep-alive "
            f"connections, from 1 s before the GET run to 1 s after it, at `nice {STORM_NICE}` on the client CPU "
            f"(it shares that CPU with wrk, whose own scheduling delays would otherwise count as the server's; "
            f"the posts it managed are in the run lines); 503 latencies measured by the client.",
            f"- B5: `cargo bench -p portcullis-core --bench head_path` (its own medians), pinned to CPU {plan.server_cpu}.",
            f"- B7: the core bench `{STORE_BENCH}` (store and HashMap, {SESSIONS:,} sessions); then B1's wrk "
            f"runs alternating between a server started with `{PRELOAD_KEY} = {SESSIONS}` and one without.",
            f"- B6: fresh servers; {IDLE_WARM:,} warm-up connections, then {plan.idle_conns:,} more "
            f"(`compare.py idle`), each: connect, [TLS handshake,] one GET with the cookie, answer read, then "
            f"idle; server RSS (VmRSS of all its processes) 1 s after the warm-up batch and 1 s after the "
            f"measured one, the difference divided by the measured connections.",
            "- Server CPU: utime + stime from /proc/PID/stat of every server process, read before and after "
            "each run, divided by the requests (or handshakes) of the run.",
            "- Versions: " + "; ".join(v for v in versions if v) + ".",
        ]
        return lines

    def report(self) -> None:
        header = ["#", "measure", "Portcullis", "peer", "ratio", "goal", "verdict"]
        table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        # Rows in the order (they were measured in another).
        table += ["| " + " | ".join(row) + " |" for row in sorted(self.rows, key=lambda row: row[0])]
        print("\n" + "\n".join(table) + "\n", flush=True)
        text = [
            "# Benchmark results: Portcullis side by side with nginx",
            "",
            'Written by `bench/compare.sh` (see bench/README.md). Peer: nginx in the same run '
            "(B4: the same GET load without logins; B5: raw httparse on the same bytes).",
            "",
            "## Results",
            "",
            *table,
            "",
        ]
        if self.notes:
            text += ["Notes:", "", *[f"- {n}" for n in self.notes], ""]
        missed = sorted({row[0] for row in self.rows if row[-1] == "**missed**"})
        if missed:
            text += ["## Goals missed: what limits them", ""]
            for bench in missed:
                text += [f"- {KNOWN_LIMITS.get(bench, f'{bench}: no analysis yet for this miss.')}", ""]
        text += ["## Machine and settings", "", *self.settings(), ""]
        if hasattr(self, "heads"):
            text += ["## Response heads (one each)", ""]
            for name, head in self.heads.items():
                text += [f"{name}:", "", "```http", head.strip(), "```", ""]
        text += ["## Every run", "", *[f"- {r}" if not r.startswith("B5") else r for r in self.runs], ""]
        out = self.bench_dir / "RESULTS.md"
        out.write_text("\n".join(text))
        self.log(f"wrote {out}")


def cmd_run(args) -> None:
    bench = Bench(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        bench.run()
    finally:
        bench.procs.stop_all()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="the whole benchmark (use bench/compare.sh)")
    run.add_argument("--work", required=True)
    run.add_argument("--bin", required=True)
    run.set_defaults(func=cmd_run)
    st = sub.add_parser("storm")
    st.add_argument("--port", type=int, required=True)
    st.add_argument("--user", required=True)
    st.add_argument("--conns", type=int, default=128)
    st.add_argument("--rate", type=float, default=400)
    st.add_argument("--duration", type=float, required=True)
    st.set_defaults(func=cmd_storm)
    idle = sub.add_parser("idle")
    idle.add_argument("--port", type=int, required=True)
    idle.add_argument("--cookie", required=True)
    idle.add_argument("--n", type=int, required=True)
    idle.add_argument("--warm", type=int, default=0)
    idle.add_argument("--tls", action="store_true")
    idle.set_defaults(func=cmd_idle)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
