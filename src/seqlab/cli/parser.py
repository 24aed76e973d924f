"""The command line's grammar: one argparse sub-parser per verb, each with a help text and an
example, in three groups (training, inference, utility). Setting flags (one per declared
setting, generated from the families' and tasks' settings, which imports torch) are added only
to the verbs that take them, so building the parser for an inference verb imports no torch."""

from __future__ import annotations

import argparse
from typing import Any

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


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    """The setting flags given on the command line, as {dotted setting name: value}."""
    return {k[4:]: v for k, v in vars(args).items() if k.startswith("set:") and v is not None}


def build_parser(verb_hint: str | None = None) -> argparse.ArgumentParser:
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
    p.add_argument("--cv", type=int, metavar="K", default=None,
                   help="K-fold stratified cross-validation of each family (the same folds for all): "
                        "mean ± std per family, fold tables in OUT/<family>/crossval.md, no bundles (classify)")
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


def _add_text_inputs(p, model_help: str, texts_help: str, unit: str) -> None:
    """A bundle and the texts it reads: arguments, --file, or lines on stdin (predict, translate)."""
    p.add_argument("model", help=model_help)
    p.add_argument("texts", nargs="*", help=f"{texts_help} ('-' or none: read lines from stdin)")
    p.add_argument("--file", help=f"read one {unit} per line from this file ('-' for stdin)")
    p.add_argument("--encoding", default="utf-8", help="encoding of --file (default utf-8; a UTF-16 BOM is read)")


def _add_inference_verbs(verb) -> None:
    """predict, generate, translate, inspect, probe, serve: the verbs that use a trained bundle."""
    p = verb("predict", "predict labels for texts (arguments, --file, or lines on stdin)",
             'seqlab predict runs/imdb-lstm "a wonderful, moving film" --json')
    _add_text_inputs(p, "bundle folder", "texts to classify", "text")
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
    _add_text_inputs(p, "bundle folder of a translation model", "sentences", "sentence")
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
