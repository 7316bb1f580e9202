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

# End the running canary of SERVICE: the old version takes 100% of ENV's traffic back.
[positional-arguments]
abort service env:
    {{invoke}} abort "$@"

# Upload a new version of SERVICE and send --percent of ENV's traffic to it.
[positional-arguments]
canary service env:
    {{invoke}} canary "$@"

# List the services changed since a git ref (plus those bound to a changed interface).
changed:
    {{invoke}} changed

# Deploy what this CI event calls for: its environment, the changed services, in order.
ci-deploy:
    {{invoke}} ci-deploy

# Move the tag dome-deployed/ENV to HEAD: where the next --only-changed deploy diffs from.
[positional-arguments]
ci-mark-deployed env:
    {{invoke}} ci-mark-deployed "$@"

# Print which environment and services (in waves) this CI event deploys, as JSON.
ci-plan:
    {{invoke}} ci-plan

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

# Run the Cloudflare API emulator in the foreground (Ctrl-C stops it).
emulator:
    {{invoke}} emulator

# Show the deployment ledger: deploys, rollbacks, canary steps, migrations.
[positional-arguments]
history service="" env="":
    {{invoke}} history "$@"

# Stream the live logs of SERVICE in ENV (wrangler tail) until Ctrl-C.
[positional-arguments]
logs service env:
    {{invoke}} logs "$@"

# DORA metrics from the ledger: deploy frequency, lead time, change failure rate, MTTR.
metrics:
    {{invoke}} metrics

# Print the ordered steps a deploy would run, wave by wave.
[positional-arguments]
plan service="" env='production':
    {{invoke}} plan "$@"

# Give the running canary of SERVICE 100% of ENV's traffic (aborts if verification fails).
[positional-arguments]
promote service env:
    {{invoke}} promote "$@"

# Render the wrangler.toml of SERVICE (or all) for ENV (or all) into .dome/build/.
[positional-arguments]
render service="" env="":
    {{invoke}} render "$@"

# List the D1 databases, R2 buckets and Vectorize indexes of ENV's account.
[positional-arguments]
resources env:
    {{invoke}} resources "$@"

# Roll SERVICE in ENV back to VERSION (default: the last version that verified healthy).
[positional-arguments]
rollback service env version="":
    {{invoke}} rollback "$@"

# Set secret NAME on SERVICE in ENV; the value comes from stdin or a hidden prompt.
[positional-arguments]
secret-put name service env:
    {{invoke}} secret-put "$@"

# Show what serves SERVICE in ENV (wrangler deployments status); `status local`: local processes.
[positional-arguments]
status service="" env="":
    {{invoke}} status "$@"

# Stop SERVICE (or every service) running in the local environment.
[positional-arguments]
stop service="" env='local':
    {{invoke}} stop "$@"

# Check that SERVICE in ENV is healthy: GET its health URL (200), then its smoke commands.
[positional-arguments]
verify service env:
    {{invoke}} verify "$@"

# <<< dome-tasks delegating recipes <<<
