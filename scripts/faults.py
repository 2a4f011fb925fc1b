#!/usr/bin/env python3
"""Fault drills against the real processes, under load, with nothing lost.

Starts a private Postgres (initdb in a temp dir) and a private Redis, each
on a free port below the kernel's ephemeral range, seeds the demo world
once with `vdm all`, then runs every service as its own process (`vdm
world`, `vdm npc`, `vdm quest`, `vdm rumor`, `vdm player`, `vdm gateway`)
and drives a mixed read/write load through the gateway while it, in turn:

  1. freezes Redis (SIGSTOP) for a while, then kills it and starts it again;
  2. kills the quest service (SIGKILL) and starts it again;
  3. restarts Postgres;
  4. sends the gateway SIGTERM with a WebSocket open and requests in flight.

Every write the gateway acknowledged (2xx with an id: quests created, players
signed in, rumors started) is logged, and afterwards looked up in Postgres:
zero may be missing. The drill fails on any 5xx other than 503, any request
slower than the bound, any acknowledged write missing, or a step's own
expectation (below) not met. Results go to stdout as a table and to
--json FILE.

    scripts/faults.sh            # builds the release binary, then runs this
    python3 scripts/faults.py --vdm target/release/vdm [--json out.json]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ADMIN = "fault-admin-token-0123456789"
JWT = "fault-jwt-secret-0123456789abcdef0123456789"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
SLOW_BOUND_S = 5.0  # no request may take longer, whatever the fault


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free port to listen on, below the kernel's ephemeral range: a port
    picked inside it (by binding port 0) can be taken by another process's
    outgoing connection before the service binds it (a quest service once
    failed to start here with "Address already in use")."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    while True:
        port = random.randrange(10000, max(low, 10001))
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port


# Picked like every other port (an outgoing connection can hold a port of
# the ephemeral range when Postgres or Redis binds it), once: both restart
# on the same port during the drill.
PG_PORT = free_port()
REDIS_PORT = free_port()


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Http:
    """One keep-alive-free request per call (urllib), with a timeout."""

    def __init__(self, base: str):
        self.base = base

    def call(self, method: str, path: str, body=None, token: str | None = None, timeout: float = 10.0):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("content-type", "application/json")
        if token:
            req.add_header("authorization", f"Bearer {token}")
        started = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
                status, headers = resp.status, dict(resp.headers)
        except urllib.error.HTTPError as err:
            raw, status, headers = err.read(), err.code, dict(err.headers)
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            return 0, {}, {"transport_error": str(err)}, time.monotonic() - started
        try:
            value = json.loads(raw) if raw else {}
        except ValueError:
            value = {"raw": raw[:200].decode(errors="replace")}
        return status, headers, value, time.monotonic() - started


class Procs:
    def __init__(self, vdm: str, work: Path):
        self.vdm, self.work = vdm, work
        self.procs: dict[str, subprocess.Popen] = {}
        self.envs: dict[str, tuple[list[str], dict]] = {}

    def start(self, name: str, args: list[str], env: dict) -> None:
        full = {"PATH": os.environ.get("PATH", ""), "VDM_LOG": "warn", "VDM_LOG_FORMAT": "text", **env}
        out = open(self.work / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen([self.vdm, *args], env=full, stdout=out, stderr=subprocess.STDOUT)
        self.envs[name] = (args, env)

    def restart(self, name: str) -> None:
        args, env = self.envs[name]
        self.start(name, args, env)

    def kill(self, name: str, sig=signal.SIGKILL) -> None:
        proc = self.procs.get(name)
        if proc and proc.poll() is None:
            proc.send_signal(sig)

    def wait(self, name: str, timeout: float) -> int | None:
        try:
            return self.procs[name].wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_http(url: str, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    return False


class Postgres:
    """A private cluster owned by the postgres user, in a temp dir."""

    def __init__(self, work: Path):
        self.dir = work / "pg"
        self.dir.mkdir()
        shutil.chown(self.dir, "postgres", "postgres")
        self.run(["initdb", "-D", str(self.dir), "-A", "trust", "-U", "postgres", "--no-sync"])

    def run(self, args: list[str]) -> None:
        cmd = ["runuser", "-u", "postgres", "--", str(PG_BIN / args[0]), *args[1:]]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def ctl(self, action: str) -> None:
        self.run(["pg_ctl", "-D", str(self.dir), "-w", "-m", "fast", "-l", str(self.dir / "log"),
                  "-o", f"-p {PG_PORT} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200", action])

    def psql(self, sql: str) -> str:
        out = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "postgres", "-d", "vdm",
                              "-Atc", sql], check=True, capture_output=True, text=True)
        return out.stdout


class Redis:
    def __init__(self, work: Path):
        self.work = work
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", str(self.work)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", REDIS_PORT), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis did not start")

    def signal(self, sig) -> None:
        if self.proc:
            self.proc.send_signal(sig)

    def kill(self) -> None:
        if self.proc:
            self.proc.kill()
            self.proc.wait()


class Load:
    """Worker threads: reads of quests and NPCs, and three kinds of writes."""

    def __init__(self, http: Http, workers: int):
        self.http, self.workers = http, workers
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.samples: list[tuple[float, str, int, float]] = []  # (t, kind, status, seconds)
        self.acked: dict[str, list[int]] = {"quest": [], "player": [], "rumor": []}
        self.bad: list[str] = []
        self.examples: dict[tuple[str, int], str] = {}
        self.threads: list[threading.Thread] = []
        self.t0 = time.monotonic()

    def start(self) -> None:
        for i in range(self.workers):
            t = threading.Thread(target=self.run, args=(i,), daemon=True)
            t.start()
            self.threads.append(t)

    def record(self, kind: str, status: int, secs: float, value) -> None:
        with self.lock:
            self.samples.append((time.monotonic() - self.t0, kind, status, secs))
            if not 200 <= status < 300:
                self.examples.setdefault((kind, status), json.dumps(value)[:160])
            if status >= 500 and status != 503:
                self.bad.append(f"{kind}: {status} {json.dumps(value)[:200]}")
            elif status == 503 and not (isinstance(value, dict) and "error" in value):
                self.bad.append(f"{kind}: 503 without a JSON error body")
            if secs > SLOW_BOUND_S:
                self.bad.append(f"{kind}: took {secs:.1f} s (bound {SLOW_BOUND_S} s)")

    def run(self, worker: int) -> None:
        rng = random.Random(worker)
        n = 0
        token = None
        while not self.stop.is_set():
            n += 1
            roll = rng.random()
            if token is None or roll < 0.05:
                status, _, value, secs = self.http.call("POST", "/v1/auth/device",
                                                        {"device_id": f"fault-{worker}-{n}"})
                self.record("sign-in", status, secs, value)
                if status in (200, 201) and "player_id" in value:
                    token = value["session_token"]
                    with self.lock:
                        self.acked["player"].append(value["player_id"])
                continue
            if roll < 0.55:
                status, _, value, secs = self.http.call("GET", f"/v1/quests/{rng.randint(1, 8)}", token=token)
                self.record("quest read", status, secs, value)
            elif roll < 0.75:
                status, _, value, secs = self.http.call("GET", f"/v1/npcs/{rng.randint(1, 32)}", token=token)
                self.record("npc read", status, secs, value)
            elif roll < 0.9:
                body = {"title": f"Fault quest {worker}-{n}", "giver_npc_id": 1, "region_id": 1,
                        "objectives": [{"description": "Survive the drill", "target_count": 1}]}
                status, _, value, secs = self.http.call("POST", "/v1/quests", body, ADMIN)
                self.record("quest create", status, secs, value)
                if status == 201 and "id" in value:
                    with self.lock:
                        self.acked["quest"].append(value["id"])
            else:
                body = {"text": f"Drill rumor {worker}-{n}", "origin_npc_id": rng.randint(1, 6),
                        "region_id": 1, "truth": 0.5}
                status, _, value, secs = self.http.call("POST", "/v1/rumors", body, ADMIN)
                self.record("rumor create", status, secs, value)
                if status == 201 and "id" in value:
                    with self.lock:
                        self.acked["rumor"].append(value["id"])

    def window(self, start: float, end: float, kinds: tuple[str, ...] | None = None):
        with self.lock:
            return [s for s in self.samples if start <= s[0] < end and (kinds is None or s[1] in kinds)]

    def now(self) -> float:
        return time.monotonic() - self.t0

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=15)


def summarize(samples) -> str:
    if not samples:
        return "no requests"
    by_status: dict[int, int] = {}
    for s in samples:
        by_status[s[2]] = by_status.get(s[2], 0) + 1
    lat = sorted(s[3] for s in samples)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(by_status.items()))
    return f"{len(samples)} requests ({statuses}); p99 {p99 * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms"


def ws_connect(port: int, token: str) -> socket.socket:
    """A minimal WebSocket client: the handshake, then raw frames."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  f"Sec-WebSocket-Protocol: vdm.v1.json\r\nAuthorization: Bearer {token}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise RuntimeError("socket closed during the handshake")
        head += chunk
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"handshake refused: {head[:100]!r}")
    return sock


