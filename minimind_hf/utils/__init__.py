"""Small helpers every command shares, one module per job.

* :mod:`.atomic_files` -- files that are complete or absent (temporary name, fsync, rename);
* :mod:`.jsonl` -- the one reader and the one writer of plain jsonl files, errors naming file and line;
* :mod:`.options_file` -- ``--config FILE``, a YAML of a command's options (``minimind eval``, ``make pairs``);
* :mod:`.command_errors` -- an expected error ends a command in one line on stderr (``--debug`` for the traceback).
"""
