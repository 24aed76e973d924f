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

SETTING_VERBS = ("train", "compare", "tune")  # verbs that take every setting as a flag


class UsageError(Exception):
    """A command line argparse cannot parse: one line, then a pointer to the verb's --help."""

    def __init__(self, message: str, prog: str):
        super().__init__(message)
        self.hint = f"try '{prog} --help'"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (`seqlab: error: ...`) and a --help hint, not the
    whole usage (train's is 60 lines). main() prints it and returns exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(message, self.prog)


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per declared setting (config.setting metadata), grouped by who owns it: the
    data and training sections, the shared model settings, each family's and each task's."""
    from typing import get_args

    from seqlab.config import flag_of, iter_settings

    groups: dict[str, argparse._ArgumentGroup] = {}
    for name, f, hint, owner in iter_settings():
        if not f.metadata.get("cli", True):
            continue
        if owner not in groups:
            title = {"data": "data", "train": "training", "model": "model (every family)"}.get(owner, owner)
            groups[owner] = parser.add_argument_group(f"{title} settings (override --config)")
        kind = next((a for a in get_args(hint) if a is not type(None)), hint)
        dest, help_text = "set:" + name, f.metadata.get("help", "")
        if kind is bool:
            groups[owner].add_argument(flag_of(name, f), dest=dest, action=argparse.BooleanOptionalAction,
                                       default=None, help=help_text)
        else:
            kind = kind if kind in (int, float) else str  # lists: comma-separated, read by config
            groups[owner].add_argument(flag_of(name, f), dest=dest, type=kind, default=None, help=help_text,
                                       metavar=f.name.upper())


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    return {k[4:]: v for k, v in vars(args).items() if k.startswith("set:") and v is not None}


def _parser(verb_hint: str | None = None) -> argparse.ArgumentParser:
    """The argument parser. Setting flags (generated from the families' and tasks' settings,
    which imports torch) are added only when `verb_hint` is a verb that takes them, so
    `seqlab predict` starts without importing the training stack."""
    from seqlab import __version__

    root = _Parser(
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

    _add_training_verbs(verb, verb_hint)
    _add_inference_verbs(verb)
    _add_utility_verbs(verb)
    return root


def _add_training_verbs(verb, verb_hint: str | None) -> None:
    """train, test, compare, demo: the verbs that fit models (and take every setting as a flag)."""
    p = verb("train", "train a model and write a bundle folder",
             "seqlab train --task classify --data imdb --family lstm --epochs 3 --out runs/imdb-lstm")
    p.add_argument("--task", default="classify", help="task shape: classify, tag, lm, generate or translate (default: classify)")
    p.add_argument("--data", help="dataset name (imdb, names, demo) or a file/folder path")
    p.add_argument("--family", default=None, help="linear, bow, cnn, rnn, lstm or gru (default: lstm)")
    p.add_argument("--out", required=True, help="bundle folder to write")
    p.add_argument("--config", help="YAML file of settings (flags override it)")
    p.add_argument("--resume", nargs="?", const="last", default=None,
                   help="continue from OUT/checkpoints/last.ckpt (or a given .ckpt)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the bundle, checkpoints and logs of a previous run in OUT")
    p.add_argument("--cv", type=int, metavar="K", default=None,
                   help="K-fold stratified cross-validation instead of one run: mean ± std per metric and "
                        "the per-fold table in OUT/crossval.md (classify; no bundle unless --final)")
    p.add_argument("--final", action="store_true",
                   help="with --cv: also train the recipe on all the data into OUT/final")
    if verb_hint in SETTING_VERBS:
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
    p.add_argument("--runtime", choices=("torch", "onnx"), default="torch",
                   help="onnx: the model's outputs come from its export (seqlab export) run by onnxruntime; "
                        "the metrics are the same, to compare an export (int8 too) with the bundle")

    p = verb("compare", "train several families on the same split and compare them",
             "seqlab compare --data imdb --families linear,bow,cnn,lstm,gru --out runs/compare")
    p.add_argument("--data", required=True, help="dataset name or file/folder path")
    p.add_argument("--families", default="linear,bow,cnn,lstm,gru",
                   help="comma list of families or variants (linear+bigrams, bow+bigrams, bilstm, bigru)")
    p.add_argument("--out", required=True, help="folder for the bundles and the report")
    p.add_argument("--task", default="classify", help="task shape (default: classify)")
    p.add_argument("--config", help="YAML file of settings")
    p.add_argument("--overwrite", action="store_true", help="replace a previous comparison in OUT")
    if verb_hint in SETTING_VERBS:
        _add_setting_flags(p)

    p = verb("tune", "search a family's settings with Optuna on the validation split, then train the best "
             "(needs pip install 'seqlab[tune]')",
             "seqlab tune --data cr --family cnn --budget-minutes 15 --out runs/cr-tune\n"
             "         seqlab train --config runs/cr-tune/best.yaml --out runs/cr-best   # the best config again")
    p.add_argument("--task", default="classify", help="task shape (default: classify)")
    p.add_argument("--data", help="dataset name or a file/folder path")
    p.add_argument("--family", default=None, help="linear, bow, cnn, rnn, lstm or gru (default: lstm)")
    p.add_argument("--budget-minutes", type=float, required=True, metavar="M",
                   help="start no trial after M minutes (the final bundle is trained after the search)")
    p.add_argument("--trials", type=int, default=None, metavar="N", help="run at most N trials (default: until the budget)")
    p.add_argument("--out", required=True,
                   help="run folder: study.db, trials.csv, best.yaml, final/ (the bundle), tune.md and plots")
    p.add_argument("--config", help="YAML file of settings; they and the flags below are fixed, not searched")
    p.add_argument("--resume", action="store_true", help="continue the study in OUT/study.db with more trials")
    p.add_argument("--overwrite", action="store_true", help="replace a previous study in OUT")
    if verb_hint in SETTING_VERBS:
        _add_setting_flags(p)

    p = verb("demo", "the lecture's point, measured: BoW vs CNN vs LSTM on order-sensitive reviews",
             "seqlab demo            # built-in corpus, offline, under a minute on 2 CPU cores")
    p.add_argument("--data", default="demo", help="dataset name or path (default: built-in corpus)")
    p.add_argument("--out", default=None, help="folder for bundles and report (default: a temp folder)")
    p.add_argument("--families", default="linear,bow,cnn,lstm", help="families to train")
    p.add_argument("--bigrams", action=argparse.BooleanOptionalAction, default=True,
                   help="add the bigram variants as extra rows")
    _add_setting_flags_demo(p)


def _add_inference_verbs(verb) -> None:
    """predict, generate, translate, inspect, probe, serve: the verbs that use a trained bundle."""
    p = verb("predict", "predict labels for texts (arguments, --file, or lines on stdin)",
             'seqlab predict runs/imdb-lstm "a wonderful, moving film" --json')
    p.add_argument("model", help="bundle folder")
    p.add_argument("texts", nargs="*", help="texts to classify ('-' or none: read lines from stdin)")
    p.add_argument("--file", help="read one text per line from this file ('-' for stdin)")
    p.add_argument("--encoding", default="utf-8", help="encoding of --file (default utf-8; a UTF-16 BOM is read)")
    p.add_argument("--runtime", choices=("torch", "onnx"), default="torch",
                   help="onnx: run the export made by 'seqlab export' (DIR or DIR/onnx) with onnxruntime, "
                        "without importing torch (default: torch)")

    p = verb("export", "export a bundle to ONNX (graphs beside a copy of its JSON files) for --runtime onnx",
             "seqlab export runs/imdb-gru --format onnx            # writes runs/imdb-gru/onnx\n"
             "         seqlab export runs/imdb-gru --format onnx --quantize int8 --out deploy/imdb-gru-int8")
    p.add_argument("model", help="bundle folder")
    p.add_argument("--format", default="onnx", choices=("onnx",), help="export format (default: onnx)")
    p.add_argument("--out", default=None, help="folder to write (default: DIR/onnx, or DIR/onnx-int8)")
    p.add_argument("--quantize", choices=("int8",), default=None,
                   help="int8: dynamic quantization of the weights (onnxruntime's quantizer)")

    p = verb("generate", "sample text from a language model (--task lm, printed as it is written) or "
             "texts for a condition (--task generate, one per line)",
             'seqlab generate runs/shakespeare --prime "ROMEO:" --length 500 --temperature 0.8 --seed 1\n'
             '         seqlab generate runs/names-gen --condition Russian -n 10 --temperature 0.8 --seed 1')
    p.add_argument("model", help="bundle folder of a language model or a conditional generator")
    p.add_argument("--prime", default="", help="text to start from (lm default: a line break)")
    p.add_argument("--runtime", choices=("torch", "onnx"), default="torch",
                   help="onnx: run the export made by 'seqlab export' with onnxruntime, without torch")
    p.add_argument("--length", type=int, default=None,
                   help="lm: tokens (characters) to generate (default 500), printed as they are sampled (with "
                        "--json: at most 100,000); generate: the most per text (at most 100,000)")
    p.add_argument("--condition", help="generate: what to write for, e.g. a language")
    p.add_argument("-n", "--num", type=int, default=None, help="generate: how many texts (default 10, at most 10,000)")
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
    p.add_argument("--encoding", default="utf-8", help="encoding of --file (default utf-8; a UTF-16 BOM is read)")
    p.add_argument("--beam", type=int, default=None, help="beam width (1 = greedy; default: the model's, 5)")
    p.add_argument("--attention-png", metavar="FILE", help="write the attention heatmap of the first sentence")
    p.add_argument("--runtime", choices=("torch", "onnx"), default="torch",
                   help="onnx: run the export made by 'seqlab export' with onnxruntime, without torch")

    p = verb("inspect", "color a passage by one hidden unit of a language model, with its top-5 "
             "next-character guesses (HTML or PNG)",
             "seqlab inspect runs/shakespeare passage.txt --unit 17 --out unit17.html")
    p.add_argument("model", help="bundle folder of a language model")
    p.add_argument("passage", help="the text to read, or a file holding it")
    p.add_argument("--unit", type=int, default=None, help="hidden unit to show (default: the most varying)")
    p.add_argument("--out", required=True, help="FILE.html or FILE.png to write")
    p.add_argument("--encoding", default="utf-8", help="encoding of a passage file")

    p = verb("probe", "order-sensitivity probe: minimal pairs with identical bags of words",
             "seqlab probe runs/demo/lstm --pairs pairs.tsv --json")
    p.add_argument("model", help="bundle folder of a classifier")
    p.add_argument("--pairs", help="TSV with columns positive, negative (default: built-in pairs)")
    p.add_argument("--positive-label", help="which label is positive (default: pos/positive/1)")

    from seqlab.serve import EXAMPLE as SERVE_EXAMPLE
    from seqlab.serve import add_arguments as add_serve_arguments

    add_serve_arguments(verb("serve", "serve bundles over HTTP: predict, generate, translate, micro-batched "
                                      "(needs pip install 'seqlab[serve]')", SERVE_EXAMPLE))


def _add_utility_verbs(verb) -> None:
    """bow, datasets: the verbs that need no model."""
    p = verb("bow", "print the bag-of-words table of sentences and which get identical vectors",
             'seqlab bow "The movie my friend has not seen is good" "The movie my friend has seen is not good"')
    p.add_argument("sentences", nargs="+", help="sentences")

    p = verb("datasets", "list named datasets and where each resolves; --fetch one",
             "seqlab datasets --data-dir ../shared/data")
    p.add_argument("--data-dir", help="folder with the publishers' files")
    p.add_argument("--fetch", metavar="NAME", help="download NAME into the cache now")


def _add_setting_flags_demo(p: argparse.ArgumentParser) -> None:
    for flag, setting, kind in (("--epochs", "train.epochs", int), ("--seed", "train.seed", int),
                                ("--limit", "data.limit", int), ("--data-dir", "data.data_dir", str)):
        p.add_argument(flag, dest="set:" + setting, type=kind, default=None)
    p.add_argument("--progress", dest="set:train.progress", action=argparse.BooleanOptionalAction, default=None)


# -- verbs ---------------------------------------------------------------------------------
def _print(args, data: Any, text: str) -> None:
    print(json.dumps(data, ensure_ascii=False) if args.json else text)


def _recipe(args, settings: dict[str, Any]) -> str:
    """Which implied settings (task, dataset, family recipe) this run used, in one line."""
    from seqlab.config import load_config_file, recipe_summary, resolve_setting_name

    explicit = {resolve_setting_name(k) for k in settings}
    file_settings = load_config_file(args.config) if args.config else {}
    explicit |= set(file_settings)
    family = args.family or file_settings.get("model.family") or "lstm"
    data = args.data or file_settings.get("data.source")
    return recipe_summary(args.task, data, str(family), explicit)


def cmd_train(args) -> None:
    from seqlab.api import train

    settings = _settings(args)
    if args.cv is not None:
        from seqlab.api import cross_validate

        report = cross_validate(out=args.out, k=args.cv, task=args.task, data=args.data, family=args.family,
                                config=args.config, final=args.final, overwrite=args.overwrite, **settings)
        if report:  # rank 0 of a distributed run
            figures = ", ".join(f"{k} {v}" for k, v in report["summary"].items() if k not in ("epochs", "seconds"))
            _print(args, report, f"{args.cv}-fold cross-validation: {figures}\ntable: {args.out}/crossval.md")
        return
    bundle = train(out=args.out, task=args.task, data=args.data, family=args.family,
                   resume=args.resume, config=args.config, overwrite=args.overwrite, **settings)
    if bundle is None:  # a non-zero rank of a distributed run
        return
    metrics = bundle.metrics
    split = "test" if "test" in metrics else "validation"
    summary = {k: metrics[split].get(k) for k in bundle.task.headline_metrics
               if isinstance(metrics[split].get(k), float)}
    text = f"wrote {args.out}  ({split}: " + ", ".join(f"{k} {v:.4f}" for k, v in summary.items()) + ")"
    recipe = _recipe(args, settings)
    _print(args, {"bundle": args.out, "split": split, "metrics": metrics[split], "recipe": recipe},
           f"{text}\nrecipe: {recipe}")


def cmd_tune(args) -> None:
    from seqlab.tune import tune

    report = tune(out=args.out, budget_minutes=args.budget_minutes, task=args.task, data=args.data,
                  family=args.family, trials=args.trials, resume=args.resume, overwrite=args.overwrite,
                  config=args.config, **_settings(args))
    best, default = report["best"], report["default"]
    versus = f" (default recipe: {default['value']:.4f})" if default else ""
    _print(args, report, f"best of {report['trials']} trials: trial {best['trial']}, validation "
                         f"{report['monitor'].removeprefix('val_')} {best['value']:.4f}{versus}\n"
                         f"config: {args.out}/best.yaml  bundle: {report['final']}  report: {args.out}/tune.md")


def cmd_test(args) -> None:
    from seqlab.api import test
    from seqlab.report import format_table

    extra = {f"data.{k}": getattr(args, k) for k in ("data_dir", "text_column", "label_column", "encoding")
             if getattr(args, k)}
    result = test(args.model, data=args.data, split=args.split, out_dir=args.plots, classifier=args.classifier,
                  runtime=args.runtime, **extra)
    m = result["metrics"]
    # the task's headline figures, then its per-label table when it has one (classify, tag)
    shown = [k for k in result["headline"] if isinstance(m.get(k), float)]
    shown += [k for k, v in m.items() if isinstance(v, float) and k not in shown]
    text = f"{result['data']} [{result['split']}]: " + "  ".join(f"{k} {m[k]:.4f}" for k in shown)
    if "examples" in m:
        text += f"  ({m['examples']} examples)"
    if "per_class" in m:
        rows = [{"label": name, **{k.replace("-", "_"): v for k, v in per.items()}}
                for name, per in m["per_class"].items()]
        text += "\n\n" + format_table(rows, [("label", "label"), ("precision", "precision"), ("recall", "recall"),
                                             ("f1_score", "F1"), ("support", "support")])
    _print(args, result, text)


def _read_inputs(args) -> list[str]:
    if args.file:
        from seqlab.files import open_text_lines

        if args.file == "-":
            return [line.rstrip("\r\n") for line in sys.stdin]
        return [line.rstrip("\r\n") for _, line in open_text_lines(args.file, args.encoding)]
    if args.texts and args.texts != ["-"]:
        return list(args.texts)
    if sys.stdin.isatty() and not args.texts:
        raise SeqlabError("no input: give texts as arguments, --file FILE, or lines on stdin")
    return [line.rstrip("\r\n") for line in sys.stdin]


def _aligned(texts: list[str], run, what: str) -> list[Any]:
    """`run` over the non-blank texts; a blank input gives None, so outputs line up with the
    input lines (`translate < file` keeps its line numbers)."""
    keep = [i for i, t in enumerate(texts) if t.strip()]
    if not keep:
        raise SeqlabError(f"no input {what}: every line is empty or blank" if texts else f"no input {what}")
    outputs: list[Any] = [None] * len(texts)
    for i, out in zip(keep, run([texts[i] for i in keep])):
        outputs[i] = out
    return outputs


def cmd_predict(args) -> None:
    bundle = _load(args)
    texts = _read_inputs(args)
    outputs = _aligned(texts, bundle.predict, "text to predict")
    if args.json:
        items = [{"text": t, **(o or {})} for t, o in zip(texts, outputs)]
        print(json.dumps(items[0] if len(items) == 1 else items, ensure_ascii=False))
        return
    for text, out in zip(texts, outputs):
        print("" if out is None else bundle.task.format_prediction(text, out))


def cmd_export(args) -> None:
    from seqlab.export import export_bundle

    out = export_bundle(args.model, fmt=args.format, out=args.out, quantize=args.quantize)
    print(f"wrote {out} (load with seqlab.onnx.load, or: seqlab predict {out} --runtime onnx)")


def _load(args):
    """The bundle named on the command line, run by torch or (--runtime onnx) by onnxruntime."""
    if getattr(args, "runtime", "torch") == "onnx":
        import seqlab.onnx

        return seqlab.onnx.load(args.model)
    import seqlab

    return seqlab.load(args.model)


def cmd_generate(args) -> None:
    bundle = _load(args)
    if bundle.supports("sample"):
        num = 10 if args.num is None else args.num
        texts = bundle.sample(args.condition, num, args.temperature, args.top_k, args.seed,
                              prime=args.prime, max_length=args.length, guidance=args.guidance)
        _print(args, {"condition": args.condition, "texts": texts, "seed": args.seed}, "\n".join(texts))
        return
    if args.condition:
        raise SeqlabError(f"a {bundle.cfg.task} model has no conditions; --condition is for --task generate models")
    if args.num is not None:
        raise SeqlabError(f"a {bundle.cfg.task} model writes one text of --length tokens; -n is for --task generate "
                          "models")
    bundle.require("generate", "train a language model with --task lm (or a conditional one with --task generate)")

    def warn(message: str) -> None:
        print(f"seqlab: warning: {message}", file=sys.stderr, flush=True)

    length = 500 if args.length is None else args.length
    if args.json:  # one JSON document at the end: nothing is streamed, so the length is bounded
        from seqlab.decode import check_length

        check_length(length)
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
    bundle = _load(args)
    if args.attention_png and not args.attention_png.lower().endswith(".png"):
        raise SeqlabError(f"--attention-png {args.attention_png}: the heatmap is a PNG image; give a FILE.png")
    texts = _read_inputs(args)

    def warn(message: str) -> None:
        print(f"seqlab: warning: {message}", file=sys.stderr, flush=True)

    outputs = _aligned(texts, lambda some: bundle.translate(some, beam=args.beam, warn=warn),
                       "sentence to translate")
    outputs = ["" if t is None else t for t in outputs]
    if args.attention_png:
        first = next(t for t in texts if t.strip())
        bundle.attention_heatmap(first, args.attention_png, beam=args.beam)
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
                     config=args.config, settings=_settings(args), overwrite=args.overwrite)
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


def cmd_serve(args) -> None:
    from seqlab.serve import serve, settings_from_args

    serve(settings_from_args(args))


COMMANDS = {
    "train": cmd_train, "test": cmd_test, "predict": cmd_predict, "compare": cmd_compare,
    "probe": cmd_probe, "bow": cmd_bow, "datasets": cmd_datasets, "demo": cmd_demo,
    "generate": cmd_generate, "inspect": cmd_inspect, "translate": cmd_translate,
    "serve": cmd_serve, "export": cmd_export, "tune": cmd_tune,
}


def _quiet_libraries(verbose: bool) -> None:
    if verbose:
        os.environ["SEQLAB_VERBOSE"] = "1"
        return
    warnings.filterwarnings("ignore")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")  # reaches DDP worker processes too


def _verb_of(argv: list[str]) -> str | None:
    """The verb named on the command line: its first word that is not an option."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser(_verb_of(argv))
    try:
        args, extras = parser.parse_known_args(argv)
        # texts after an option (`translate DIR --beam 5 "Ein Hund."`): argparse leaves them over
        if extras and isinstance(getattr(args, "texts", None), list) and not any(e.startswith("-") for e in extras):
            args.texts += extras
        elif extras:
            verb = getattr(args, "verb", None)
            raise UsageError(f"unrecognized arguments: {' '.join(extras)}", f"seqlab {verb}" if verb else "seqlab")
    except UsageError as exc:
        print(f"seqlab: error: {exc}\n{exc.hint}", file=sys.stderr)
        return 2
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
        resumable = args.verb in ("train", "tune") and getattr(args, "out", None)
        print("seqlab: interrupted" + ("; resume with --resume" if resumable else ""), file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # the system refused a file or folder: permissions, a full disk, a missing folder
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"seqlab: error: {where}{exc.strerror or exc}; check the path and its permissions", file=sys.stderr)
        return 2
    return 0
