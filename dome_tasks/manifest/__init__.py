"""Stage 1: dome.yaml -> a validated, immutable Manifest (source lines, schema, model,
merged per-environment configs, naming rules, the dependency graph)."""
