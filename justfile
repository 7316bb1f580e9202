# dome-tasks: the just recipes people type, delegating to the invoke tasks of the same name.
# `just --list` shows them; `invoke --list` shows the same tasks.

set positional-arguments

invoke := env("DOME_INVOKE", if path_exists(justfile_directory() / ".venv/bin/invoke") == "true" { justfile_directory() / ".venv/bin/invoke" } else { "invoke" })

# Show the recipes
default:
    @just --list

# Deploy SERVICE (or every service, in dependency order) to production
deploy SERVICE="":
    {{invoke}} deploy --service "$1"

# Deploy SERVICE ('all' for every service) to ENV (development|staging|production|local)
deploy-env SERVICE ENV:
    {{invoke}} deploy-env --service "$1" --env "$2"

# Apply D1 migrations to development
db-migrate-dev:
    {{invoke}} db-migrate-dev

# Apply D1 migrations to staging
db-migrate-staging:
    {{invoke}} db-migrate-staging

# Apply D1 migrations to production
db-migrate-prod:
    {{invoke}} db-migrate-prod

# Build one sample service (plain JavaScript: a syntax check of its entry module)
build-pkg SERVICE:
    node --check "sample/services/$1/src/index.js"
