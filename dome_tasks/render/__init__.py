"""Stage 2: a resolved worker config -> one complete wrangler.toml (one Jinja environment,
the TOML value filter, parse-back, atomic writes)."""
