"""The ``lsr`` command line: build and query indexes, evaluate systems.

Every subcommand imports what it needs when it runs, so ``lsr --help`` starts fast and never
loads torch. Exit codes: 0 success, 1 failure (bad input, missing files...), 2 usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger("lsr")

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
#: ``lsr search --queries`` searches and writes this many results (queries x k) at a time
RESULTS_PER_SLICE = 500_000


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", help="BEIR folder path, a name under --data-dir/$LSR_DATA, or an ir_datasets id")
    p.add_argument("--split", help="qrels split (default: test, or the only split there is)")
    p.add_argument("--data-dir", help="root folder of BEIR data sets (default: $LSR_DATA)")


def _add_index_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("index")
    g.add_argument("--quantization", choices=("none", "uint8", "uint16"), default="none",
                   help="store impacts as 8- or 16-bit codes (default: float32)")
    g.add_argument("--block-size", type=int, default=64, help="documents per block for block-max pruning (default 64)")
    g.add_argument("--block-max", choices=("auto", "yes", "no"), default="auto",
                   help="keep block-max metadata: auto (only when blocks are coherent), yes, no")
    g.add_argument("--reorder", choices=("none", "bp"), default="none",
                   help="reorder documents: bp (recursive graph bisection) makes blocks coherent")


def _add_search_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("search")
    g.add_argument("--engine", default="auto",
                   help="lsr's engines: auto (exact, default), taat, blockmax, oracle (scipy); or another engine "
                        "of the same vectors: lucene (Anserini's impact search; pip install 'lsr[lucene]'), milvus "
                        "(Milvus Lite; pip install 'lsr[milvus]')")
    mode = g.add_mutually_exclusive_group()
    mode.add_argument("--exact", action="store_true", help="exact search (the default)")
    mode.add_argument("--approximate", action="store_true",
                      help="approximate search: with --query-terms/--candidates/--max-postings/--max-blocks/"
                           "--alpha, or tuned to --target-recall")
    g.add_argument("--max-blocks", type=int, default=0, help="approximate: score at most this many blocks")
    g.add_argument("--query-terms", type=int, default=0, help="approximate: keep the heaviest N query terms")
    g.add_argument("--candidates", type=int, default=0,
                   help="approximate: documents re-scored exactly after query-term pruning (default 10 x k)")
    g.add_argument("--alpha", type=float, default=1.0, help="approximate: skip blocks with alpha*bound < threshold")
    g.add_argument("--max-postings", type=int, default=0,
                   help="approximate: candidates from each term's N highest-impact postings (static pruning)")
    g.add_argument("--target-recall", type=float, default=0.95,
                   help="approximate without knobs: tune for this recall@10 against exact on the queries")
    g.add_argument("--threads", type=int, default=None, help="search threads (default: all cores)")


def _add_verbosity(p: argparse.ArgumentParser, default) -> None:
    p.add_argument("-v", "--verbose", action="count", default=0 if default is None else default,
                   help="more logging (-vv for debug and tracebacks)")
    p.add_argument("-q", "--quiet", action="store_true", default=False if default is None else default,
                   help="only errors; no progress bars (transformers' included)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lsr",
        formatter_class=_Formatter,
        description="Learned sparse retrieval: encode, index, search and evaluate.",
        epilog=(
            "examples:\n"
            "  lsr evaluate --dataset scifact --encoder bm25 --encoder splade-tiny\n"
            "  lsr encode --dataset scifact --encoder splade-tiny --out enc/scifact\n"
            "  lsr index build --dataset scifact --encoder bm25 --out idx/scifact\n"
            "  lsr search idx/scifact \"what causes insulin resistance\" -k 10\n"
        ),
    )
    from importlib.metadata import PackageNotFoundError, version

    try:
        lsr_version = version("lsr")
    except PackageNotFoundError:  # a source tree that was never installed
        lsr_version = "unknown (not installed)"
    parser.add_argument("--version", action="version", version=f"lsr {lsr_version}")
    _add_verbosity(parser, None)
    # the same flags after the subcommand; SUPPRESS keeps a subcommand from resetting what came before it
    common = argparse.ArgumentParser(add_help=False)
    _add_verbosity(common, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    # ---- evaluate
    ev = sub.add_parser(
        "evaluate", formatter_class=_Formatter, parents=[common],
        help="index a data set with one or more encoders, search its queries, report effectiveness and efficiency",
        description="Encode and index a data set's corpus, search its queries and write one report "
                    "(report.json, report.md, runs, and tradeoff.png when comparing systems).",
        epilog=(
            "examples:\n"
            "  lsr evaluate --dataset scifact --encoder bm25\n"
            "  lsr evaluate --dataset nfcorpus --encoder bm25 --encoder bm25:k1=1.2,b=0.75 --out runs/nf\n"
            "  lsr evaluate --dataset ./my-beir-folder --split dev --measures nDCG@10,R@100\n"
            "  lsr evaluate --dataset nfcorpus --encoder bm25 --encoder 'hybrid:bm25+dense,weight=auto'\n"
        ),
    )
    _add_data_options(ev)
    ev.add_argument("--encoder", action="append", default=None,
                    help="encoder spec (bm25, bm25:k1=1.2,b=0.75, splade-tiny, inference-free-tiny), saved encoder "
                         "directory, or a dense + sparse fusion (hybrid:bm25+dense, hybrid:bm25+dense,weight=0.3, "
                         "hybrid:inference-free-tiny+dense,weight=auto); repeat to compare")
    ev.add_argument("--name", action="append", default=None, help="display name per --encoder (same order)")
    ev.add_argument("--measures", default=None, help="comma-separated ir_measures names "
                    "(default nDCG@10,RR@10,R@100,R@1000,AP)")
    ev.add_argument("-k", type=int, default=1000, help="documents retrieved per query (default 1000)")
    ev.add_argument("--out", default=None, help="output folder (default runs/<dataset>-<split>)")
    ev.add_argument("--keep-index", action="store_true", help="keep each system's index in the output folder")
    ev.add_argument("--device", default="cpu", help="where model encoders run: cpu (default), cuda, cuda:N, or "
                    "auto (a GPU when torch sees one)")
    ev.add_argument("--format", choices=("table", "json"), default="table", help="what to print on stdout")
    _add_index_options(ev)
    _add_search_options(ev)
    ev.set_defaults(handler=cmd_evaluate, sub=ev)

    # ---- encode
    en = sub.add_parser(
        "encode", formatter_class=_Formatter, parents=[common],
        help="encode a corpus into CSR shards (resumable)",
        description="Encode a corpus into CSR shards on disk with bounded memory. Run the same command "
                    "again after an interruption: finished shards are kept and encoding resumes. With --part I/N, "
                    "encode only the I-th of N parts (blocks of --shard-size documents, every N-th one), so N "
                    "machines or processes share the work; index build --shards takes all N folders.",
        epilog=(
            "examples:\n"
            "  lsr encode --dataset scifact --encoder splade-tiny --out enc/scifact\n"
            "  lsr index build --shards enc/scifact --out idx/scifact-splade\n"
            "  lsr encode --dataset msmarco-passage --encoder splade-tiny --out enc/p1 --part 1/2   # machine 1\n"
            "  lsr encode --dataset msmarco-passage --encoder splade-tiny --out enc/p2 --part 2/2   # machine 2\n"
            "  lsr index build --shards enc/p1 enc/p2 --out idx/msmarco-splade\n"
        ),
    )
    _add_data_options(en)
    en.add_argument("--corpus", help="a corpus file (BEIR corpus.jsonl[.gz]) instead of --dataset")
    en.add_argument("--encoder", required=True, help="encoder spec, packaged model, or model directory")
    en.add_argument("--out", required=True, help="encoding folder")
    en.add_argument("--shard-size", type=int, default=4096, help="documents per shard (default 4096)")
    en.add_argument("--overwrite", action="store_true", help="start over instead of resuming")
    en.add_argument("--part", metavar="I/N", help="encode only the I-th of N parts of the corpus (1 <= I <= N)")
    en.set_defaults(handler=cmd_encode, sub=en)

    # ---- export
    ex = sub.add_parser(
        "export", formatter_class=_Formatter, parents=[common],
        help="export vectors for Anserini/Pyserini, PISA (CIFF) or OpenSearch/Elasticsearch",
        description="Write an index's (or an encoding's) document vectors as an Anserini JsonVectorCollection "
                    "or a CIFF index (integer weights), or OpenSearch/Elasticsearch _bulk NDJSON (rank_features); "
                    "or queries as pre-encoded topics / search bodies. The --out name picks the format.",
        epilog=(
            "examples:\n"
            "  lsr export --index idx/scifact-splade --out vectors/scifact.jsonl.gz\n"
            "  lsr export --shards enc/scifact --out vectors/scifact.jsonl.gz --scale 100\n"
            "  lsr export --index idx/scifact-splade --queries queries.jsonl --out topics.tsv\n"
            "  lsr export --index idx/scifact-splade --out scifact.ciff.gz          # for PISA: ciff2pisa\n"
            "  lsr export --index idx/scifact-splade --out scifact.ndjson           # OpenSearch _bulk + mapping\n"
        ),
    )
    ex.add_argument("--index", help="an index directory built by lsr (with its encoder)")
    ex.add_argument("--shards", nargs="+", help="an encoding folder written by `lsr encode` (or all its parts)")
    ex.add_argument("--queries", help="export these queries (BEIR jsonl or TSV), encoded by the index's encoder")
    ex.add_argument("--out", required=True,
                    help="output, its format chosen by the name: documents to .jsonl[.gz] (Anserini "
                         "JsonVectorCollection), .ciff[.gz] (CIFF, for PISA, Anserini, Terrier) or .ndjson[.gz] "
                         "(OpenSearch/Elasticsearch _bulk with a rank_features field; the index mapping is written "
                         "beside it); queries to .tsv (tokens repeated by weight), .jsonl (Anserini JsonIntVector "
                         "topics) or .ndjson (one OpenSearch _search body per query)")
    ex.add_argument("-k", type=int, default=10, help="hits per OpenSearch query body (with --queries, .ndjson)")
    ex.add_argument("--scale", type=float, default=100.0, help="integer weight = round(weight x scale) (default 100)")
    ex.set_defaults(handler=cmd_export, sub=ex)

    # ---- train
    tr = sub.add_parser(
        "train", formatter_class=_Formatter, parents=[common],
        help="train a sparse encoder from a config (JSON/YAML or a shipped recipe name)",
        description="Train a SPLADE, inference-free or SLIM encoder as a config describes: hard negatives and "
                    "teacher scores (cached), ranking + distillation losses, sparsity regularizers or targets, "
                    "checkpoints (running it again resumes), evaluation on a dev split. The trained encoder is "
                    "saved in <output_dir>/model, ready for `lsr evaluate --encoder`.",
        epilog=(
            "examples:\n"
            "  lsr train inference-free-idf                      # a shipped recipe\n"
            "  lsr train my-config.json --set optim.steps=200 --set output_dir=models/try\n"
            "  lsr train --list-recipes\n"
            "  lsr evaluate --dataset scifact --encoder models/inference-free-idf/model\n"
        ),
    )
    tr.add_argument("config", nargs="?", help="config file (.json, .yaml) or shipped recipe name")
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config value (dotted key; the value is parsed as JSON when it can be)")
    tr.add_argument("--data-dir", default=None, help="root folder of BEIR data sets (default: $LSR_DATA)")
    tr.add_argument("--list-recipes", action="store_true", help="list the shipped recipes and exit")
    tr.set_defaults(handler=cmd_train, sub=tr)

    # ---- index
    ix = sub.add_parser("index", help="build or inspect an index", formatter_class=_Formatter, parents=[common])
    ixsub = ix.add_subparsers(dest="index_command", metavar="ACTION")
    ix.set_defaults(handler=None, sub=ix)
    b = ixsub.add_parser(
        "build", formatter_class=_Formatter, parents=[common], help="encode a corpus and write an index directory",
        description="Encode a corpus and write an index directory (arrays + manifest.json, encoder/ beside).",
        epilog=(
            "examples:\n"
            "  lsr index build --dataset scifact --encoder bm25 --out idx/scifact\n"
            "  lsr index build --corpus corpus.jsonl --encoder bm25:k1=1.2 --out idx/mine --overwrite\n"
            "  lsr index build --dataset scifact --encoder splade-tiny --out idx/scifact-splade\n"
            "  lsr index build --shards enc/scifact --out idx/scifact-splade\n"
            "  lsr index build --dataset scifact --encoder splade-tiny --out idx/scifact-splade --lucene\n"
        ),
    )
    _add_data_options(b)
    b.add_argument("--corpus", help="a corpus file (BEIR corpus.jsonl[.gz]) instead of --dataset")
    b.add_argument("--shards", nargs="+", help="a folder written by `lsr encode` (or the folders of all its "
                   "--part runs) instead of --dataset/--corpus")
    b.add_argument("--encoder", help="encoder spec, packaged model or model directory (not with --shards)")
    b.add_argument("--out", required=True, help="index directory to write")
    b.add_argument("--overwrite", action="store_true", help="replace an existing index directory")
    b.add_argument("--store", action="store_true",
                   help="keep each document's title and text in the index (lsr serve shows them as snippets)")
    b.add_argument("--lucene", action="store_true",
                   help="also index the vectors with Lucene (Anserini) into OUT/lucene, for --engine lucene")
    b.add_argument("--threads", type=int, default=1, help="Anserini indexing threads (with --lucene)")
    b.add_argument("--milvus", nargs="?", const="lite", default=None, metavar="URI",
                   help="also load the vectors into Milvus, for --engine milvus: Milvus Lite inside OUT/milvus "
                        "(no URI), or a Milvus server / cluster (http://host:19530; token in $MILVUS_TOKEN)")
    _add_index_options(b)
    b.set_defaults(handler=cmd_index_build, sub=b)
    info = ixsub.add_parser(
        "info", formatter_class=_Formatter, parents=[common], help="print an index's manifest summary",
        epilog="example:\n  lsr index info idx/scifact --verify\n",
    )
    info.add_argument("path", help="index directory")
    info.add_argument("--verify", action="store_true", help="check every checksum and invariant")
    info.set_defaults(handler=cmd_index_info, sub=info)
    add = ixsub.add_parser(
        "add", formatter_class=_Formatter, parents=[common],
        help="add or replace documents in an index (it becomes a live, segmented index)",
        description="Encode documents with the index's encoder and add them as a new segment; an id already "
                    "present is replaced. The change is committed at the end (the last commit is what searches "
                    "see; a crash loses nothing committed). An index built by `lsr index build` becomes live "
                    "the first time (its documents become the first segment).",
        epilog="examples:\n  lsr index add idx/nfcorpus --corpus new-docs.jsonl\n"
               "  lsr index add idx/nfcorpus --dataset nfcorpus\n",
    )
    add.add_argument("path", help="index directory")
    add.add_argument("--corpus", help="documents to add: a BEIR corpus file (corpus.jsonl[.gz])")
    add.add_argument("--dataset", help="or a data set whose corpus to add")
    add.add_argument("--data-dir", default=None, help="root folder of BEIR data sets (default: $LSR_DATA)")
    add.set_defaults(handler=cmd_index_add, sub=add)
    dl = ixsub.add_parser(
        "delete", formatter_class=_Formatter, parents=[common], help="delete documents by id from an index",
        epilog="examples:\n  lsr index delete idx/nfcorpus MED-10 MED-14\n  lsr index delete idx/nfcorpus --ids gone.txt\n",
    )
    dl.add_argument("path", help="index directory")
    dl.add_argument("ids", nargs="*", help="document ids")
    dl.add_argument("--ids", dest="ids_file", help="a file of document ids, one per line")
    dl.add_argument("--missing-ok", action="store_true", help="ignore ids that are not in the index")
    dl.set_defaults(handler=cmd_index_delete, sub=dl)
    cp = ixsub.add_parser(
        "compact", formatter_class=_Formatter, parents=[common],
        help="merge a live index's segments into one, dropping deleted documents",
        epilog="example:\n  lsr index compact idx/nfcorpus\n",
    )
    cp.add_argument("path", help="index directory")
    cp.set_defaults(handler=cmd_index_compact, sub=cp)

    # ---- search
    s = sub.add_parser(
        "search", formatter_class=_Formatter, parents=[common], help="search an index with one query or a queries file",
        description="Search an index built by `lsr index build`. One query prints a ranked list; "
                    "a queries file (BEIR queries.jsonl or TSV id<TAB>text) writes a TREC run.",
        epilog=(
            "examples:\n"
            "  lsr search idx/scifact \"what causes insulin resistance\" -k 10\n"
            "  lsr search idx/scifact --queries queries.jsonl -k 1000 --out run.trec\n"
            "  lsr search idx/scifact-splade \"insulin resistance\" --engine lucene\n"
            "  lsr search idx/live \"insulin\" --filter '{\"year\": {\"gte\": 2015}}'\n"
        ),
    )
    s.add_argument("index", help="index directory")
    s.add_argument("query", nargs="?", help="query text")
    s.add_argument("--queries", help="queries file: BEIR queries.jsonl or TSV (id<TAB>text)")
    s.add_argument("-k", type=int, default=10, help="results per query (default 10)")
    s.add_argument("--out", help="TREC run file to write (with --queries; default: stdout)")
    s.add_argument("--format", choices=("text", "json", "trec"), default="text", help="output for one query")
    s.add_argument("--run-name", default="lsr", help="run name column of the TREC file")
    s.add_argument("--filter", metavar="JSON",
                   help="metadata filter, e.g. '{\"year\": {\"gte\": 2015}, \"lang\": [\"en\", \"fr\"]}' "
                        "(fields come from the corpus lines' \"fields\" objects; @FILE reads it from a file)")
    _add_search_options(s)
    s.set_defaults(handler=cmd_search, sub=s)

    # ---- serve
    sv = sub.add_parser(
        "serve", formatter_class=_Formatter, parents=[common],
        help="serve an index over HTTP: search API, document writes, a page that explains each hit",
        description="Serve an index (built by `lsr index build`, or live) with FastAPI on uvicorn: POST /search, "
                    "POST /documents, DELETE /documents/{id}, GET /documents/{id}, POST /commit, GET /health, /stats, "
                    "/metrics, the page at / and the OpenAPI docs at /docs. A write is durable once a response says "
                    "\"committed\": true (commit=true, or POST /commit). Needs pip install 'lsr[serve]'.",
        epilog=(
            "examples:\n"
            "  lsr serve idx/scifact                                  # http://127.0.0.1:8000/\n"
            "  LSR_API_KEY=secret lsr serve idx/scifact --port 9000   # writes need the key\n"
            "  curl -s localhost:8000/search -d '{\"query\": \"insulin resistance\", \"k\": 3}'\n"
        ),
    )
    sv.add_argument("index", help="index directory (a built index becomes live on the first start that may write)")
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--api-key", default=None, help="key the write endpoints need (default: $LSR_API_KEY; none: open)")
    sv.add_argument("--read-only", action="store_true", help="refuse writes (the index folder is never changed)")
    sv.add_argument("--max-k", type=int, default=1000, help="largest k a search may ask for")
    sv.add_argument("--max-batch", type=int, default=256, help="most queries or documents in one request")
    sv.set_defaults(handler=cmd_serve, sub=sv)

    # ---- reproduce
    rp = sub.add_parser(
        "reproduce", formatter_class=_Formatter, parents=[common],
        help="run the matrix of expected results and check every number",
        description="Run the reproduction matrix (data set x encoder x engine x settings -> expected nDCG@10, "
                    "R@100, document/query non-zeros, each with a tolerance), print expected vs measured, write a "
                    "report, and exit non-zero on any miss. Rows whose collection is not available here (no local "
                    "folder under --data-dir/$LSR_DATA, ir_datasets offline) are skipped and listed.",
        epilog=(
            "examples:\n"
            "  lsr reproduce --only bm25                 # every BM25 row (substring of the row id, or a tag)\n"
            "  lsr reproduce --only 'nfcorpus/*'         # a glob over row ids\n"
            "  lsr reproduce --list\n"
            "  lsr reproduce --table                     # the README's results table, from the matrix\n"
        ),
    )
    rp.add_argument("--only", help="comma-separated row patterns: glob over ids, or a substring of an id or a tag")
    rp.add_argument("--matrix", help="matrix file (default: the one shipped in the package)")
    rp.add_argument("--data-dir", default=None, help="root folder of BEIR data sets (default: $LSR_DATA)")
    rp.add_argument("--out", default="runs/reproduce", help="report folder (report.json, report.md, runs/)")
    rp.add_argument("--list", action="store_true", help="list the rows (after --only) and exit")
    rp.add_argument("--table", action="store_true", help="print the expected values as the README's table and exit")
    rp.add_argument("--update-readme", metavar="README", help="rewrite the table between the markers of README")
    rp.add_argument("--record", action="store_true",
                    help="maintainers: write the measured values of the rows run into the matrix as expected")
    rp.set_defaults(handler=cmd_reproduce, sub=rp)
    return parser


# ----------------------------------------------------------------------------- helpers
def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True)


def _positive_k(parser: argparse.ArgumentParser, k: int) -> None:
    if k < 1:
        parser.error(f"-k must be a positive integer, got {k}")


def _quantization(args) -> str | None:
    return None if args.quantization == "none" else args.quantization


def _build_options(args, parser):
    from index.searcher import BuildOptions

    try:
        return BuildOptions(quantization=_quantization(args), block_size=args.block_size,
                            block_max={"auto": "auto", "yes": True, "no": False}[args.block_max],
                            reorder=None if args.reorder == "none" else args.reorder)
    except ValueError as e:
        parser.error(str(e))


def _search_options(args, parser, index=None, encoder=None, tune_texts=None):
    """The :class:`index.searcher.SearchOptions` of the command line, made once here; ``--approximate``
    without knobs tunes on ``tune_texts`` when given, else records ``target_recall`` for the run to tune."""
    from index import Approx
    from index.searcher import SearchOptions

    knobs = Approx(query_terms=args.query_terms, candidates=args.candidates, max_blocks=args.max_blocks,
                   alpha=args.alpha, max_postings=args.max_postings)
    has_knobs = not knobs.exact
    if has_knobs and not args.approximate:
        parser.error("--max-blocks, --query-terms, --candidates, --max-postings and --alpha need --approximate")
    if args.approximate and knobs.uses_blocks and args.engine in ("taat", "oracle"):
        parser.error(f"--max-blocks and --alpha run on the block-max engine, not --engine {args.engine}")
    approx, target = None, None
    if args.approximate:
        if has_knobs:
            try:
                approx = knobs.validate()
            except ValueError as e:
                parser.error(str(e))
        elif index is None or not tune_texts:
            target = args.target_recall  # the run tunes on its own queries (lsr evaluate)
        else:
            from index import tune_approximate

            tuned = tune_approximate(index, encoder.encode_queries(tune_texts), target_recall=args.target_recall,
                                     threads=args.threads)
            approx, target = tuned.approx, args.target_recall
            logger.warning("tuned for recall@10 >= %.2f: %s (recall %.3f, %.3f ms/query vs exact %.3f)",
                           args.target_recall, tuned.approx, tuned.recall, tuned.ms_per_query,
                           tuned.exact_ms_per_query)
    try:
        return SearchOptions(engine=args.engine, approx=approx, threads=args.threads, target_recall=target)
    except ValueError as e:
        parser.error(str(e))


def _read_query_file(path: str) -> dict[str, str]:
    from eval.datasets import check_id, iter_lines, read_queries
    from eval.errors import DataFormatError

    p = Path(path)
    if p.suffix in (".jsonl", ".gz") or p.name.endswith(".jsonl.gz"):
        queries = read_queries(p)
    else:
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such queries file")
        queries, first = {}, {}
        for lineno, line in iter_lines(p):
            if not line.strip():
                continue
            qid, tab, text = line.rstrip("\r\n").partition("\t")
            if not tab:
                raise DataFormatError(f"{p}:{lineno}: expected 'id<TAB>text' (or use a BEIR queries.jsonl)")
            check_id(qid, "query id", f"{p}:{lineno}")
            if qid in queries:
                raise DataFormatError(f"{p}:{lineno}: query id {qid!r} occurs twice (first at line {first[qid]})")
            queries[qid], first[qid] = text, lineno
    if not queries:
        raise DataFormatError(f"{p}: no queries in the file")
    for qid, text in queries.items():
        if not text.strip():
            raise DataFormatError(f"{p}: query {qid!r} has empty text")
    return queries


# ----------------------------------------------------------------------------- commands
def cmd_evaluate(args, parser) -> int:
    from eval import load_dataset

    from .pipeline import RunSettings, compare

    if not args.dataset:
        parser.error("evaluate needs --dataset")
    _positive_k(parser, args.k)
    encoders = args.encoder or ["bm25"]
    names = args.name or []
    if names and len(names) != len(encoders):
        parser.error(f"{len(names)} --name for {len(encoders)} --encoder; give one name per encoder or none")
    names = names or encoders
    if len(set(names)) != len(names):
        parser.error("system names must be unique; use --name to tell them apart")
    ds = load_dataset(args.dataset, split=args.split, data_dir=args.data_dir)
    out = Path(args.out) if args.out else Path("runs") / f"{Path(ds.name).name}-{ds.split or 'all'}"

    from .encoders import load_encoder
    from .hybrid import HybridSpec

    for e in encoders:  # a bad hybrid spec fails here, before anything is built
        if HybridSpec.is_spec(e):
            HybridSpec.parse(e)
    systems = {n: e if HybridSpec.is_spec(e) else load_encoder(e) for n, e in zip(names, encoders)}
    if args.device != "cpu":
        for enc in systems.values():
            if hasattr(enc, "to"):  # model encoders; BM25 and hybrid specs stay as they are
                try:
                    enc.to(args.device)
                except (RuntimeError, ValueError) as e:
                    parser.error(f"--device {args.device}: {e}")
    command = "lsr " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[0].endswith("lsr") else None
    settings = RunSettings(build=_build_options(args, parser), search=_search_options(args, parser),
                           keep_index=args.keep_index, show_progress=not args.quiet)
    report = compare(ds, systems, k=args.k, measures=args.measures, out_dir=out, command=command, settings=settings)
    if args.format == "json":
        print(report.to_json())
    else:
        print(report.to_markdown())
        if len(report.systems) >= 2:  # paired tests against the first --encoder (all measures: report.md)
            from eval.significance import comparisons_markdown

            print("\n" + comparisons_markdown(report.significance(measures=report.measures[:1])))
        print(f"\nreport: {out / 'report.json'}", file=sys.stderr)
    return EXIT_OK


def _corpus_from_args(args, parser, fields: bool = False):
    if bool(args.dataset) == bool(args.corpus):
        parser.error("give exactly one of --dataset or --corpus")
    if args.dataset:
        from eval import load_dataset

        ds = load_dataset(args.dataset, split=getattr(args, "split", None), data_dir=args.data_dir)
        if fields and not ds.source.startswith("irds:"):  # a local BEIR folder: titles, bodies and fields too
            from eval.datasets import load_corpus

            return load_corpus(ds.source, fields=True)
        return ds.corpus
    from eval.datasets import load_corpus

    return load_corpus(args.corpus, fields=fields)


def cmd_encode(args, parser) -> int:
    from .encoding import encode_corpus, parse_part

    try:
        part = parse_part(args.part)
    except ValueError as e:
        parser.error(f"--part: {e}")
    corpus = _corpus_from_args(args, parser)
    summary = encode_corpus(args.encoder, corpus, args.out, shard_size=args.shard_size, overwrite=args.overwrite,
                            show_progress=not args.quiet, part=part)
    resumed = f", {summary.resumed_shards} resumed" if summary.resumed_shards else ""
    which = f" (part {part[0]}/{part[1]})" if part[1] > 1 else ""
    print(f"encoded {summary.n_docs} documents into {summary.n_shards} shards{which}{resumed} -> {summary.path}")
    return EXIT_OK


def cmd_index_build(args, parser) -> int:
    from index.storage import check_target, write_lock

    out = Path(args.out)
    check_target(out, args.overwrite, "index")  # before encoding, not after
    with write_lock(out):  # a second build into the same --out fails now, not after its encoding
        return _index_build(args, parser, out)


def _index_build(args, parser, out: Path) -> int:
    from .pipeline import Retriever

    if args.shards:
        if args.dataset or args.corpus or args.encoder:
            parser.error("--shards already holds the encoded corpus and its encoder: drop --dataset/--corpus/--encoder")
        from .encoding import index_shards

        idx = index_shards(args.shards, out, overwrite=args.overwrite, **_build_options(args, parser).to_json())
    else:
        if not args.encoder:
            parser.error("--encoder is required (or --shards)")
        corpus = _corpus_from_args(args, parser, fields=True)  # a corpus line's "fields": metadata for filters
        retriever = Retriever.build(corpus, args.encoder, build=_build_options(args, parser),
                                    show_progress=not args.quiet, store=args.store)
        retriever.save(out, overwrite=args.overwrite)
        idx = retriever.index
    print(f"indexed {idx.n_docs} documents, {idx.nnz} postings, vocabulary {idx.vocabulary.id} -> {out}")
    if args.lucene:
        lucene = Retriever.load(out).add_lucene(threads=args.threads, overwrite=True)
        print(f"Lucene index of {lucene.n_docs} documents ({lucene.size_bytes() / 2**20:.1f} MiB) -> {lucene.path}")
    if args.milvus:
        uri = None if args.milvus == "lite" else args.milvus
        milvus = Retriever.load(out).add_milvus(uri=uri, token=os.environ.get("MILVUS_TOKEN"), overwrite=True)
        print(f"Milvus collection {milvus.manifest['collection']!r} of {milvus.manifest['n_docs']} documents at {milvus.uri} "
              f"-> {milvus.path}")
    return EXIT_OK


def _export_format(out: str) -> str:
    name = Path(out).name
    for suffixes, fmt in (((".ciff", ".ciff.gz"), "ciff"), ((".ndjson", ".ndjson.gz"), "opensearch")):
        if name.endswith(suffixes):
            return fmt
    return "anserini"


def _write_documents(out: str, ids, vectors, terms, scale: float, index_name: str) -> str:
    fmt = _export_format(out)
    if fmt == "ciff":
        from .ciff import write_ciff

        write_ciff(out, ids, vectors, terms, scale=scale)
        return "a CIFF index"
    if fmt == "opensearch":
        from eval.atomic import atomic_file

        from .opensearch import opensearch_mapping, write_opensearch_bulk

        write_opensearch_bulk(out, ids, vectors, terms, index=index_name)
        mapping = Path(out).with_name(Path(out).name.split(".ndjson")[0] + ".mapping.json")
        with atomic_file(mapping) as tmp:
            tmp.write_text(json.dumps(opensearch_mapping(), indent=2) + "\n", encoding="utf-8")
        return f"OpenSearch/Elasticsearch bulk NDJSON (index mapping in {mapping})"
    from .exports import write_anserini_vectors

    write_anserini_vectors(out, ids, vectors, terms, scale=scale)
    return "an Anserini JsonVectorCollection"


def cmd_export(args, parser) -> int:
    if bool(args.index) == bool(args.shards):
        parser.error("give exactly one of --index or --shards")
    if args.shards:
        if args.queries:
            parser.error("--queries needs --index (the encoder that made it)")
        from .encoders import load_encoder
        from .encoding import ENCODER_DIR, read_all_shards

        terms = load_encoder(Path(args.shards[0]) / ENCODER_DIR).terms()
        ids, vectors = read_all_shards(args.shards)
        what = _write_documents(args.out, ids, vectors, terms, args.scale, Path(args.shards[0]).name)
        print(f"wrote {len(ids)} document vectors to {args.out}: {what}")
        return EXIT_OK
    from .pipeline import Retriever

    retriever = Retriever.load(args.index)
    terms = retriever.encoder.terms()
    if args.queries:
        queries = _read_query_file(args.queries)
        q = retriever.encode_queries(list(queries.values()))
        if _export_format(args.out) == "opensearch":
            from eval.atomic import atomic_file, open_text_for_writing

            from .opensearch import opensearch_query

            with atomic_file(Path(args.out)) as tmp, open_text_for_writing(tmp) as f:
                for i, qid in enumerate(queries):
                    f.write(json.dumps({"id": qid, "body": opensearch_query(q[[i]], terms, k=args.k)}) + "\n")
        else:
            from .exports import write_anserini_queries

            write_anserini_queries(args.out, list(queries), q, terms, scale=args.scale)
        print(f"wrote {len(queries)} pre-encoded queries to {args.out}")
        return EXIT_OK
    idx = retriever.index
    what = _write_documents(args.out, idx.doc_ids.tolist(), idx.document_vectors(), terms, args.scale,
                            Path(args.index).name)
    print(f"wrote {idx.n_docs} document vectors to {args.out}: {what}")
    return EXIT_OK


def cmd_index_add(args, parser) -> int:
    from .live import LiveRetriever

    if bool(args.corpus) == bool(args.dataset):
        parser.error("give exactly one of --corpus or --dataset")
    corpus = _corpus_from_args(args, parser, fields=True)
    live = LiveRetriever.open(args.path, writable=True)
    n = live.add(corpus, show_progress=not args.quiet)
    generation = live.commit()
    print(f"added {n} documents -> {args.path}: {live.index.n_docs} live documents in {len(live.index.segments)} "
          f"segments, commit {generation}")
    return EXIT_OK


def cmd_index_delete(args, parser) -> int:
    from .live import LiveRetriever

    ids = list(args.ids)
    if args.ids_file:
        from eval.datasets import iter_lines

        ids += [line.strip() for _, line in iter_lines(Path(args.ids_file)) if line.strip()]
    if not ids:
        parser.error("name the documents to delete (ids, or --ids FILE)")
    live = LiveRetriever.open(args.path, writable=True)
    n = live.delete(ids, missing_ok=args.missing_ok)
    generation = live.commit()
    print(f"deleted {n} documents -> {args.path}: {live.index.n_docs} live documents, commit {generation}")
    return EXIT_OK


def cmd_index_compact(args, parser) -> int:
    from .live import LiveRetriever, is_live

    if not is_live(args.path):
        parser.error(f"{args.path} is not a live index (it has one segment already)")
    live = LiveRetriever.open(args.path, writable=True)
    generation = live.compact()
    print(f"compacted {args.path}: {live.index.n_docs} documents in {len(live.index.segments)} segment(s), "
          f"commit {generation}")
    return EXIT_OK


def cmd_index_info(args, parser) -> int:
    from index import InvertedIndex, directory_size

    from .live import LiveRetriever, is_live

    if is_live(args.path):
        live = LiveRetriever.open(args.path)
        if args.verify:
            for seg in live.index.segments:
                InvertedIndex.load(seg.index.path, verify=True)
        print(json.dumps({"path": str(args.path), **live.describe(), "bytes_on_disk": directory_size(args.path),
                          "verified": bool(args.verify)}, indent=2))
        return EXIT_OK

    idx = InvertedIndex.load(args.path, verify=args.verify)
    m = idx.manifest
    encoder_checked = None
    if (Path(args.path) / "encoder").is_dir():
        from .pipeline import check_encoder_identity

        check_encoder_identity(Path(args.path), m)  # refuses a swapped encoder/ folder
        encoder_checked = m.get("encoder_identity") is not None
    df = idx.doc_frequencies()
    summary = {
        "path": str(args.path),
        "format_version": m["format_version"],
        "library_version": m.get("library_version"),
        "created": m.get("created"),
        "n_docs": idx.n_docs,
        "dim": idx.dim,
        "postings": idx.nnz,
        "terms_with_postings": int((df > 0).sum()),
        "mean_doc_nnz": float(idx.doc_lengths().mean()) if idx.n_docs else 0.0,
        "fields": idx.schema,
        "stored_texts": idx.stored is not None,
        "vocabulary": m.get("vocabulary"),
        "encoder": m.get("encoder"),
        "bytes_on_disk": directory_size(args.path),
        "verified": bool(args.verify),
        "encoder_identity": m.get("encoder_identity"),
        "encoder_identity_checked": encoder_checked,
    }
    print(json.dumps(summary, indent=2))
    return EXIT_OK


def cmd_search(args, parser) -> int:
    from .pipeline import Retriever

    _positive_k(parser, args.k)
    if bool(args.query is not None) == bool(args.queries):
        parser.error("give either a query text or --queries FILE")
    if args.query is not None and not args.query.strip():
        parser.error("the query is empty")
    from .live import LiveRetriever, is_live

    retriever = LiveRetriever.open(args.index) if is_live(args.index) else Retriever.load(args.index)
    from index.searcher import LSR_ENGINES

    flt = _filter_from_args(args, parser, retriever.index.schema)
    if flt is not None and args.engine not in (*LSR_ENGINES, "lsr"):
        parser.error(f"--filter runs on lsr's engines, not --engine {args.engine}")
    doc_ids = retriever.index.doc_ids
    n_docs = retriever.index.n_docs
    if args.k > n_docs:
        print(f"lsr search: -k {args.k} capped at the index's {n_docs} documents", file=sys.stderr)
    k = min(args.k, n_docs)
    if args.queries:
        from eval.trec import TrecRunWriter

        queries = _read_query_file(args.queries)
        options = _search_options(args, parser, retriever.index, retriever.encoder, list(queries.values()))
        if options.target_recall is not None and options.approx is None and args.approximate:
            logger.warning("exact search was as fast as any approximate setting on these queries; searching exactly")
        qids = sorted(queries)
        # a slice of queries at a time, so memory holds at most RESULTS_PER_SLICE results, not queries x k
        step = max(1, RESULTS_PER_SLICE // k)
        with TrecRunWriter(args.out, name=args.run_name, stream=sys.stdout) as writer:
            for lo in range(0, len(qids), step):
                part = qids[lo:lo + step]
                res = retriever.search([queries[q] for q in part], k, options, filter=flt)
                writer.write(res.to_run(part, doc_ids))
        if args.out:
            print(f"wrote {writer.lines} results for {len(qids)} queries to {args.out}", file=sys.stderr)
        return EXIT_OK

    options = _search_options(args, parser)
    if options.target_recall is not None:
        parser.error("--approximate needs --max-blocks/--query-terms/--max-postings/--alpha for one query "
                     "(nothing to tune on; tune with --queries FILE)")
    res = retriever.search([args.query], k, options, filter=flt)
    hits = [(doc_ids[int(d)], float(s)) for d, s in zip(res.doc_idx[0], res.scores[0]) if d >= 0]
    if args.format == "json":
        terms = [{"term": t, "weight": w}
                 for t, w in retriever.encoder.decode(retriever.encode_queries([args.query]))]
        print(json.dumps({"query": args.query, "query_terms": terms,
                          "results": [{"rank": r, "doc_id": d, "score": s} for r, (d, s) in enumerate(hits, 1)]},
                         indent=2))
    elif args.format == "trec":
        for r, (d, s) in enumerate(hits, 1):
            print(f"q0 Q0 {d} {r} {s:.6f} {args.run_name}")
    else:
        if not hits:
            print("no matching documents", file=sys.stderr)
        for r, (d, s) in enumerate(hits, 1):
            print(f"{r:>4}  {s:10.4f}  {d}")
    return EXIT_OK


def _filter_from_args(args, parser, schema: dict):
    """``--filter``: JSON text, or ``@FILE``; checked against the index's fields before any search."""
    if not args.filter:
        return None
    from index.fields import FilterError, parse_filter

    text = args.filter
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as e:
            parser.error(f"--filter {args.filter}: cannot read the file ({e})")
    try:
        spec = json.loads(text)
        parse_filter(spec, schema)
    except json.JSONDecodeError as e:
        parser.error(f"--filter is not valid JSON ({e}): {text!r}")
    except FilterError as e:
        parser.error(f"--filter: {e}")
    return spec


