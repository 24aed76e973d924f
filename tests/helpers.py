"""Small helpers the test files share (imported as `helpers`: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import torch

from seqlab.cli import main


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Run `seqlab ARGV` in this process: (exit status, stdout, stderr)."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def train_steps(task, model: torch.nn.Module, items, epochs: int, lr: float) -> None:
    """A plain Adam loop over the task's own loader and loss (overfitting checks)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loader = task.loader(items, shuffle=True, shard=False)
    for _ in range(epochs):
        for batch in loader:
            loss = task.loss(model, batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
