"""The Hub rules shared by every push (models, adapters, the corpus): repo ids, offline mode, the token.

The token comes from ``HF_TOKEN`` or the stored Hugging Face login (``huggingface_hub.get_token()``); it is
handed to the Hub client only and never printed, logged or written.
"""

from __future__ import annotations

import os

import huggingface_hub
from huggingface_hub import constants
from huggingface_hub.utils import HFValidationError, validate_repo_id

LOGIN_HELP = (
    "No Hugging Face token found. Create a token with write access at "
    "https://huggingface.co/settings/tokens, then either export it as HF_TOKEN or log in once with "
    "`hf auth login` (older huggingface_hub: `huggingface-cli login`). "
    "Use --dry-run to check the data without a token."
)


class HubInputError(ValueError):
    """Bad input found before anything was sent: the message names the file and line or the option."""


def check_repo_id(repo_id: str) -> str:
    """Return ``repo_id`` if it is a valid ``namespace/name`` Hub id, else raise :class:`HubInputError`."""
    if not isinstance(repo_id, str) or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise HubInputError(f"--repo-id must look like USER/NAME (or ORG/NAME), got {repo_id!r}")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise HubInputError(f"--repo-id {repo_id!r} is not a valid Hub repo id: {err}") from None
    return repo_id


def resolve_token() -> str:
    """The Hub token from ``HF_TOKEN`` or the stored login; raises :class:`HubInputError` if there is none."""
    token = os.environ.get("HF_TOKEN", "").strip() or huggingface_hub.get_token()
    if not token:
        raise HubInputError(LOGIN_HELP)
    return token


def check_online() -> None:
    """Raise :class:`HubInputError` if huggingface_hub is in offline mode (``HF_HUB_OFFLINE=1``)."""
    if getattr(constants, "HF_HUB_OFFLINE", False):
        raise HubInputError("HF_HUB_OFFLINE is set: unset it to push to the Hub (or use --dry-run)")
