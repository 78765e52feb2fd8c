"""One training loop for flows, flow matching and diffusion, on ``torch.distributed``.

:func:`fit` trains any module on any loss with AdamW, a learning-rate
schedule, gradient clipping, an EMA of the weights (torch's
``AveragedModel``), mixed precision (``torch.autocast``), a tqdm bar, a
JSON-lines metrics log and atomic checkpoints with exact resume. The same
script runs in one process or under ``torchrun`` (DDP, gloo on CPU, NCCL on
CUDA, single node or multi-node). ``sandflow train`` is its command line
(:mod:`sandflow.train.command`).

Modules: :mod:`~sandflow.train.loop` (the loop), :mod:`~sandflow.train.data`
(batches and their sharding), :mod:`~sandflow.train.distributed` (process
group, global first batch, averages), :mod:`~sandflow.train.checkpoint`,
:mod:`~sandflow.train.precision`.
"""

from sandflow.train.loop import Run, fit, nll

__all__ = ["Run", "fit", "nll"]
