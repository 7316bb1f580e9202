"""The record tells the truth everywhere (issue 19): the fast subset of
``benchmarks/truth_harness.py``. The real ``invoke deploy-env silo staging`` (real wrangler, real
signals) against the emulator; afterwards the real ``invoke history`` names exactly the version
the emulator serves, and one deploy uploads one version.

* Ctrl-C or SIGTERM during verification: exit 130/143, recorded ``interrupted`` naming the new
  version (it serves), and the rollback target is the version before it;
* the activation call fails (500 once, 503 for good): the uploaded version is activated with
  ``wrangler versions deploy`` (or the failure recorded), never uploaded a second time;
* the activation hangs past the deadline and lands afterwards: ``unknown``, then settled by the
  next ``invoke history`` with what serves.
"""

from __future__ import annotations

import json
import shutil
import signal
from collections.abc import Iterator

import pytest

from dome_tasks.testing.emulator import Emulator
from dome_tasks.testing.truth import Harness, HealthServer
from tests.helpers import ROOT, SAMPLE, VENV_BIN, run_env

pytestmark = pytest.mark.integration

ACCOUNT = "0123456789abcdef0123456789abcdef"  # the sample manifest's account
ACTIVATION = r"/workers/scripts/silo-staging/deployments$"


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """One emulator and workspace for the module; silo-staging deployed (and verified) once."""
    work = tmp_path_factory.mktemp("truth")
    shutil.copytree(SAMPLE, work / "sample", ignore=shutil.ignore_patterns(".dome", ".wrangler"))
    shutil.copytree(ROOT / "tasks", work / "tasks", ignore=shutil.ignore_patterns("__pycache__"))
    (work / "node_modules").symlink_to(ROOT / "node_modules")
    with Emulator(account_id=ACCOUNT) as emulator:
        health = HealthServer(emulator)
        with health.running():
            env = run_env(**emulator.env(), DOME_ACTOR="truth-test",
                          INVOKE_DOME_HEALTH_BASE_URL=health.origin,
                          INVOKE_DOME_WORKERS_SUBDOMAIN=emulator.state.subdomain,
                          INVOKE_DOME_VERIFY_DEADLINE="5")
            harness = Harness(emulator, work, VENV_BIN / "invoke", env, health)
            first = harness.run(*harness.deploy_args())
            assert first.returncode == 0, first.stdout + first.stderr
            yield harness


def history(harness: Harness) -> list[dict]:
    shown = harness.run("history", "silo", "staging", "--json")
    assert shown.returncode == 0, shown.stderr
    return [r for r in json.loads(shown.stdout)["records"] if r["kind"] == "deploy"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_during_verification_records_the_version_that_serves(harness, signum) -> None:
    before = harness.live()
    code, verdict = harness.signal("verification", signum, check_status=False)

    live = harness.live()
    assert code == 128 + signum
    assert live != before  # the new version went live before the signal …
    assert verdict.held, verdict.why  # … and the history says so
    last = history(harness)[-1]
    assert (last["outcome"], last["version_id"]) == ("interrupted", live)
    assert "verified" not in last
    if signum == signal.SIGINT:  # rollback goes back to the version that verified healthy
        shown = harness.run("rollback", "silo", "staging", "--dry-run")
        assert f"roll silo-staging back to {before[:8]}" in shown.stdout, shown.stdout


def test_a_failed_activation_activates_the_uploaded_version_without_a_second_upload(
        harness) -> None:
    before = harness.live()
    code, verdict = harness.fault("POST", ACTIVATION, status=500)

    assert code == 0  # activated by dome: the deploy is done
    assert harness.live() != before
    assert verdict.held, verdict.why  # names what serves, one upload
    last = history(harness)[-1]
    assert (last["outcome"], last["version_id"]) == ("success", harness.live())
    assert "activated the uploaded version" in last["extra"]["warning"]
    assert last["verified"] is True


def test_a_lasting_activation_failure_uploads_once_and_records_the_failure(harness) -> None:
    before = harness.live()
    code, verdict = harness.fault("POST", ACTIVATION, status=503, times=None,
                                  check_status=False)

    assert code == 1
    assert harness.live() == before
    assert verdict.held, verdict.why  # one upload; the record names the old version as live
    last = history(harness)[-1]
    assert (last["outcome"], last.get("version_id")) == ("failure", None)
    assert last["extra"]["live"] == f"{before}@100%"
    uploaded = last["extra"]["uploaded"]
    versions = [v.id for v in harness.emulator.state.worker("silo-staging").versions]
    assert uploaded != before and uploaded in versions


def test_an_activation_that_lands_after_the_deadline_is_unknown_then_settled(harness) -> None:
    before = harness.live()
    code, verdict = harness.fault("POST", ACTIVATION, delay=14, lands=True, command_timeout=10,
                                  check_status=False)

    live = harness.live()
    assert code == 124  # dome gave up on wrangler at its deadline …
    assert live != before  # … and the activation landed afterwards
    assert verdict.held, verdict.why  # the next `invoke history` settled the record
    unknown, settled = history(harness)[-2:]
    assert (unknown["outcome"], unknown["version_id"]) == ("unknown", live)
    assert "may still land" in unknown["extra"]["warning"]
    assert (settled["outcome"], settled["version_id"]) == ("success", live)
    assert settled["extra"]["settles"] == unknown["id"]
