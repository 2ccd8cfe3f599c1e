"""adamkit.schedules as Keras learning-rate schedules."""

import keras
from keras import ops

from adamkit import schedules


@keras.saving.register_keras_serializable(package="adamkit")
class LearningRateSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """``learning_rate * schedule(step)``: any :mod:`adamkit.schedules` schedule in Keras.

    adamkit's Keras optimizers read ``multiplier(step)`` for ``decay="independent"``.

    >>> from adamkit import schedules
    >>> lr = LearningRateSchedule(schedules.warmup_cosine(1000, 100), learning_rate=1e-3)
    >>> round(float(lr(100)), 6)
    0.001
    """

    def __init__(self, schedule, learning_rate):
        self.schedule = schedule if isinstance(schedule, schedules.Schedule) else schedules.from_config(schedule)
        self.learning_rate = learning_rate

    def multiplier(self, step):
        return self.schedule.value(ops.cast(step, "float32"), ops)

    def __call__(self, step):
        return self.learning_rate * self.multiplier(step)

    def get_config(self):
        return {"schedule": schedules.to_config(self.schedule), "learning_rate": self.learning_rate}
