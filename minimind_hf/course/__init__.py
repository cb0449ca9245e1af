"""Teaching references checked against the libraries the project trains with.

LoRA written out by hand (:mod:`.lora_layer`, the layer, and :mod:`.lora_reference`, wrapping, saving, merging; against
PEFT) and the course's DPO-loss form (:mod:`.dpo_loss`, against TRL). Training imports neither.
"""
