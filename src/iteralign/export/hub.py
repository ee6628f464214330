"""``--push-to-hub REPO``: upload an exported folder to the Hugging Face hub with ``huggingface_hub``.

The token is the hub client's own (``HF_TOKEN``, or the one ``hf auth login`` stored); it is never read into
iteralign's logs or files. The tool sets ``HF_HUB_OFFLINE=1`` by default, so pushing needs ``HF_HUB_OFFLINE=0``;
both conditions are checked before any request, with a message that says what to set.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from iteralign.export.source import ExportError

log = logging.getLogger(__name__)


def push_folder(folder: Path, repo_id: str, private: bool = True) -> str:
    """Create ``repo_id`` (a model repo, private by default) if needed and upload ``folder``; the commit URL."""
    from huggingface_hub import HfApi, get_token

    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        raise ExportError("--push-to-hub: HF_HUB_OFFLINE is set (iteralign sets it by default); run with "
                          "HF_HUB_OFFLINE=0 to reach the hub")
    if not get_token():
        raise ExportError("--push-to-hub: no Hugging Face token; set HF_TOKEN or run `hf auth login`")
    api = HfApi()
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    commit = api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model",
                               commit_message="Upload a model aligned with iteralign")
    url = getattr(commit, "commit_url", None) or str(commit)
    log.info("pushed %s to %s (%s)", folder, repo_id, url)
    return url
