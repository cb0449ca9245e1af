"""The one push runner of the project's Hub commands.

``minimind push`` (a model or adapter, :mod:`.push`) and ``python -m data_tools.publish push`` (the corpus as a
dataset).

Each command builds its own plan (what goes up, checked before the first network call) and sends it its own
way; the mechanics they share live here:

* :func:`run_push` -- the command's course: without ``--dry-run`` the repo id, offline mode and token are
  checked first (before reading a large folder), then the plan is built and printed; a dry run stops there
  (no token, no network); otherwise the plan is sent. The exit status is 0 (pushed or dry run), 2 (bad input,
  :class:`~.auth.HubInputError`) or 1 (the Hub failed: one line naming the error, never the token);
* :func:`open_repo` -- the client, the repository created if missing (private when asked), made public when
  asked, and the target branch created if missing;
* :func:`repo_url` -- the repository's address on the configured endpoint.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Protocol, TypeVar

from huggingface_hub import HfApi, constants

from .auth import HubInputError, check_online, check_repo_id, resolve_token

logger = logging.getLogger(__name__)

DRY_RUN_DONE = "dry run: nothing was sent to the Hub and no file was written"


class Plan(Protocol):
    """What a command's plan offers the runner: a printable description of what would be sent."""

    def describe(self) -> str: ...


P = TypeVar("P", bound=Plan)


def repo_url(repo_id: str, repo_type: str = "model") -> str:
    """Address of a ``model`` or ``dataset`` repository on the configured Hub endpoint."""
    prefix = "" if repo_type == "model" else f"{repo_type}s/"
    return f"{constants.ENDPOINT.rstrip('/')}/{prefix}{repo_id}"


def first_line(err: BaseException) -> str:
    """The first line of an error's message, or its type's name when it has none."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def open_repo(
    repo_id: str,
    repo_type: str,
    token: str,
    *,
    api: HfApi | None = None,
    private: bool = False,
    public: bool = False,
    revision: str | None = None,
) -> HfApi:
    """Make the repository ready to receive a commit and return the client to send it with.

    ``api`` is the :class:`huggingface_hub.HfApi` to use (one is made with ``token`` if omitted). The
    repository is created if missing (``private`` makes a new one private; an existing one keeps its
    visibility unless ``public``, which makes it public); ``revision``, a branch, is created if missing (a
    ``refs/pr/N`` revision is an open pull request and is used as it is).
    """
    check_online()
    api = api if api is not None else HfApi(token=token)
    api.create_repo(repo_id, repo_type=repo_type, private=private or None, exist_ok=True, token=token)
    logger.info("repository ready: %s", repo_url(repo_id, repo_type))
    if public:  # create_repo leaves an existing repository's visibility alone
        api.update_repo_settings(repo_id, private=False, repo_type=repo_type, token=token)
        logger.info("repository is public")
    if revision and not revision.startswith("refs/pr/"):
        api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True, token=token)
        logger.info("branch ready: %s", revision)
    return api


def run_push(
    repo_id: str,
    *,
    dry_run: bool,
    plan: Callable[[], P],
    send: Callable[[P, str], str],
    done: Callable[[P, str], str] = lambda plan, url: f"pushed: {url}",
) -> int:
    """Run a push command.

    Check, build and print the plan (``plan()``), then ``send(plan, token)`` unless ``dry_run``; ``done(plan, url)`` is
    the closing line. Returns the exit status (0 ok, 2 bad input, 1 the push failed).
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        token = None
        if not dry_run:  # fail fast, before reading or rendering anything
            check_repo_id(repo_id)
            check_online()
            token = resolve_token()
        planned = plan()
        print(planned.describe())
        if dry_run:
            print(DRY_RUN_DONE)
            return 0
        assert token is not None
        url = send(planned, token)
    except HubInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # network / permission failures from huggingface_hub or datasets
        logger.debug("push failed", exc_info=True)
        print(f"error: push to {repo_id} failed: {type(err).__name__}: {first_line(err)}", file=sys.stderr)
        return 1
    print(done(planned, url))
    return 0
