"""Training: one runner for every stage (pretrain, SFT, LoRA, DPO, GRPO), each stage a row of a table.

* :mod:`.arguments` -- the argument groups a recipe fills (run, data, model, LoRA) and the chat stages' training
  arguments;
* :mod:`.stages` -- :data:`~.stages.STAGES`, what sets each stage apart: dataset, collator, trainer, model;
* :mod:`.trainers` -- the trainers, with the guards every stage shares (finite loss, perplexity, saving);
* :mod:`.runner` -- parse a recipe, train a stage, write its summary (``python -m minimind_hf.train``);
* :mod:`.recipe` -- recipe files read into the argument classes;
* :mod:`.lora` -- PEFT's ``LoraConfig`` with the project's defaults;
* :mod:`.dpo` -- the DPO loss and the TRL trainer that uses it;
* :mod:`.grpo` -- GRPO's config, prompts and TRL trainer; :mod:`.rewards` -- its rewards, plain functions;
* :mod:`.plotting` -- the loss curve (and GRPO's reward curve);
* :mod:`.cpu_budget` -- stop after a budget of CPU seconds, with checkpoints at fractions of it;
* :mod:`.labelled_loss` -- the loss with the output layer computed only where a label is;
* :mod:`.safety` -- resume, stop, lock, refuse a changed recipe.
"""
