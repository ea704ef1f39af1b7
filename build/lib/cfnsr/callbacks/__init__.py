"""Lightning callbacks of a training run, chosen in ``conf/callbacks/`` and instantiated by ``cfnsr.tasks.train``.

A callback that needs the run's folder or id reads them from the module (``EmotionModule.run_dir``/``run_id``, set
by the training task before fitting); one that needs the finished run record is a :class:`RunEndCallback`.
"""

from cfnsr.callbacks.base import RunEndCallback, run_end

__all__ = ["RunEndCallback", "run_end"]
