"""Task shapes, registered in one explicit table: name -> Task class."""

from __future__ import annotations

from seqlab.config import RunConfig
from seqlab.errors import SeqlabError
from seqlab.tasks.base import Task
from seqlab.tasks.classify import ClassifyTask
from seqlab.tasks.generate import GenerateTask
from seqlab.tasks.lm import LMTask
from seqlab.tasks.tag import TagTask
from seqlab.tasks.translate import TranslateTask

TASKS: dict[str, type[Task]] = {
    "classify": ClassifyTask,
    "generate": GenerateTask,
    "lm": LMTask,
    "tag": TagTask,
    "translate": TranslateTask,
}


def make_task(cfg: RunConfig) -> Task:
    if cfg.task not in TASKS:
        raise SeqlabError(f"unknown task {cfg.task!r}; choose one of: {', '.join(TASKS)}")
    return TASKS[cfg.task](cfg)
