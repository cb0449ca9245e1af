"""The project's translation prompts: how an English -> zh-TW pair becomes a chat.

Training (SFT, LoRA), preference data and evaluation all build their chats here, so the model is
asked the same way it was taught. ``TRANSLATION_PROMPTS[0]`` is the canonical phrasing used for
LoRA rows given as parallel ``{"en", "zh"}`` records and for evaluation; SFT data mixes all of them
so the model does not overfit to a single wording.
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


def pick_prompt(en: str) -> int:
    """A stable prompt index for a source sentence (same sentence -> same phrasing, every run)."""
    digest = hashlib.blake2b(en.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % len(TRANSLATION_PROMPTS)


def translation_messages(
    en: str,
    zh: str | None = None,
    prompt_id: int = 0,
    system: str | None = None,
) -> list[dict[str, str]]:
    """Build the chat for translating ``en``; with ``zh`` the assistant answer is appended.

    ``prompt_id`` indexes :data:`TRANSLATION_PROMPTS` (use :func:`pick_prompt` for a stable mix).
    """
    if not isinstance(en, str) or not en.strip():
        raise ValueError("translation_messages: the English source must be a non-empty string")
    if not 0 <= prompt_id < len(TRANSLATION_PROMPTS):
        raise ValueError(
            f"translation_messages: prompt_id {prompt_id} is out of range 0..{len(TRANSLATION_PROMPTS) - 1}"
        )
    messages: list[dict[str, str]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": TRANSLATION_PROMPTS[prompt_id].format(en=en.strip())})
    if zh is not None:
        messages.append({"role": "assistant", "content": zh.strip()})
    return messages