def cmd_train(args, parser) -> int:
    from training import list_recipes, load_config, train

    if args.list_recipes:
        for name in list_recipes():
            print(name)
        return EXIT_OK
    if not args.config:
        parser.error("give a config file or recipe name (see --list-recipes)")
    overrides = {}
    for item in args.set:
        key, eq, value = item.partition("=")
        if not eq or not key:
            parser.error(f"--set expects KEY=VALUE, got {item!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    if args.data_dir:
        overrides["data.data_dir"] = args.data_dir
    config = load_config(args.config, overrides)
    result = train(config, show_progress=not args.quiet)
    print(json.dumps({"model_dir": str(result.model_dir), "steps": result.steps,
                      "train_seconds": round(result.seconds, 1), "evaluations": result.evaluations}, indent=2))
    return EXIT_OK


# ----------------------------------------------------------------------------- entry points
def cmd_serve(args, parser) -> int:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401

        from .serve import Limits, serve
    except ImportError as e:
        parser.error(f"lsr serve needs FastAPI and uvicorn ({e}): pip install 'lsr[serve]'")
    if not Path(args.index).is_dir():
        parser.error(f"{args.index}: no such index directory; build one with `lsr index build`")
    if args.max_k < 1 or args.max_batch < 1:
        parser.error("--max-k and --max-batch must be positive")
    serve(args.index, host=args.host, port=args.port, api_key=args.api_key, writable=not args.read_only,
          limits=Limits(max_k=args.max_k, max_batch=args.max_batch), log_level="warning" if args.quiet else "info")
    return EXIT_OK


def cmd_reproduce(args, parser) -> int:
    from .reproduce import load_matrix, record, render_table, reproduce, select, update_readme

    matrix = load_matrix(args.matrix)
    if args.table:
        print(render_table(matrix))
        return EXIT_OK
    if args.update_readme:
        changed = update_readme(args.update_readme, matrix)
        print(f"{args.update_readme}: {'table updated' if changed else 'table already up to date'}")
        return EXIT_OK
    rows = select(matrix.rows, args.only)
    if not rows:
        parser.error(f"--only {args.only!r} matches no row; see `lsr reproduce --list`")
    if args.list:
        for r in rows:
            extra = f"  [needs {r.requires}]" if r.requires else ""
            print(f"{r.id}\t{r.encoder} on {r.dataset} ({r.engine}){extra}")
        return EXIT_OK
    report = reproduce(matrix, only=args.only, data_dir=args.data_dir, out_dir=args.out,
                       show_progress=not args.quiet)
    print(report.to_markdown())
    print(f"\nreport: {Path(args.out) / 'report.md'}", file=sys.stderr)
    if args.record:
        print(f"recorded measured values into {record(report, matrix)}", file=sys.stderr)
        return EXIT_OK
    counts = report.counts()
    if counts["pass"] + counts["fail"] + counts["error"] == 0:
        print("lsr reproduce: no row could run here (all skipped); see the reasons above", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK if report.ok else EXIT_FAIL


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: --help / --version (0) or a usage error (2)
        return int(e.code) if isinstance(e.code, int) else EXIT_USAGE
    sub = getattr(args, "sub", parser)  # usage errors print the usage of the subcommand that failed
    handler = getattr(args, "handler", None)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if handler is None:
        try:
            sub.error("`lsr index` needs an action: build or info (see `lsr index --help`)")
        except SystemExit as e:
            return int(e.code) if isinstance(e.code, int) else EXIT_USAGE
    with _quiet_environment(args.quiet):
        _setup_logging(args.verbose, args.quiet)
        try:
            return handler(args, sub)
        except SystemExit as e:  # sub.error inside a command
            return int(e.code) if isinstance(e.code, int) else EXIT_USAGE
        except KeyboardInterrupt:
            print("lsr: interrupted", file=sys.stderr)
            return 130
        except (ValueError, OSError, RuntimeError) as e:
            if args.verbose >= 2:
                logger.exception("failed")
            print(f"{sub.prog}: error: {e}", file=sys.stderr)
            return EXIT_FAIL
        except Exception as e:  # a bug: say so, keep the traceback one flag away
            if args.verbose >= 2:
                logger.exception("unexpected failure")
            print(f"{sub.prog}: unexpected error: {type(e).__name__}: {e} (run with -vv for the traceback)",
                  file=sys.stderr)
            return EXIT_FAIL


#: environment variables that silence the progress bars of tqdm and of Hugging Face libraries
_QUIET_ENV = {"TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error"}


@contextlib.contextmanager
def _quiet_environment(quiet: bool):
    """With ``-q``: no progress bar from anyone (lsr's, transformers', the hub's) for the command; restored after."""
    if not quiet:
        yield
        return
    before = {k: os.environ.get(k) for k in _QUIET_ENV}
    os.environ.update(_QUIET_ENV)
    hf_logging = sys.modules.get("transformers.utils.logging")  # imported earlier in this process
    was_active = hf_logging.is_progress_bar_enabled() if hf_logging is not None else None
    if hf_logging is not None:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if hf_logging is not None and was_active:
            hf_logging.enable_progress_bar()


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
