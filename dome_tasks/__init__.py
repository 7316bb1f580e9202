"""dome-tasks: deploy Cloudflare Workers monorepos from one manifest."""
