"""Adopting an existing Workers monorepo: import its wrangler configs, provision, diff."""
