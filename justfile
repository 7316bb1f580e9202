# dome-tasks: the just recipes people type, delegating to the invoke tasks of the same name.
# `just --list` and `invoke --list` show the same tasks. The block between the markers is
# generated: change the invoke tasks, then run `invoke just.sync`.

# Show the recipes
default:
    @just --list

# Build one sample service (plain JavaScript: a syntax check of its entry module)
[positional-arguments]
build-pkg service:
    node --check "sample/services/$1/src/index.js"

# >>> dome-tasks delegating recipes (generated from the invoke tasks) >>>
# Written by `invoke just.sync` from dome-tasks' tasks: edit those, not this block.
# Each recipe passes its words and flags on: `just deploy-env silo staging --dry-run`
# runs `invoke dome.deploy-env silo staging --dry-run`. Your own recipes keep their
# names; a dome task whose name one of them has is here as dome-NAME.

# The invoke that installed dome-tasks: $DOME_INVOKE (e.g. "uv run invoke"), else
# .venv/bin/invoke beside this justfile, else invoke on PATH (activated virtualenv).
dome_invoke := env('DOME_INVOKE', if path_exists(justfile_directory() / '.venv/bin/invoke') == 'true' {
    quote(justfile_directory() / '.venv/bin/invoke')
} else {
    'command -v invoke >/dev/null || { echo "dome-tasks: invoke not found: activate the virtualenv that has dome-tasks, create .venv beside the justfile, or set DOME_INVOKE" >&2; exit 127; }; invoke'
}) + ' --search-root ' + quote(justfile_directory())

# [OPTIONS] SERVICE ENV — End the running canary of SERVICE: the old version takes 100% of ENV's traffic back.
[group('dome')]
[positional-arguments]
abort *args:
    @{{dome_invoke}} dome.abort "$@"

# [OPTIONS] SERVICE ENV — Upload a new version of SERVICE and send --percent of ENV's traffic to it.
[group('dome')]
[positional-arguments]
canary *args:
    @{{dome_invoke}} dome.canary "$@"

# [OPTIONS] — Apply D1 migrations to development (remote).
[group('dome')]
[positional-arguments]
db-migrate-dev *args:
    @{{dome_invoke}} dome.db-migrate-dev "$@"

# [OPTIONS] — Apply D1 migrations to the local environment's state folder.
[group('dome')]
[positional-arguments]
db-migrate-local *args:
    @{{dome_invoke}} dome.db-migrate-local "$@"

# [OPTIONS] — Apply D1 migrations to production (remote; asks for confirmation).
[group('dome')]
[positional-arguments]
db-migrate-prod *args:
    @{{dome_invoke}} dome.db-migrate-prod "$@"

# [OPTIONS] — Apply D1 migrations to staging (remote).
[group('dome')]
[positional-arguments]
db-migrate-staging *args:
    @{{dome_invoke}} dome.db-migrate-staging "$@"

# [OPTIONS] [SERVICE] — Deploy SERVICE (or every service, in dependency order) to production.
[group('dome')]
[positional-arguments]
deploy *args:
    @{{dome_invoke}} dome.deploy "$@"

# [OPTIONS] SERVICE ENV — Deploy SERVICE ('all' for every service) to ENV.
[group('dome')]
[positional-arguments]
deploy-env *args:
    @{{dome_invoke}} dome.deploy-env "$@"

# [OPTIONS] SERVICE ENV — Show what deploying SERVICE to ENV would change (exit 1 when it would change something).
[group('dome')]
[positional-arguments]
diff *args:
    @{{dome_invoke}} dome.diff "$@"

# Check the prerequisites: node, wrangler (each service's), just, credentials, the manifest.
[group('dome')]
[positional-arguments]
doctor *args:
    @{{dome_invoke}} dome.doctor "$@"

# [OPTIONS] — Run the Cloudflare API emulator in the foreground (Ctrl-C stops it).
[group('dome')]
[positional-arguments]
emulator *args:
    @{{dome_invoke}} dome.emulator "$@"

# [OPTIONS] [SERVICE] [ENV] — Show the deployment ledger: deploys, rollbacks, canary steps, migrations.
[group('dome')]
[positional-arguments]
history *args:
    @{{dome_invoke}} dome.history "$@"

# [OPTIONS] — Write dome.yaml from the monorepo's wrangler configs (and check it renders the same).
[group('dome')]
[positional-arguments]
import *args:
    @{{dome_invoke}} dome.import "$@"

# SERVICE ENV — Stream the live logs of SERVICE in ENV (wrangler tail) until Ctrl-C.
[group('dome')]
[positional-arguments]
logs *args:
    @{{dome_invoke}} dome.logs "$@"

# [OPTIONS] — DORA metrics from the ledger: deploy frequency, lead time, change failure rate, MTTR.
[group('dome')]
[positional-arguments]
metrics *args:
    @{{dome_invoke}} dome.metrics "$@"

