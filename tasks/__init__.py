"""This repository's invoke namespace: the dome-tasks library pointed at the sample workspace."""

from pathlib import Path

from dome_tasks.collection import namespace

ns = namespace(manifest=Path(__file__).resolve().parent.parent / "sample" / "dome.yaml")
