"""The label of a deployed Worker version: the commit it was built from.

``wrangler deploy --tag <sha12> --message "<sha> <subject>"``: Cloudflare's dashboard and
``wrangler versions list`` then say which commit each version runs.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from dome_tasks.wrangler.argv import VersionLabel

TAG_LENGTH = 12
#: Cloudflare keeps the first 100 bytes of a version message.
MESSAGE_BYTES = 100


def label_for(commit: str, subject: str) -> VersionLabel:
    """``sha12`` as the tag; ``"<sha> <subject>"`` as the message, cut to 100 bytes (UTF-8)."""
    first_line = subject.strip().splitlines()[0] if subject.strip() else ""
    message = f"{commit} {first_line}".strip()
    data = message.encode("utf-8")
    if len(data) > MESSAGE_BYTES:
        message = data[: MESSAGE_BYTES - 3].decode("utf-8", errors="ignore").rstrip() + "..."
    return VersionLabel(tag=commit[:TAG_LENGTH], message=message)


def commit_label(root: Path) -> VersionLabel | None:
    """The label of HEAD in the git checkout at *root*; None outside git."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "log", "-1", "--format=%H%x00%s"],
            capture_output=True, text=True, check=False, timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0 or "\0" not in done.stdout:
        return None
    commit, subject = done.stdout.rstrip("\n").split("\0", 1)
    return label_for(commit, subject)
