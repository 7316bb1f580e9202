"""Stage 3, pure: a resolved request -> ordered steps (deploy, migrations, rollout).
Nothing here runs a process or writes a file."""
