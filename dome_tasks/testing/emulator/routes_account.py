"""User, token, account and workers.dev subdomain endpoints (what `whoami` calls)."""

from __future__ import annotations

from dome_tasks.testing.emulator.api import Request, Response, Router, ok, paged
from dome_tasks.testing.emulator.state import EmulatorState

__all__ = ["router"]

router = Router()


@router.route("GET", "/user/tokens/verify")
def verify_token(state: EmulatorState, req: Request) -> Response:
    return ok({"id": "emulator-token-id", "status": "active"})


@router.route("GET", "/user")
def user(state: EmulatorState, req: Request) -> Response:
    return ok({"id": "emulator-user", "email": "emulator@example.com"})


@router.route("GET", "/accounts")
def accounts(state: EmulatorState, req: Request) -> Response:
    return paged([{"id": state.account_id, "name": state.account_name}])


@router.route("GET", "/memberships")
def memberships(state: EmulatorState, req: Request) -> Response:
    account = {"id": state.account_id, "name": state.account_name}
    return paged(
        [
            {
                "id": "membership-1",
                "account": account,
                "roles": ["Administrator"],
                "status": "accepted",
            }
        ]
    )


@router.route("GET", "/accounts/{account}/workers/subdomain")
def account_subdomain(state: EmulatorState, req: Request) -> Response:
    return ok({"subdomain": state.subdomain})


@router.route("PUT", "/accounts/{account}/workers/subdomain")
def set_account_subdomain(state: EmulatorState, req: Request) -> Response:
    state.subdomain = req.json().get("subdomain", state.subdomain)
    return ok({"subdomain": state.subdomain})


@router.route("POST", "/graphql")
def graphql(state: EmulatorState, req: Request) -> Response:
    """Analytics (`d1 info` asks for metrics): there are none."""
    return Response(
        200,
        b'{"data": {"viewer": {"accounts": []}}, "errors": null}',
        {"Content-Type": "application/json"},
    )
