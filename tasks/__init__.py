"""This repository's invoke namespace: the dome-tasks library pointed at the sample workspace."""

from pathlib import Path

from dome_tasks.collection import namespace

ROOT = Path(__file__).resolve().parent.parent
ns = namespace(manifest=ROOT / "sample" / "dome.yaml", justfile=ROOT / "justfile")
