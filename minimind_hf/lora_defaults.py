"""The project's LoRA defaults, the only ones: the runner's ``LoraArguments``, :func:`minimind_hf.lora.peft_config`
and the hand-written reference (:mod:`minimind_hf.lora_reference`) all take theirs from here.

Which layers get an adapter: :data:`DEFAULT_TARGET_MODULES` lists every linear projection of attention
and MLP (``q/k/v/o_proj``, ``gate/up/down_proj``), as is usual for LLaMA-style models. The original
MiniMind ``model_lora.py`` wrapped only *square* linear layers (``in == out``); with grouped-query
attention and a SwiGLU MLP that leaves just ``q_proj`` and ``o_proj``, and it had no ``alpha / r``
scaling and initialised ``A`` from N(0, 0.02). Pass ``target_modules=("q_proj", "o_proj")`` to get
that coverage back.
"""

#: Every linear projection of a LLaMA-style decoder layer (attention, then MLP).
DEFAULT_TARGET_MODULES: tuple[str, ...] = (
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
)
#: Default rank of the update ``B A``.
DEFAULT_R = 8
#: Default ``alpha``; the update is scaled by ``alpha / r`` (or ``alpha / sqrt(r)`` with rsLoRA).
DEFAULT_ALPHA = 16
#: Default dropout probability on the LoRA branch input (TRL's ``ModelConfig`` default too).
DEFAULT_DROPOUT = 0.05
