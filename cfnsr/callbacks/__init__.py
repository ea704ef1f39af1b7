"""Lightning callbacks of a training run, chosen in ``conf/callbacks/`` and instantiated by ``cfnsr.tasks.train``.

A callback that needs the run's folder or id takes them as constructor arguments, which the training job adds when
it instantiates the configured callbacks (``cfnsr.tasks.train``, for ``RunCheckpoints``); one that needs the finished
run record is a :class:`RunEndCallback`.
"""

from cfnsr.callbacks.base import RunEndCallback, run_end

__all__ = ["RunEndCallback", "run_end"]
