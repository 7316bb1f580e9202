"""``invoke import``: read every wrangler config, compute the intents, write dome.yaml, prove it.

The proof renders each (service, environment) of the new manifest through dome's own loader and
renderer, and the project's own wrangler judges it: its reading of the rendered file against
its reading of the original with ``--env`` (:mod:`dome_tasks.adopt.judge`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dome_tasks.adopt import intent, judge, read, write
from dome_tasks.adopt.sources import Guess
from dome_tasks.errors import DomeError
from dome_tasks.manifest import editor_schema

__all__ = ["ImportReport", "Proof", "import_monorepo", "prove"]


@dataclass
class Proof:
    """How the rendered configs of a manifest compare with the intents."""

    total: int
    differences: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    allowed: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # by the contract
    # pairs whose original the project's wrangler refuses to read (nothing deploys it today)
    unjudged: dict[tuple[str, str], str] = field(default_factory=dict)
    load_error: str | None = None

    @property
    def matching(self) -> int:
        if self.load_error:
            return 0
        return self.total - len(self.differences) - len(self.unjudged)

    @property
    def ok(self) -> bool:
        return self.load_error is None and not self.differences

    def summary(self) -> str:
        if self.load_error:
            return f"0 of {self.total} configs checked: the manifest does not load"
        judged = self.total - len(self.unjudged)
        line = f"{self.matching} of {judged} configs adopt true, judged by wrangler"
        if self.unjudged:
            line += (f"; {len(self.unjudged)} not judged: this wrangler refuses the original "
                     "(it does not deploy today either)")
        return line


@dataclass
class ImportReport:
    adoption: intent.Adoption
    text: str
    path: Path
    proof: Proof
    written: bool


def prove(adoption: intent.Adoption, text: str, manifest_path: Path,
          reader: judge.WranglerReader | None = None) -> Proof:
    """Load ``text`` as the manifest at ``manifest_path``, render every (service, environment)
    in memory and let the project's wrangler judge each: its reading of the rendered file
    against its reading of the original with ``--env`` (:func:`judge.judge`, the contract)."""
    from dome_tasks.manifest.loader import loads
    from dome_tasks.render.config import config_path, render_config

    proof = Proof(total=len(adoption.present()))
    try:
        manifest = loads(text, manifest_path)
    except DomeError as error:
        proof.load_error = str(error)
        return proof
    root = manifest.root
    pairs: list[tuple[Path, str | None]] = []
    judged: list[tuple[str, str, int]] = []
    with judge.scratch(root) as scratch:
        for service, env in adoption.present():
            source = adoption.service(service)
            block = source.blocks[env]
            out = config_path(root, env, service)
            try:
                rendered = render_config(manifest.declared(service, env), manifest_path=manifest.path,
                                         out_path=out, templates_dir=manifest.templates_dir)
            except DomeError as error:
                proof.differences[service, env] = [f"cannot render: {error}"]
                continue
            file = scratch / env / service / "wrangler.toml"
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(rendered, encoding="utf-8")
            judged.append((service, env, len(pairs)))
            pairs += [(source.file.path, block), (source.file.path, None), (file, None)]
        readings = (reader or judge.WranglerReader.for_project(root)).read(pairs) if pairs else []
    from dome_tasks.manifest.wrangler_schema import load_schema

    schema = load_schema(root)
    for service, env, at in judged:
        original, top, rendered_reading = readings[at:at + 3]
        if original.error:
            proof.unjudged[service, env] = original.error.splitlines()[-1].strip()
            continue
        verdict = judge.judge(original, rendered_reading, top, schema=schema,
                              production=adoption.environment(env).protected)
        proof.allowed[service, env] = [f"{d} ({rule})" for d, rule in verdict.allowed]
        if verdict.violations:
            proof.differences[service, env] = [str(d) for d in verdict.violations]
    return proof



def _smallest_proven(adoption: intent.Adoption, output: Path) -> tuple[str, Proof]:
    """The manifest that leaves resource names to dome's naming convention if this dome-tasks
    renders it as intended, else the one that writes every environment's names out."""
    best: tuple[str, Proof] | None = None
    reader = judge.WranglerReader.for_project(adoption.root)
    for mode in (write.CONVENTION, write.EXPLICIT):
        text = write.manifest_text(adoption, mode)
        proof = prove(adoption, text, output, reader)
        if proof.ok:
            return text, proof
        if best is None or proof.matching > best[1].matching:
            best = (text, proof)
    assert best is not None
    return best


def import_monorepo(root: Path, output: Path, *, force: bool = False,
                    dry_run: bool = False) -> ImportReport:
    """Import the wrangler configs under ``root`` into ``output`` (dome.yaml).

    Refuses to replace an existing file without ``force`` before reading anything; writes
    atomically (unless ``dry_run``), also when the proof finds differences: the report says
    which, so that the user can review them.
    """
    root = Path(root).resolve()
    output = Path(output)
    if not output.is_absolute():
        output = root / output
    if output.exists() and not force and not dry_run:
        raise read.AdoptError(
            f"{output} already exists; nothing was written",
            hint="pass --force to replace it (or --output to write elsewhere)",
        )
    files, skipped = _workers_configs(root)
    adoption = intent.compute(files, root)
    adoption.guesses[:0] = skipped
    text, proof = _smallest_proven(adoption, output)
    if not dry_run:
        write.write_manifest(output, text, force=force)
        editor_schema.refresh(output.parent, create=True)
    return ImportReport(adoption, text, output, proof, written=not dry_run)


def _workers_configs(root: Path) -> tuple[list[read.WranglerFile], list[Guess]]:
    """The Workers configs under ``root``; an empty file and a Pages project's config are
    skipped, each with a line (nothing to deploy as a Worker)."""
    files, skipped = [], []
    for path in read.find_configs(root):
        rel = path.relative_to(root).as_posix()
        if not path.read_bytes().strip():
            skipped.append(Guess(rel, "not imported: the file is empty"))
            continue
        found = read.read(path)
        if "pages_build_output_dir" in found.data:
            skipped.append(Guess(rel, "not imported: a Pages project (pages_build_output_dir); "
                                      "dome deploys Workers"))
            continue
        files.append(found)
    return files, skipped
