"""``python -m data_tools.corpus {fetch,build,sample,check-splits}``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from data_tools.corpus.records import CorpusError
from minimind_hf.utils.command_errors import one_line_errors


@one_line_errors("python -m data_tools.corpus")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_tools.corpus", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_fetch = sub.add_parser("fetch", help="download, verify (sha256) and extract the declared artefacts")
    p_build = sub.add_parser("build", help="fetch, then build the stage files and the data card")
    for p in (p_fetch, p_build):
        p.add_argument("--cache", type=Path, default=Path(".cache/sources"), help="download / extraction cache")
        p.add_argument("--sources", type=Path, default=None, help="source list (default: the shipped sources.yaml)")
        p.add_argument("--only", nargs="+", default=None, help="build only these sources (by name)")
    p_build.add_argument("--out", type=Path, default=Path("data"))
    p_build.add_argument(
        "--semantic", action="store_true", help="also filter pairs by multilingual USE similarity (slow)"
    )
    p_build.add_argument("--semantic-threshold", type=float, default=0.3)
    p_build.add_argument("--no-tokens", action="store_true", help="skip counting pretraining tokens")
    p_sample = sub.add_parser("sample", help="cut the small committed sample from a full build")
    p_sample.add_argument("--src", type=Path, default=Path("data"))
    p_sample.add_argument("--out", type=Path, default=Path("data/sample"))
    p_check = sub.add_parser("check-splits", help="how much of a built directory's held-out data training already saw")
    p_check.add_argument("--data", type=Path, default=Path("data"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "fetch":
            from data_tools.corpus.build import fetch_all
            from data_tools.corpus.sources import load_sources

            slist = load_sources(args.sources)
            roots = fetch_all(slist.enabled(args.only), slist, args.cache)
            print(json.dumps({k: str(v) for k, v in roots.items()}, indent=1))
        elif args.command == "build":
            from data_tools.corpus.build import build

            semantic = None
            if args.semantic:
                from data_tools.corpus.semantic import SemanticFilter

                semantic = SemanticFilter(threshold=args.semantic_threshold)
            result = build(
                args.cache, args.out, args.sources, only=args.only, semantic=semantic, count_tokens=not args.no_tokens
            )
            print(
                json.dumps(
                    {"files": result.files, "pairs": result.stats["pairs"], "seconds": result.stats["seconds"]},
                    indent=1,
                )
            )
        elif args.command == "sample":
            from data_tools.corpus.sample import make_sample

            files = make_sample(args.src, args.out)
            print(json.dumps(files, indent=1))
        elif args.command == "check-splits":
            from data_tools.corpus.leaks import check_data_dir

            print(json.dumps(check_data_dir(args.data), indent=1))
    except CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
