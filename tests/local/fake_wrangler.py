"""A stand-in `wrangler` for the tests that need control over timing and failures.

It is a real executable and a real HTTP server (Python, so it starts in milliseconds where
the real wrangler takes a second of CPU): `dev` serves /health on --port, `d1 migrations
apply` plays wrangler's answers. Each worker config may hold a `[fake]` table:

    fail = "boom"              # dev: print this and exit 1
    wait_for = ["a", "b"]      # dev: serve only once these services' dev processes have started
    delay = "0.5"              # dev: seconds before serving (default: $FAKE_WRANGLER_DELAY or 0)
    ignore_term = true         # dev: ignore SIGTERM (the stop must escalate to SIGKILL)
    status = 404               # dev: answer every request with this status (default 200)

With ``$FAKE_WRANGLER_HOLD`` set to a path, `dev` serves only once that file exists (a test
holds a run at a known point, then lets it go on).

Every call is appended to <state>/fake-calls.jsonl (and `["serving"]` just before `dev` binds
its port, with `recorded`: whether a pid record of <state>/run names this process then); `dev`
marks <state>/fake-started/<name>.
"""

from __future__ import annotations

import stat
import sys
from pathlib import Path

from dome_tasks.local import LocalEnv, LocalService, PortRange

SCRIPT = r"""#!{python}
import http.server, json, os, pathlib, signal, sys, time, tomllib
args = sys.argv[1:]
config = pathlib.Path(args[args.index("--config") + 1])
state = pathlib.Path(args[args.index("--persist-to") + 1])
spec = tomllib.loads(config.read_text())
name = spec["name"]
fake = spec.get("fake", {{}})
state.mkdir(parents=True, exist_ok=True)
with open(state / "fake-calls.jsonl", "a") as calls:
    calls.write(json.dumps({{"argv": args[:3], "name": name, "time": time.time()}}) + "\n")
if args[:3] == ["d1", "migrations", "apply"]:
    folder = state / "v3" / "d1" / "miniflare-D1DatabaseObject"
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / (args[3] + ".sqlite")
    applied = set(json.loads(database.read_text())) if database.exists() else set()
    migrations = config.parent / spec["d1_databases"][0].get("migrations_dir", "migrations")
    new = sorted(p.name for p in migrations.glob("*.sql") if p.name not in applied)
    database.write_text(json.dumps(sorted(applied | set(new))))
    print("\n".join(f"│ {{n}} │" for n in new) if new else "No migrations to apply!")
    sys.exit(0)
assert args[0] == "dev", args
port = int(args[args.index("--port") + 1])
started = state / "fake-started"
started.mkdir(exist_ok=True)
(started / name).touch()
print(f"starting {{name}}", flush=True)
if fake.get("ignore_term"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if fake.get("fail"):
    print(fake["fail"], flush=True)
    sys.exit(1)
deadline = time.monotonic() + 30
while not all((started / other).exists() for other in fake.get("wait_for", [])):
    if time.monotonic() > deadline:
        print("gave up waiting for", fake["wait_for"], flush=True)
        sys.exit(3)
    time.sleep(0.01)
time.sleep(float(fake.get("delay", os.environ.get("FAKE_WRANGLER_DELAY", 0))))
hold = os.environ.get("FAKE_WRANGLER_HOLD")
deadline = time.monotonic() + 120
while hold and not os.path.exists(hold):
    if time.monotonic() > deadline:
        print("gave up waiting for", hold, flush=True)
        sys.exit(4)
    time.sleep(0.01)
records = [json.loads(p.read_text()) for p in (state / "run").glob("*.json")]
recorded = any(r.get("pid") == os.getpid() for r in records)
with open(state / "fake-calls.jsonl", "a") as calls:
    calls.write(json.dumps({{"argv": ["serving"], "name": name, "time": time.time(),
                             "recorded": recorded}}) + "\n")
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(int(fake.get("status", 200))); self.end_headers(); self.wfile.write(name.encode())
    def log_message(self, *a):
        pass
server = http.server.HTTPServer(("127.0.0.1", port), Health)
print(f"Ready on http://127.0.0.1:{{port}}", flush=True)
server.serve_forever()
"""


def install(folder: Path) -> Path:
    """Write the stand-in as ``folder/bin/wrangler`` and return its path."""
    wrangler = folder / "bin" / "wrangler"
    wrangler.parent.mkdir(parents=True, exist_ok=True)
    wrangler.write_text(SCRIPT.format(python=sys.executable))
    wrangler.chmod(wrangler.stat().st_mode | stat.S_IXUSR)
    return wrangler


def fake_env(folder: Path, ports: str, **kwargs) -> LocalEnv:
    return LocalEnv(
        state_dir=(folder / "state").resolve(),
        wrangler=install(folder),
        ports=PortRange.parse(ports),
        **kwargs,
    )


def fake_service(folder: Path, name: str, *, d1: bool = False, **fake: object) -> LocalService:
    """A worker config for the stand-in; ``fake`` fills its ``[fake]`` table."""
    config = folder / "build" / name / "wrangler.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    lines = [f'name = "{name}-local"', 'main = "index.js"']
    if d1:
        (config.parent / "migrations").mkdir(exist_ok=True)
        lines += [
            "[[d1_databases]]",
            'binding = "DB"',
            f'database_name = "{name}-db"',
            'database_id = "x"',
        ]
    if fake:
        lines.append("[fake]")
        for key, value in fake.items():
            lines.append(f"{key} = {_toml(value)}")
    config.write_text("\n".join(lines) + "\n")
    return LocalService(name, f"{name}-local", config, "/health")


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return f'"{value}"'


def calls(env: LocalEnv) -> list[dict]:
    import json

    path = env.state_dir / "fake-calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
