"""MiniMind to and from other layouts.

Llama (:mod:`.llama`), the original MiniMind's checkpoints and LoRA (:mod:`.original`), llama2.c (:mod:`.llama2c`), the
``minimind import`` command (:mod:`.importer`) and GGUF (:mod:`.gguf`).
"""
