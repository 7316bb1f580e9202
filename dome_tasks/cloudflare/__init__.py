"""Talking to Cloudflare without wrangler: the credentials wrangler would use (an API token, a
global key, or ``wrangler login``) and one small API client for the reads and writes that must
not cost a Node start (what serves, the shared history, migrations tables, the live config)."""
