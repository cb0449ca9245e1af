"""The Hugging Face Hub: the rules every push shares (:mod:`.auth`), a model or adapter push (:mod:`.push`) and
the model card written next to each saved stage (:mod:`.model_card`)."""
