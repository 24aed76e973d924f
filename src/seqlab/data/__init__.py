"""Data layer: readers (formats), named datasets, tokenizers, batching, built-in corpus.

Examples are plain dicts; which keys they carry is owned by the task shape:
- classify: {"text": str, "label": str}
- tag:      {"tokens": list[str], "tags": list[str]}
- lm:       a corpus string (not split into examples)
- generate: {"condition": str, "text": str}
- translate:{"source": str, "target": str}
A dataset is a dict split name -> list of examples, with split names "train",
"validation" and "test".
"""
