"""One function per verb: each reads its parsed arguments, calls one typed library function
and prints the result (for people, or one JSON object with --json). `COMMANDS` maps the verbs
to them."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from seqlab.cli.parser import settings_of
from seqlab.errors import SeqlabError


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

    settings = settings_of(args)
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
    scores = metrics.get(split) or {}  # an estimator fit on all its data has neither
    summary = {k: scores.get(k) for k in bundle.task.headline_metrics if isinstance(scores.get(k), float)}
    text = f"wrote {args.out}  ({split}: " + ", ".join(f"{k} {v:.4f}" for k, v in summary.items()) + ")"
    recipe = _recipe(args, settings)
    _print(args, {"bundle": args.out, "split": split, "metrics": scores, "recipe": recipe},
           f"{text}\nrecipe: {recipe}")


def cmd_tune(args) -> None:
    from seqlab.tune import tune

    report = tune(out=args.out, budget_minutes=args.budget_minutes, task=args.task, data=args.data,
                  family=args.family, trials=args.trials, resume=args.resume, overwrite=args.overwrite,
                  config=args.config, **settings_of(args))
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
                     config=args.config, settings=settings_of(args), overwrite=args.overwrite, cv=args.cv)
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
                      settings=settings_of(args))
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