def ws_wait_close(sock: socket.socket, timeout: float) -> int | None:
    """Reads frames until a close frame; returns its code (None: none came)."""
    sock.settimeout(timeout)
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, OSError):
            return None
        if not chunk:
            return None
        buf += chunk
        while len(buf) >= 2:
            opcode, length = buf[0] & 0x0F, buf[1] & 0x7F
            at = 2
            if length == 126:
                if len(buf) < 4:
                    break
                length, at = struct.unpack(">H", buf[2:4])[0], 4
            elif length == 127:
                if len(buf) < 10:
                    break
                length, at = struct.unpack(">Q", buf[2:10])[0], 10
            if len(buf) < at + length:
                break
            payload, buf = buf[at:at + length], buf[at + length:]
            if opcode == 0x8:
                return struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
    return None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vdm", default="target/release/vdm")
    parser.add_argument("--json", default=None)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--phase-seconds", type=float, default=8.0)
    args = parser.parse_args()
    vdm = str(Path(args.vdm).resolve())
    phase = args.phase_seconds
    results: dict = {"steps": [], "failures": []}
    fail = results["failures"].append

    work = Path(tempfile.mkdtemp(prefix="vdm-faults-"))
    shutil.chown(work, "postgres", "postgres")
    os.chmod(work, 0o777)
    pg, redis = Postgres(work), Redis(work)
    procs = Procs(vdm, work)
    load: Load | None = None
    try:
        pg.ctl("start")
        subprocess.run(["createdb", "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "postgres", "vdm"], check=True)
        redis.start()
        db = f"postgres://postgres@127.0.0.1:{PG_PORT}/vdm"
        common = {"DATABASE_URL": db, "REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}", "VDM_RATE_LIMITS": "off",
                  "VDM_ADMIN_TOKEN": ADMIN, "VDM_JWT_SECRET": JWT, "VDM_DB_MAX_CONNECTIONS": "8",
                  "VDM_RUMOR_TICK_INTERVAL_MS": "0"}

        # The demo world, once, through `vdm all` on the same database.
        seed_port = free_port()
        procs.start("seed", ["all"], {**common, "VDM_HTTP_ADDR": f"127.0.0.1:{seed_port}",
                                      "VDM_DATA_DIR": str(work / "data")})
        deadline = time.monotonic() + 120
        # Ready is printed once the demo seed is done (/ready answers earlier).
        while b"vdm is ready" not in (work / "seed.log").read_bytes():
            if time.monotonic() > deadline or procs.procs["seed"].poll() is not None:
                fail("vdm all (seeding the demo world) did not finish")
                return 1
            time.sleep(0.1)
        procs.kill("seed", signal.SIGTERM)
        procs.wait("seed", 15)

        ports = {name: (free_port(), free_port()) for name in ("world", "npc", "quest", "rumor", "player")}
        url = {name: f"http://127.0.0.1:{g}" for name, (g, _) in ports.items()}
        for name in ("world", "npc", "quest", "rumor", "player"):
            grpc, admin = ports[name]
            env = {**common, "VDM_GRPC_ADDR": f"127.0.0.1:{grpc}", "VDM_ADMIN_ADDR": f"127.0.0.1:{admin}"}
            if name in ("npc", "rumor"):
                env["VDM_WORLD_URL"] = url["world"]
            if name == "rumor":
                env["VDM_NPC_URL"] = url["npc"]
            if name == "quest":
                env["VDM_PLAYER_URL"] = url["player"]
            procs.start(name, [name], env)
        http_port = free_port()
        procs.start("gateway", ["gateway"], {**common, "VDM_HTTP_ADDR": f"127.0.0.1:{http_port}",
                                             "VDM_QUEST_URL": url["quest"], "VDM_NPC_URL": url["npc"],
                                             "VDM_WORLD_URL": url["world"], "VDM_RUMOR_URL": url["rumor"],
                                             "VDM_PLAYER_URL": url["player"],
                                             "VDM_SHUTDOWN_DELAY_MS": "1000"})
        for name in ("world", "npc", "quest", "rumor", "player"):
            if not wait_http(f"http://127.0.0.1:{ports[name][1]}/ready"):
                fail(f"vdm {name} did not become ready")
                return 1
        base = f"http://127.0.0.1:{http_port}"
        if not wait_http(f"{base}/ready"):
            fail("vdm gateway did not become ready")
            return 1
        http = Http(base)
        load = Load(http, args.workers)
        load.start()

        def step(name: str, start: float, end: float, ok: bool, detail: str) -> None:
            results["steps"].append({"step": name, "ok": ok, "detail": detail,
                                     "traffic": summarize(load.window(start, end))})
            log(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
            if not ok:
                fail(f"{name}: {detail}")

        # 0. Baseline.
        t = load.now()
        time.sleep(phase)
        base_samples = load.window(t, load.now())
        non2xx = [s for s in base_samples if not 200 <= s[2] < 300]
        step("baseline", t, load.now(), not non2xx, f"{len(base_samples)} requests, {len(non2xx)} not 2xx")

        # 1. Redis frozen, then killed and started again.
        t = load.now()
        redis.signal(signal.SIGSTOP)
        time.sleep(phase)
        redis.signal(signal.SIGCONT)
        time.sleep(1)
        redis.kill()
        time.sleep(phase / 2)
        redis.start()
        time.sleep(phase / 2)
        window = load.window(t, load.now())
        non2xx = [s for s in window if not 200 <= s[2] < 300]
        step("redis frozen (SIGSTOP) then killed and restarted", t, load.now(), not non2xx,
             f"{len(window)} requests, {len(non2xx)} not 2xx (reads fall back to Postgres, writes go on)")

        # 2. The quest service killed mid-load, then started again.
        t = load.now()
        procs.kill("quest")
        procs.wait("quest", 5)
        killed_at = load.now()
        time.sleep(phase)
        # Writes need the service; reads of quest definitions the gateway's
        # edge cache holds may still be answered (200), the rest are 503.
        down = load.window(killed_at + 0.5, load.now(), ("quest create",))
        reads = load.window(killed_at + 0.5, load.now(), ("quest read",))
        others = load.window(killed_at + 0.5, load.now(), ("npc read", "rumor create", "sign-in"))
        down_ok = (bool(down) and all(s[2] == 503 for s in down) and max(s[3] for s in down) < 1.0
                   and all(s[2] in (200, 503) and s[3] < 1.0 for s in reads))
        others_ok = bool(others) and all(200 <= s[2] < 300 for s in others)
        restarted_at = load.now()
        procs.restart("quest")
        wait_http(f"http://127.0.0.1:{ports['quest'][1]}/ready")
        recovered = None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            back = [s for s in load.window(restarted_at, load.now(), ("quest create",)) if s[2] == 201]
            if back:
                recovered = back[0][0] - restarted_at
                break
            time.sleep(0.1)
        slowest = max((s[3] for s in down), default=0.0)
        step("quest service killed (SIGKILL) and restarted", t, load.now(),
             down_ok and others_ok and recovered is not None,
             f"its writes: {len(down)} answers, all 503 with a JSON error, reads 200 (edge cache) or 503: {down_ok} "
             f"(slowest {slowest * 1000:.0f} ms); other routes 2xx: {others_ok}; "
             f"quest writes back {recovered if recovered is None else round(recovered, 2)} s "
             f"after the restart began, with no gateway restart")

        # 3. Postgres restarted mid-load.
        t = load.now()
        pg.ctl("restart")
        restarted = load.now()
        time.sleep(phase)
        after = load.window(restarted + 3, load.now())
        during = load.window(t, restarted + 3)
        bad_after = [s for s in after if not 200 <= s[2] < 300]
        step("postgres restarted", t, load.now(), not bad_after and bool(after),
             f"during the restart: {summarize(during)}; from 3 s after: {len(after)} requests, "
             f"{len(bad_after)} not 2xx (pools reconnected, no process restarted)")

        # Until the gateway itself goes, no request may fail below HTTP.
        dropped = [x for x in load.window(0, load.now()) if x[2] == 0]
        step("no connection refused or reset while the gateway runs", 0, load.now(), not dropped,
             f"{len(dropped)} requests without an HTTP answer before the gateway's SIGTERM")

        # 4. SIGTERM to the gateway under load, a WebSocket open.
        status, _, value, _ = http.call("POST", "/v1/auth/device", {"device_id": "fault-ws"})
        sock = ws_connect(http_port, value["session_token"])
        t = load.now()
        procs.kill("gateway", signal.SIGTERM)
        term_at = time.monotonic()
        ready_states = []
        while time.monotonic() - term_at < 0.5:
            ready_states.append(Http(base).call("GET", "/ready", timeout=1)[0])
            time.sleep(0.05)
        code = ws_wait_close(sock, 15)
        exit_code = procs.wait("gateway", 20)
        took = time.monotonic() - term_at
        load.finish()
        in_flight_errors = [s for s in load.window(t, load.now()) if s[2] >= 500 and s[2] != 503]
        refused = len([s for s in load.window(t, load.now()) if s[2] == 0])
        ok = code == 1012 and exit_code == 0 and took < 15 and not in_flight_errors and 503 in ready_states
        step("gateway SIGTERM under load", t, load.now(), ok,
             f"/ready while draining: {sorted(set(ready_states))}; WebSocket close code {code}; "
             f"exit {exit_code} after {took:.1f} s; 5xx other than 503: {len(in_flight_errors)}; "
             f"requests refused once the listener closed: {refused}")

        # Every acknowledged write is in the database.
        checks = {"quest": ("quest.quests", "id"), "player": ("player.players", "id"),
                  "rumor": ("rumor.rumors", "id")}
        lost_total = 0
        for kind, ids in load.acked.items():
            table, col = checks[kind]
            found = set()
            for i in range(0, len(ids), 1000):
                chunk = ",".join(str(x) for x in ids[i:i + 1000])
                if chunk:
                    found |= {int(x) for x in pg.psql(f"SELECT {col} FROM {table} WHERE {col} IN ({chunk})").split()}
            lost = sorted(set(ids) - found)
            lost_total += len(lost)
            results.setdefault("acked", {})[kind] = {"acknowledged": len(ids), "missing": len(lost)}
            log(f"{kind}: {len(ids)} acknowledged, {len(lost)} missing")
        step("every acknowledged write is in Postgres", 0, load.now(), lost_total == 0,
             ", ".join(f"{k}: {v['acknowledged']} acked / {v['missing']} missing" for k, v in results["acked"].items()))
        for line in load.bad[:20]:
            fail(f"request: {line}")
        for (kind, status), example in sorted(load.examples.items()):
            log(f"first {status} of {kind}: {example}")
        results["requests"] = summarize(load.samples)
        log(f"all requests: {results['requests']}")
    except Exception as err:  # noqa: BLE001 - the drill reports any failure
        fail(f"drill error: {err!r}")
    finally:
        if load:
            load.finish()
        procs.stop_all()
        redis.kill()
        try:
            pg.ctl("stop")
        except subprocess.CalledProcessError:
            pass
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
        if results["failures"]:
            print(f"\nlogs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("\nFAULT DRILL", "FAILED:\n  " + "\n  ".join(results["failures"]) if results["failures"] else "PASSED")
    return 1 if results["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
