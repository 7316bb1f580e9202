"""This repository's invoke namespace: the dome-tasks library pointed at the sample workspace.

Paths are relative to this repository's root (the folder above this package), so `invoke` and
`just` work from any subfolder.
"""

from dome_tasks import namespace

ns = namespace(manifest="sample/dome.yaml", justfile="justfile")
