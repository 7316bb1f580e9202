"""Prove that a Node program (wrangler) contacts nothing but loopback.

`guard_env(workdir)` returns environment variables that preload a small script into every
Node process: it refuses, and records, any TCP connection or DNS lookup for a host other
than 127.0.0.1 / ::1 / localhost. HTTP(S)_PROXY also point at a loopback tripwire port,
so proxy-aware clients that resolve nothing locally are caught too (see `Tripwire`).
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

__all__ = ["Tripwire", "guard_env", "violations"]

_GUARD_JS = r"""
'use strict';
const fs = require('fs');
const net = require('net');
const dns = require('dns');
const LOG = process.env.DOME_NETGUARD_LOG;
const ALLOWED = new Set(['127.0.0.1', '::1', 'localhost', '::ffff:127.0.0.1']);
function record(what) {
  try { fs.appendFileSync(LOG, what + '\n'); } catch (e) {}
}
function target(args) {
  let first = args[0];
  if (Array.isArray(first)) first = first[0];
  if (first !== null && typeof first === 'object') {
    if (first.path) return null;
    return [first.host === undefined ? 'localhost' : String(first.host), first.port];
  }
  if (typeof first === 'string' && isNaN(Number(first))) return null;
  return [typeof args[1] === 'string' ? args[1] : 'localhost', first];
}
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  const where = target(args);
  if (where && !ALLOWED.has(where[0])) {
    record(`connect ${where[0]}:${where[1]}`);
    const err = new Error(`netguard: refused connection to ${where[0]}:${where[1]}`);
    err.code = 'ECONNREFUSED';
    process.nextTick(() => this.destroy(err));
    return this;
  }
  return connect.apply(this, args);
};
function guardLookup(original) {
  return function (hostname, options, callback) {
    if (!ALLOWED.has(hostname)) {
      record(`dns ${hostname}`);
      const cb = typeof options === 'function' ? options : callback;
      const err = new Error(`netguard: refused DNS lookup of ${hostname}`);
      err.code = 'ENOTFOUND';
      if (typeof cb === 'function') { process.nextTick(() => cb(err)); return {}; }
      return Promise.reject(err);
    }
    return original.apply(this, arguments);
  };
}
dns.lookup = guardLookup(dns.lookup);
if (dns.promises) dns.promises.lookup = guardLookup(dns.promises.lookup);
"""


class Tripwire:
    """A loopback port that records every connection made to it (then closes it)."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.hits: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(1.0)
                try:
                    self.hits.append(conn.recv(4096))
                except OSError:
                    self.hits.append(b"")

    def close(self) -> None:
        self._sock.close()


def guard_env(workdir: Path, *, tripwire: Tripwire | None = None) -> dict[str, str]:
    """Env vars that install the guard; violations go to `workdir/netguard.log`."""
    workdir.mkdir(parents=True, exist_ok=True)
    script = workdir / "netguard.js"
    script.write_text(_GUARD_JS, encoding="utf-8")
    log = workdir / "netguard.log"
    log.touch()
    env = {"NODE_OPTIONS": f"--require {script}", "DOME_NETGUARD_LOG": str(log)}
    if tripwire is not None:
        for key in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
            env[key] = tripwire.url
    return env


def violations(workdir: Path) -> list[str]:
    """Connections and lookups the guard refused, in order."""
    log = workdir / "netguard.log"
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []
