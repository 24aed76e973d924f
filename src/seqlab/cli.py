"""Command line: argument parsing only; each verb calls one typed library function.

Errors a user can cause are SeqlabError: printed as one line, exit status 2, no traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import Any

from seqlab.errors import SeqlabError

# (flag, setting, type, help). Types: str/int/float, bool -> --x/--no-x, "list" -> comma list.
SETTING_FLAGS: list[tuple[str, str, Any, str]] = [
    ("--test-data", "data.test_data", str, "a separate test file"),
    ("--data-dir", "data.data_dir", str, "folder with the publishers' files (default $SEQLAB_DATA_DIR)"),
    ("--format", "data.format", str, "reader: csv, tsv, jsonl, fasttext, folder; tag: conllu, tsv (default: by extension)"),
    ("--text-column", "data.text_column", str, "column/field holding the text (default: text)"),
    ("--label-column", "data.label_column", str, "column/field holding the label (default: label)"),
    ("--condition-column", "data.condition_column", str, "generate: column/field the text is written for (default: condition)"),
    ("--encoding", "data.encoding", str, "file encoding (default utf-8), e.g. latin-1"),
    ("--validation-fraction", "data.validation_fraction", float, "share of train held out when no validation split is given"),
    ("--limit", "data.limit", int, "use at most N random examples per split (quick runs)"),
    ("--tokenizer", "data.tokenizer", str, "word or char"),
    ("--lowercase", "data.lowercase", bool, "lowercase text before tokenizing"),
    ("--max-vocab", "data.max_vocab", int, "keep the N most frequent tokens"),
    ("--min-freq", "data.min_freq", int, "drop tokens seen fewer times in training"),
    ("--max-length", "data.max_length", int, "tokens kept per example"),
    ("--source", "data.source_file", str, "translate: source sentences, one per line (gzip accepted)"),
    ("--target", "data.target_file", str, "translate: their translations, line by line"),
    ("--valid-source", "data.valid_source", str, "translate: validation source file"),
    ("--valid-target", "data.valid_target", str, "translate: validation target file"),
    ("--test-source", "data.test_source", str, "translate: test source file"),
    ("--test-target", "data.test_target", str, "translate: test target file"),
    ("--tag-column", "data.tag_column", str, "tag: CoNLL-U tags to learn, upos or xpos (default upos)"),
    ("--embed-dim", "model.embed_dim", int, "embedding size"),
    ("--hidden-dim", "model.hidden_dim", int, "hidden size (rnn state, bow MLP)"),
    ("--cell", "model.cell", str, "recurrent cell: lstm, gru or rnn (translate: the decoder's with a bow/cnn encoder)"),
    ("--attention", "model.attention", str, "translate: none, dot, general or additive"),
    ("--beam", "model.beam", int, "translate: beam width used for testing (1 = greedy)"),
    ("--length-penalty", "model.length_penalty", float, "translate: rank beams by log-prob / length**P"),
    ("--layers", "model.layers", int, "stacked recurrent layers"),
    ("--bidirectional", "model.bidirectional", bool, "read both directions (rnn family)"),
    ("--dropout", "model.dropout", float, "dropout rate"),
    ("--pooling", "model.pooling", str, "rnn sequence summary: last, max, mean, or several joined with + (max+mean)"),
    ("--kernel-sizes", "model.kernel_sizes", "list", "cnn filter widths, e.g. 3,4,5"),
    ("--filters", "model.filters", int, "cnn filters per width"),
    ("--bigrams", "model.bigrams", bool, "bow: add hashed bigram features"),
    ("--hash-buckets", "model.hash_buckets", int, "bow: buckets for hashed bigrams"),
    ("--char-features", "model.char_features", bool, "tag: char CNN features per word (default on)"),
    ("--word-dropout", "model.word_dropout", float, "tag/classify: training reads a word seen c times as <unk> with chance A/(A+c)"),
    ("--guidance", "model.guidance", float, "generate: default guidance weight of the trained model's sampling"),
    ("--condition-dropout", "model.condition_dropout", float, "generate: hide the condition of this share of training examples (enables --guidance)"),
    ("--char-dim", "model.char_dim", int, "tag: character embedding size"),
    ("--char-filters", "model.char_filters", int, "tag: char CNN features per word"),
    ("--features", "model.features", str, "linear: count, tfidf or binary"),
    ("--ngram-max", "model.ngram_max", int, "linear: longest n-gram"),
    ("--min-df", "model.min_df", int, "linear: drop n-grams seen in fewer documents"),
    ("--nb", "model.nb", bool, "linear: naive-Bayes feature scaling (NBSVM)"),
    ("--C", "model.C", float, "linear: inverse regularization strength"),
    ("--epochs", "train.epochs", int, "maximum epochs"),
    ("--batch-size", "train.batch_size", int, "examples per batch"),
    ("--lr", "train.lr", float, "Adam learning rate"),
    ("--weight-decay", "train.weight_decay", float, "Adam weight decay"),
    ("--lr-decay", "train.lr_decay", float, "multiply the learning rate by this after each epoch (default 1)"),
    ("--ema", "train.ema", float, "evaluate and keep an exponential moving average of the weights with this per-step decay, e.g. 0.999 (default 0 = off)"),
    ("--label-smoothing", "train.label_smoothing", float, "translate: label smoothing of the training loss"),
    ("--grad-clip", "train.grad_clip", float, "gradient norm clipping (0 = off)"),
    ("--patience", "train.patience", int, "early stopping patience in epochs (0 = off)"),
    ("--seed", "train.seed", int, "random seed (same seed, same machine: same metrics)"),
    ("--accelerator", "train.accelerator", str, "Lightning accelerator: auto, cpu, gpu"),
    ("--devices", "train.devices", str, "Lightning devices, e.g. 2 or auto"),
    ("--strategy", "train.strategy", str, "Lightning strategy, e.g. ddp"),
    ("--num-nodes", "train.num_nodes", int, "machines for distributed training"),
    ("--precision", "train.precision", str, "Lightning precision, e.g. 32-true, bf16-mixed"),
    ("--progress", "train.progress", bool, "show progress bars"),
    ("--seq-len", "train.seq_len", int, "lm: tokens per training window (truncated BPTT, default 100)"),
    ("--max-minutes", "train.max_minutes", float, "stop training after this many minutes; the best model is kept"),
]


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (override --config)")
    for flag, setting, kind, help_text in SETTING_FLAGS:
        dest = "set:" + setting
        if kind is bool:
            group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            group.add_argument(flag, dest=dest, type=str if kind == "list" else kind, default=None, help=help_text)


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    return {k[4:]: v for k, v in vars(args).items() if k.startswith("set:") and v is not None}


def _parser() -> argparse.ArgumentParser:
    from seqlab import __version__

    root = argparse.ArgumentParser(
        prog="seqlab",
        description="Train, evaluate, compare and inspect bag-of-words, CNN and recurrent sequence models.",
        epilog="example: seqlab train --task classify --data names --family gru --out runs/names",
    )
    root.add_argument("--version", action="version", version=f"seqlab {__version__}")
    root.add_argument("--verbose", action="store_true", help="show library logs and warnings")
    verbs = root.add_subparsers(dest="verb", metavar="VERB")

    def verb(name: str, help_text: str, example: str) -> argparse.ArgumentParser:
        p = verbs.add_parser(name, help=help_text, description=help_text, epilog=f"example: {example}",
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--json", action="store_true", help="print one JSON object for machines")
        return p

    p = verb("train", "train a model and write a bundle folder",
             "seqlab train --task classify --data imdb --family lstm --epochs 3 --out runs/imdb-lstm")
    p.add_argument("--task", default="classify", help="task shape: classify, tag, lm, generate or translate (default: classify)")
    p.add_argument("--data", help="dataset name (imdb, names, demo) or a file/folder path")
    p.add_argument("--family", default=None, help="linear, bow, cnn, rnn, lstm or gru (default: lstm)")
    p.add_argument("--out", required=True, help="bundle folder to write")
    p.add_argument("--config", help="YAML file of settings (flags override it)")
    p.add_argument("--resume", nargs="?", const="last", default=None,
                   help="continue from OUT/checkpoints/last.ckpt (or a given .ckpt)")
    _add_setting_flags(p)

    p = verb("test", "evaluate a bundle on a dataset split or a file",
             "seqlab test runs/imdb-lstm --data imdb --split test --json")
    p.add_argument("model", help="bundle folder")
    p.add_argument("--data", help="dataset name or file (default: what the model was trained on)")
    p.add_argument("--split", default="test", help="train, validation or test (default: test)")
    p.add_argument("--data-dir", help="folder with the publishers' files")
    p.add_argument("--text-column", help="column/field holding the text")
    p.add_argument("--label-column", help="column/field holding the label")
    p.add_argument("--encoding", help="file encoding, e.g. latin-1")
    p.add_argument("--plots", help="folder to write the confusion matrix PNG into")
    p.add_argument("--classifier", help="generate: a classifier bundle that judges which condition samples fit")

    p = verb("predict", "predict labels for texts (arguments, --file, or lines on stdin)",
             'seqlab predict runs/imdb-lstm "a wonderful, moving film" --json')
    p.add_argument("model", help="bundle folder")
    p.add_argument("texts", nargs="*", help="texts to classify ('-' or none: read lines from stdin)")
    p.add_argument("--file", help="read one text per line from this file ('-' for stdin)")

    p = verb("generate", "sample text from a language model (--task lm, printed as it is written) or "
             "texts for a condition (--task generate, one per line)",
             'seqlab generate runs/shakespeare --prime "ROMEO:" --length 500 --temperature 0.8 --seed 1\n'
             '         seqlab generate runs/names-gen --condition Russian -n 10 --temperature 0.8 --seed 1')
    p.add_argument("model", help="bundle folder of a language model or a conditional generator")
    p.add_argument("--prime", default="", help="text to start from (lm default: a line break)")
    p.add_argument("--length", type=int, default=None,
                   help="lm: tokens (characters) to generate (default 500); generate: the most per text")
    p.add_argument("--condition", help="generate: what to write for, e.g. a language")
    p.add_argument("-n", "--num", type=int, default=10, help="generate: how many texts (default 10)")
    p.add_argument("--guidance", type=float, default=None,
                   help="generate: favor what is typical of the condition: 0 = plain sampling (default: "
                        "the model's, 1.0 when trained with --condition-dropout)")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="above 0; below 1 is safer, above 1 wilder (default 1)")
    p.add_argument("--top-k", type=int, default=None, help="sample only from the K most likely tokens")
    p.add_argument("--seed", type=int, default=None, help="same seed, same text (default: random)")

    p = verb("translate", "translate sentences with an encoder-decoder model (--task translate)",
             'seqlab translate runs/de-en "Ein Hund rennt über die Wiese." --beam 5 --json')
    p.add_argument("model", help="bundle folder of a translation model")
    p.add_argument("texts", nargs="*", help="sentences ('-' or none: read lines from stdin)")
    p.add_argument("--file", help="read one sentence per line from this file ('-' for stdin)")
    p.add_argument("--beam", type=int, default=None, help="beam width (1 = greedy; default: the model's, 5)")
    p.add_argument("--attention-png", metavar="FILE", help="write the attention heatmap of the first sentence")

    p = verb("inspect", "color a passage by one hidden unit of a language model, with its top-5 "
             "next-character guesses (HTML or PNG)",
             "seqlab inspect runs/shakespeare passage.txt --unit 17 --out unit17.html")
    p.add_argument("model", help="bundle folder of a language model")
    p.add_argument("passage", help="the text to read, or a file holding it")
    p.add_argument("--unit", type=int, default=None, help="hidden unit to show (default: the most varying)")
    p.add_argument("--out", required=True, help="FILE.html or FILE.png to write")
    p.add_argument("--encoding", default="utf-8", help="encoding of a passage file")

    p = verb("compare", "train several families on the same split and compare them",
             "seqlab compare --data imdb --families linear,bow,cnn,lstm,gru --out runs/compare")
    p.add_argument("--data", required=True, help="dataset name or file/folder path")
    p.add_argument("--families", default="linear,bow,cnn,lstm,gru",
                   help="comma list of families or variants (linear+bigrams, bow+bigrams, bilstm, bigru)")
    p.add_argument("--out", required=True, help="folder for the bundles and the report")
    p.add_argument("--task", default="classify", help="task shape (default: classify)")
    p.add_argument("--config", help="YAML file of settings")
    _add_setting_flags(p)

    p = verb("probe", "order-sensitivity probe: minimal pairs with identical bags of words",
             "seqlab probe runs/demo/lstm --pairs pairs.tsv --json")
    p.add_argument("model", help="bundle folder of a classifier")
    p.add_argument("--pairs", help="TSV with columns positive, negative (default: built-in pairs)")
    p.add_argument("--positive-label", help="which label is positive (default: pos/positive/1)")

    p = verb("bow", "print the bag-of-words table of sentences and which get identical vectors",
             'seqlab bow "The movie my friend has not seen is good" "The movie my friend has seen is not good"')
    p.add_argument("sentences", nargs="+", help="sentences")

    p = verb("datasets", "list named datasets and where each resolves; --fetch one",
             "seqlab datasets --data-dir ../shared/data")
    p.add_argument("--data-dir", help="folder with the publishers' files")
    p.add_argument("--fetch", metavar="NAME", help="download NAME into the cache now")

    p = verb("demo", "the lecture's point, measured: BoW vs CNN vs LSTM on order-sensitive reviews",
             "seqlab demo            # built-in corpus, offline, under a minute on 2 CPU cores")
    p.add_argument("--data", default="demo", help="dataset name or path (default: built-in corpus)")
    p.add_argument("--out", default=None, help="folder for bundles and report (default: a temp folder)")
    p.add_argument("--families", default="linear,bow,cnn,lstm", help="families to train")
    p.add_argument("--bigrams", action=argparse.BooleanOptionalAction, default=True,
                   help="add the bigram variants as extra rows")
    _add_setting_flags_demo(p)
    return root


def _add_setting_flags_demo(p: argparse.ArgumentParser) -> None:
    for flag, setting, kind in (("--epochs", "train.epochs", int), ("--seed", "train.seed", int),
                                ("--limit", "data.limit", int), ("--data-dir", "data.data_dir", str)):
        p.add_argument(flag, dest="set:" + setting, type=kind, default=None)
    p.add_argument("--progress", dest="set:train.progress", action=argparse.BooleanOptionalAction, default=None)


# -- verbs ---------------------------------------------------------------------------------
def _print(args, data: Any, text: str) -> None:
    print(json.dumps(data, ensure_ascii=False) if args.json else text)


def cmd_train(args) -> None:
    from seqlab.api import train

    settings = _settings(args)
    bundle = train(out=args.out, task=args.task, data=args.data, family=args.family,
                   resume=args.resume, config=args.config, **settings)
    if bundle is None:  # a non-zero rank of a distributed run
        return
    metrics = bundle.metrics
    split = "test" if "test" in metrics else "validation"
    summary = {k: metrics[split].get(k) for k in bundle.task.headline_metrics
               if isinstance(metrics[split].get(k), float)}
    text = f"wrote {args.out}  ({split}: " + ", ".join(f"{k} {v:.4f}" for k, v in summary.items()) + ")"
    _print(args, {"bundle": args.out, "split": split, "metrics": metrics[split]}, text)


def cmd_test(args) -> None:
    from seqlab.api import test
    from seqlab.report import format_table

    extra = {f"data.{k}": getattr(args, k) for k in ("data_dir", "text_column", "label_column", "encoding")
             if getattr(args, k)}
    result = test(args.model, data=args.data, split=args.split, out_dir=args.plots, classifier=args.classifier,
                  **extra)
    m = result["metrics"]
    if "per_class" not in m:  # no per-label table (lm): the headline figures
        figures = "  ".join(f"{k} {v:.4f}" for k, v in m.items() if isinstance(v, float))
        _print(args, result, f"{result['data']} [{result['split']}]: {figures}")
        return
    rows = [{"label": name, **{k.replace("-", "_"): v for k, v in per.items()}} for name, per in m["per_class"].items()]
    table = format_table(rows, [("label", "label"), ("precision", "precision"), ("recall", "recall"),
                                ("f1_score", "F1"), ("support", "support")])
    # task-specific headline figures (tag: upos_accuracy, unseen_accuracy, chunk_f1)
    extra = "".join(f"  {k} {v:.4f}" for k, v in m.items()
                    if (k.endswith("_accuracy") or k == "chunk_f1") and isinstance(v, float))
    text = (f"{result['data']} [{result['split']}]: accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}"
            f"{extra}  ({m['examples']} examples)\n\n{table}")
    _print(args, result, text)


def _read_inputs(args) -> list[str]:
    if args.file:
        from seqlab.files import open_text_lines

        if args.file == "-":
            return [line.rstrip("\n") for line in sys.stdin if line.strip()]
        return [line for _, line in open_text_lines(args.file) if line.strip()]
    if args.texts and args.texts != ["-"]:
        return list(args.texts)
    if sys.stdin.isatty() and not args.texts:
        raise SeqlabError("no input: give texts as arguments, --file FILE, or lines on stdin")
    return [line.rstrip("\n") for line in sys.stdin if line.strip()]


def cmd_predict(args) -> None:
    import seqlab

    bundle = seqlab.load(args.model)
    texts = _read_inputs(args)
    if not texts:
        raise SeqlabError("no input text to predict")
    outputs = bundle.predict(texts)
    if args.json:
        items = [{"text": t, **o} for t, o in zip(texts, outputs)]
        print(json.dumps(items[0] if len(items) == 1 else items, ensure_ascii=False))
        return
    for text, out in zip(texts, outputs):
        print(bundle.task.format_prediction(text, out))


def cmd_generate(args) -> None:
    import seqlab

    bundle = seqlab.load(args.model)
    if bundle.cfg.task == "generate":
        texts = bundle.sample(args.condition, args.num, args.temperature, args.top_k, args.seed,
                              prime=args.prime, max_length=args.length, guidance=args.guidance)
        _print(args, {"condition": args.condition, "texts": texts, "seed": args.seed}, "\n".join(texts))
        return
    if args.condition:
        raise SeqlabError(f"a {bundle.cfg.task} model has no conditions; --condition is for --task generate models")

    def warn(message: str) -> None:
        print(f"seqlab: warning: {message}", file=sys.stderr, flush=True)

    length = 500 if args.length is None else args.length
    pieces = bundle.generate_stream(args.prime, length, args.temperature, args.top_k, args.seed, warn=warn)
    if args.json:
        text = "".join(pieces)
        print(json.dumps({"prime": args.prime, "text": text, "seed": args.seed}, ensure_ascii=False))
        return
    out, last = sys.stdout, args.prime
    out.write(args.prime)
    for piece in pieces:  # streamed: each piece appears as soon as it is sampled
        out.write(piece)
        out.flush()
        last = piece or last
    if not last.endswith("\n"):
        out.write("\n")
    out.flush()


def cmd_translate(args) -> None:
    import seqlab

    bundle = seqlab.load(args.model)
    texts = _read_inputs(args)
    if not texts:
        raise SeqlabError("no input sentence to translate")

    def warn(message: str) -> None:
        print(f"seqlab: warning: {message}", file=sys.stderr, flush=True)

    outputs = bundle.translate(texts, beam=args.beam, warn=warn)
    if args.attention_png:
        bundle.attention_heatmap(texts[0], args.attention_png, beam=args.beam)
    if args.json:
        items = [{"source": s, "translation": t} for s, t in zip(texts, outputs)]
        print(json.dumps(items[0] if len(items) == 1 else items, ensure_ascii=False))
        return
    print("\n".join(outputs))


def cmd_inspect(args) -> None:
    import seqlab
    from seqlab.visualize import visualize

    passage = args.passage
    if os.path.isfile(passage):
        from seqlab.files import read_text

        passage = read_text(passage, args.encoding)
    result = visualize(seqlab.load(args.model), passage, args.out, args.unit)
    cut = " (passage cut to its start)" if result["truncated"] else ""
    _print(args, result, f"wrote {result['out']}: unit {result['unit']} of {result['units']}, "
                         f"{result['tokens']} tokens{cut}")


def cmd_compare(args) -> None:
    from seqlab.compare import compare

    report = compare(data=args.data, families=args.families, out=args.out, task=args.task,
                     config=args.config, settings=_settings(args))
    _print(args, report, f"{report['table']}\n\nreport: {args.out}/compare.md")


def cmd_probe(args) -> None:
    import seqlab
    from seqlab.probe import probe, read_pairs

    pairs = read_pairs(args.pairs) if args.pairs else None
    result = probe(seqlab.load(args.model), pairs, args.positive_label)
    from seqlab.probe import format_probe

    _print(args, result, format_probe(result))


def cmd_bow(args) -> None:
    from seqlab.probe import bow_table

    table = bow_table(args.sentences)
    vocab = table["vocabulary"]
    width = max(len(w) for w in vocab)
    header = [" " * 3 + "".join(f"{w:>{width + 1}}" for w in vocab)]
    rows = [f"S{i + 1:<2}" + "".join(f"{c:>{width + 1}}" for c in row) for i, row in enumerate(table["rows"])]
    notes = [f"S{i + 1}: {s}" for i, s in enumerate(table["sentences"])]
    if table["identical"]:
        for group in table["identical"]:
            notes.append("identical vectors: " + ", ".join(f"S{i + 1}" for i in group)
                         + " (a bag-of-words model cannot tell them apart)")
    else:
        notes.append("no two sentences share a vector")
    _print(args, table, "\n".join(header + rows + [""] + notes))


def cmd_datasets(args) -> None:
    from seqlab.data import datasets

    if args.fetch:
        path = datasets.resolve(args.fetch, args.data_dir)
        _print(args, {"name": args.fetch, "path": str(path)}, f"{args.fetch}: {path}")
        return
    rows = datasets.describe(args.data_dir)
    text = "\n".join(f"{r['name']:16} {r['description']}\n{'':16} -> {r['where']}" for r in rows)
    text += "\n" + f"{'demo':16} built-in order-sensitive review corpus (generated, no download)"
    _print(args, {"datasets": rows}, text)


def cmd_demo(args) -> None:
    from seqlab.demo import run_demo

    result = run_demo(data=args.data, out=args.out, families=args.families, bigrams=args.bigrams,
                      settings=_settings(args))
    _print(args, result, result["text"])


COMMANDS = {
    "train": cmd_train, "test": cmd_test, "predict": cmd_predict, "compare": cmd_compare,
    "probe": cmd_probe, "bow": cmd_bow, "datasets": cmd_datasets, "demo": cmd_demo,
    "generate": cmd_generate, "inspect": cmd_inspect, "translate": cmd_translate,
}


def _quiet_libraries(verbose: bool) -> None:
    if verbose:
        os.environ["SEQLAB_VERBOSE"] = "1"
        return
    warnings.filterwarnings("ignore")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")  # reaches DDP worker processes too


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, extras = parser.parse_known_args(argv)
    # texts after an option (`translate DIR --beam 5 "Ein Hund."`): argparse leaves them over
    if extras and isinstance(getattr(args, "texts", None), list) and not any(e.startswith("-") for e in extras):
        args.texts += extras
    elif extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    if not args.verb:
        parser.print_help()
        return 0
    _quiet_libraries(args.verbose)
    try:
        COMMANDS[args.verb](args)
    except SeqlabError as exc:
        print(f"seqlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("seqlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return 0
