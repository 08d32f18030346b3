"""One plan comment per pull request, updated in place on every push.

The comment is the one whose body starts with the marker line; there is never a second:
when none is there it is created once, else the first is edited (any later ones, left
by an older tool, are named in the result). A body over the forge's limit is refused
before anything is sent: ``topoctl plan --format markdown`` renders one that fits.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.core.rendering.comment import GITHUB_LIMIT, MARKER
from reconciler.core.rendering.markdown import size
from reconciler.ports import CommentThread, ForgeError


@dataclass(frozen=True)
class Posted:
    """What was done: ``created`` or ``updated``, the comment's id, and duplicates seen."""

    action: str
    comment_id: int
    duplicates: tuple[int, ...] = ()


def with_marker(body: str) -> str:
    """The body as posted: the marker line first (once)."""
    return body if body.startswith(MARKER) else f"{MARKER}\n{body}"


def upsert(thread: CommentThread, body: str, limit: int = GITHUB_LIMIT) -> Posted:
    """Create the plan comment or update it in place."""
    text = with_marker(body)
    if size(text) > limit:
        raise ForgeError(
            f"the comment is {size(text):,} bytes, over the {limit:,} a comment may have: "
            "render it with `topoctl plan --format markdown`, which fits"
        )
    ours = [cid for cid, existing in thread.comments() if existing.startswith(MARKER)]
    if not ours:
        return Posted("created", thread.create(text))
    thread.update(ours[0], text)
    return Posted("updated", ours[0], tuple(ours[1:]))
