# dome-tasks: the just recipes people type, delegating to the invoke tasks of the same name.
# `just --list` and `invoke --list` show the same tasks. The block between the markers is
# generated: change the invoke tasks, then run `invoke just.sync`.

invoke := env("DOME_INVOKE", if path_exists(justfile_directory() / ".venv/bin/invoke") == "true" { justfile_directory() / ".venv/bin/invoke" } else { "invoke" })

# Show the recipes
default:
    @just --list

# Build one sample service (plain JavaScript: a syntax check of its entry module)
[positional-arguments]
build-pkg service:
    node --check "sample/services/$1/src/index.js"

# >>> dome-tasks delegating recipes (generated from the invoke tasks) >>>
# Edit the invoke tasks, then run the sync task; do not edit by hand.

# Apply D1 migrations to development (remote).
db-migrate-dev:
    {{invoke}} db-migrate-dev

# Apply D1 migrations to the local environment's state folder.
db-migrate-local:
    {{invoke}} db-migrate-local

# Apply D1 migrations to production (remote; asks for confirmation).
db-migrate-prod:
    {{invoke}} db-migrate-prod

# Apply D1 migrations to staging (remote).
db-migrate-staging:
    {{invoke}} db-migrate-staging

# Deploy SERVICE (or every service, in dependency order) to production.
[positional-arguments]
deploy service="":
    {{invoke}} deploy "$@"

# Deploy SERVICE ('all' for every service) to ENV.
[positional-arguments]
deploy-env service env:
    {{invoke}} deploy-env "$@"

# Check the prerequisites: node, wrangler, just, credentials, a valid manifest.
doctor:
    {{invoke}} doctor

# Print the ordered steps a deploy would run, wave by wave.
[positional-arguments]
plan service="" env='production':
    {{invoke}} plan "$@"

# Render the wrangler.toml of SERVICE (or all) for ENV (or all) into .dome/build/.
[positional-arguments]
render service="" env="":
    {{invoke}} render "$@"

# <<< dome-tasks delegating recipes <<<
