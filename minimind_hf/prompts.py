"""The project's translation prompts: how an English -> zh-TW pair becomes a chat.

Training (SFT, LoRA), preference data and evaluation all build their chats here, so the model is
asked the same way it was taught. ``TRANSLATION_PROMPTS[0]`` is the canonical phrasing used for
LoRA rows given as parallel ``{"en", "zh"}`` records and for evaluation; SFT data mixes all of them
so the model does not overfit to a single wording.

Two choices that recipes and command lines name are resolved here and nowhere else:

* a **system prompt** is given by name (``"finance"``, see :data:`SYSTEM_PROMPTS`) or as its text:
  :func:`resolve_system_prompt`, and back to its name for reports: :func:`system_prompt_name`;
* a **prompt id** is an index into :data:`TRANSLATION_PROMPTS` or ``"mixed"`` (a stable phrasing per
  sentence, :func:`pick_prompt`): :func:`parse_prompt_id` checks one, :func:`prompt_index` applies it.

:func:`source_of` reads the English source back out of a user turn built from one of the phrasings.
"""

from __future__ import annotations

import hashlib

TRANSLATION_PROMPTS: tuple[str, ...] = (
    "Translate the following English text into Traditional Chinese (Taiwan).\n\n{en}",
    "請將下列英文翻譯成繁體中文（臺灣）：\n\n{en}",
    "English to Traditional Chinese:\n{en}",
    "把這段英文翻成台灣用語的繁體中文：\n{en}",
    "Translate to zh-TW:\n{en}",
    "Render this sentence in Traditional Chinese as used in Taiwan.\n\n{en}",
)

FINANCE_SYSTEM_PROMPT = (
    "You are a professional financial translator. Translate English into Traditional Chinese "
    "(Taiwan) using standard Taiwanese finance and accounting terminology."
)

SYSTEM_PROMPTS: dict[str, str] = {"finance": FINANCE_SYSTEM_PROMPT}
"""System prompts that recipes and command lines may give by name."""

MIXED = "mixed"
"""The prompt id that picks a stable phrasing per source sentence (:func:`pick_prompt`)."""


def resolve_system_prompt(name_or_text: str | None) -> str | None:
    """The system prompt text for a name of :data:`SYSTEM_PROMPTS`; any other text is used as it is."""
    if not name_or_text:
        return None
    return SYSTEM_PROMPTS.get(name_or_text, name_or_text)


def system_prompt_name(text: str | None) -> str | None:
    """The name of a system prompt of :data:`SYSTEM_PROMPTS` (for reports), else the text itself."""
    return next((name for name, prompt in SYSTEM_PROMPTS.items() if prompt == text), text)


def parse_prompt_id(value: int | str) -> int | str:
    """A checked prompt id: an index into :data:`TRANSLATION_PROMPTS` (an int, or its digits as text) or ``"mixed"``.

    Raises ``ValueError`` naming the allowed values.
    """
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if value == MIXED:
        return MIXED
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(TRANSLATION_PROMPTS):
        raise ValueError(
            f'prompt_id must be an index 0..{len(TRANSLATION_PROMPTS) - 1} into TRANSLATION_PROMPTS or "{MIXED}", '
            f"got {value!r}"
        )
    return value


def pick_prompt(en: str) -> int:
    """A stable prompt index for a source sentence (same sentence -> same phrasing, every run)."""
    digest = hashlib.blake2b(en.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % len(TRANSLATION_PROMPTS)


def takes_system_turn(text: str, fraction: float) -> bool:
    """Whether a row whose first user turn is ``text`` gets the system turn when only ``fraction`` of rows do (0..1).

    A stable choice per row, the same every run.
    """
    if fraction >= 1.0:
        return True
    if fraction <= 0.0:
        return False
    digest = hashlib.blake2b(b"system:" + text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64 < fraction


def prompt_index(prompt_id: int | str, en: str) -> int:
    """The index of the phrasing that ``prompt_id`` (see :func:`parse_prompt_id`) gives the sentence ``en``."""
    return pick_prompt(en) if prompt_id == MIXED else int(prompt_id)


def source_of(user_text: str) -> str | None:
    """The English source of a user turn written with one of :data:`TRANSLATION_PROMPTS`.

    ``None`` when the turn follows none of them.
    """
    for template in TRANSLATION_PROMPTS:
        head, tail = template.split("{en}")
        if user_text.startswith(head) and user_text.endswith(tail) and len(user_text) > len(head) + len(tail):
            return user_text[len(head) : len(user_text) - len(tail)].strip() or None
    return None


def translation_messages(
    en: str,
    zh: str | None = None,
    prompt_id: int = 0,
    system: str | None = None,
) -> list[dict[str, str]]:
    """Build the chat for translating ``en``; with ``zh`` the assistant answer is appended.

    ``prompt_id`` indexes :data:`TRANSLATION_PROMPTS` (use :func:`pick_prompt` for a stable mix). ``system`` is a
    name of :data:`SYSTEM_PROMPTS` (``"finance"``) or the text itself, as everywhere (:func:`resolve_system_prompt`).
    """
    if not isinstance(en, str) or not en.strip():
        raise ValueError("translation_messages: the English source must be a non-empty string")
    if not 0 <= prompt_id < len(TRANSLATION_PROMPTS):
        raise ValueError(
            f"translation_messages: prompt_id {prompt_id} is out of range 0..{len(TRANSLATION_PROMPTS) - 1}"
        )
    messages: list[dict[str, str]] = []
    system = resolve_system_prompt(system)
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": TRANSLATION_PROMPTS[prompt_id].format(en=en.strip())})
    if zh is not None:
        messages.append({"role": "assistant", "content": zh.strip()})
    return messages
