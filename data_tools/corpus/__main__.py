from data_tools.corpus.cli import main

raise SystemExit(main())