# [OPTIONS] [SERVICE] [ENV] — Print the steps a deploy would run, wave by wave: exactly what its --dry-run shows.
[group('dome')]
[positional-arguments]
plan *args:
    @{{dome_invoke}} dome.plan "$@"

# [OPTIONS] NUMBER — Delete exactly the workers and resources preview N created (safe to run twice).
[group('dome')]
[positional-arguments]
preview-down *args:
    @{{dome_invoke}} dome.preview-down "$@"

# [OPTIONS] NUMBER — Deploy every service as <service>-pr-N with its own resources, from the template env.
[group('dome')]
[positional-arguments]
preview-up *args:
    @{{dome_invoke}} dome.preview-up "$@"

# [OPTIONS] — List the preview environments (pull request, template, age); --prune removes old ones.
[group('dome')]
[positional-arguments]
previews *args:
    @{{dome_invoke}} dome.previews "$@"

# [OPTIONS] SERVICE ENV — Give the running canary of SERVICE 100% of ENV's traffic (aborts if verification fails).
[group('dome')]
[positional-arguments]
promote *args:
    @{{dome_invoke}} dome.promote "$@"

# [OPTIONS] ENV — Create the D1 databases, KV namespaces, R2 buckets, queues and Vectorize indexes ENV lacks.
[group('dome')]
[positional-arguments]
provision *args:
    @{{dome_invoke}} dome.provision "$@"

# [SERVICE] [ENV] — Render the wrangler.toml of SERVICE (or all) for ENV (or all) into .dome/build/.
[group('dome')]
[positional-arguments]
render *args:
    @{{dome_invoke}} dome.render "$@"

# [OPTIONS] ENV — List the D1 databases, R2 buckets and Vectorize indexes of ENV's account.
[group('dome')]
[positional-arguments]
resources *args:
    @{{dome_invoke}} dome.resources "$@"

# [OPTIONS] SERVICE ENV [VERSION] — Roll SERVICE in ENV back to VERSION (default: the last version that verified healthy).
[group('dome')]
[positional-arguments]
rollback *args:
    @{{dome_invoke}} dome.rollback "$@"

# [OPTIONS] NAME SERVICE ENV — Set secret NAME on SERVICE in ENV; the value comes from stdin or a hidden prompt.
[group('dome')]
[positional-arguments]
secret-put *args:
    @{{dome_invoke}} dome.secret-put "$@"

# [OPTIONS] ENV [SERVICE] — List, per service, the declared secrets ENV lacks (and undeclared ones); exit 1 if any.
[group('dome')]
[positional-arguments]
secrets-check *args:
    @{{dome_invoke}} dome.secrets-check "$@"

# [OPTIONS] ENV [SERVICE] — Set ENV's declared secrets from a dotenv file or the environment (values on stdin only).
[group('dome')]
[positional-arguments]
secrets-sync *args:
    @{{dome_invoke}} dome.secrets-sync "$@"

# [OPTIONS] [SERVICE] [ENV] — Show what serves SERVICE in ENV (wrangler deployments status); `status local`: local processes.
[group('dome')]
[positional-arguments]
status *args:
    @{{dome_invoke}} dome.status "$@"

# [SERVICE] [ENV] — Stop SERVICE (or every service) running in the local environment.
[group('dome')]
[positional-arguments]
stop *args:
    @{{dome_invoke}} dome.stop "$@"

# [OPTIONS] SERVICE ENV — Check that SERVICE in ENV is healthy: GET its health URL (200), then its smoke commands.
[group('dome')]
[positional-arguments]
verify *args:
    @{{dome_invoke}} dome.verify "$@"

# [OPTIONS] — List the services changed since a git ref (plus those bound to a changed interface).
[group('dome-ci')]
[positional-arguments]
changed *args:
    @{{dome_invoke}} dome.changed "$@"

# [OPTIONS] — Deploy what this CI event calls for: its environment, the changed services, in order.
[group('dome-ci')]
[positional-arguments]
ci-deploy *args:
    @{{dome_invoke}} dome.ci-deploy "$@"

# [OPTIONS] ENV — Move the tag dome-deployed/ENV to HEAD: where the next --only-changed deploy diffs from.
[group('dome-ci')]
[positional-arguments]
ci-mark-deployed *args:
    @{{dome_invoke}} dome.ci-mark-deployed "$@"

# [OPTIONS] — Print which environment and services (in waves) this CI event deploys, as JSON.
[group('dome-ci')]
[positional-arguments]
ci-plan *args:
    @{{dome_invoke}} dome.ci-plan "$@"

# [OPTIONS] NUMBER — Post or update the pull request's one comment listing its preview's URLs.
[group('dome-ci')]
[positional-arguments]
ci-preview-comment *args:
    @{{dome_invoke}} dome.ci-preview-comment "$@"

# <<< dome-tasks delegating recipes <<<
