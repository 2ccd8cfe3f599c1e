"""Keras 3 optimizers, schedules and initializers (TensorFlow, JAX and PyTorch backends).

>>> import keras, adamkit.keras
>>> opt = adamkit.keras.AdamW(learning_rate=1e-3, weight_decay=0.01, decay_mode="independent")
"""

from adamkit.keras.initializers import HeNormal, HeUniform, XavierNormal, XavierUniform
from adamkit.keras.optimizers import SGD, Adam, AdamW
from adamkit.keras.schedules import LearningRateSchedule

__all__ = ["SGD", "Adam", "AdamW", "LearningRateSchedule", "XavierUniform", "XavierNormal", "HeUniform",
           "HeNormal"]
