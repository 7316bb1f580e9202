"""Helpers for tests, ours and our users' (as ``fabric.testing`` ships fabric's).

- :mod:`dome_tasks.testing.emulator`: a stateful Cloudflare API on 127.0.0.1 that the real,
  pinned wrangler deploys to, with fault injection and (opt-in) workerd serving.
- :mod:`dome_tasks.testing.pytest_plugin`: the ``cloudflare_emulator`` fixture (installed as a
  pytest plugin to opt into: ``pytest_plugins = ["dome_tasks.testing.pytest_plugin"]``).
"""
