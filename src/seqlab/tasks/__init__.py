"""Task shapes, registered in one explicit table: name -> Task class.

Each Task class declares its settings dataclass (fields become `model.<field>` settings and
flags), the settings it implies, its verbs and its headline metrics (tasks/base.py), so a new
task is one file plus one line here.
"""

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


def task_class(name: str) -> type[Task]:
    if name not in TASKS:
        raise SeqlabError(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}")
    return TASKS[name]


def make_task(cfg: RunConfig) -> Task:
    return task_class(cfg.task)(cfg)
