"""The Hugging Face Hub.

The rules every push shares (:mod:`.auth`), the push runner shared by ``minimind push`` and the corpus's
``data_tools.publish`` (:mod:`.runner`), a model or adapter push (:mod:`.push`) and the model card written next to each
saved stage (:mod:`.model_card`).
"""
