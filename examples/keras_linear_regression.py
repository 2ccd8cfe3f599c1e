"""The classic TensorFlow linear regression, y = 2x + noise, trained with adamkit.keras.AdamW.

    KERAS_BACKEND=tensorflow python examples/keras_linear_regression.py

Once with a ``tf.GradientTape`` loop, once with ``model.fit``. ``y`` has shape (n, 1)
like the predictions, so the loss is a mean over n terms, not an (n, n) broadcast.
"""

import keras
import numpy as np
import tensorflow as tf

from adamkit import keras as akk


def data(n=100, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 1)).astype("float32")
    return x, (2 * x + 0.1 * rng.standard_normal((n, 1))).astype("float32")


def fit_with_gradient_tape(epochs=300, lr=0.05):
    x, y = data()
    w, b = tf.Variable([[0.0]]), tf.Variable([0.0])
    opt = akk.AdamW(learning_rate=lr, weight_decay=0.01)
    opt.exclude_from_weight_decay(var_list=[b])
    for _ in range(epochs):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((x @ w + b - y) ** 2)
        opt.apply_gradients(zip(tape.gradient(loss, [w, b]), [w, b]))
    return float(w[0, 0]), float(b[0])


def fit_with_model_fit(epochs=300, lr=0.05):
    x, y = data()
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, kernel_initializer="zeros")])
    model.compile(optimizer=akk.AdamW(learning_rate=lr, weight_decay=0.01), loss="mse")
    model.fit(x, y, batch_size=len(x), epochs=epochs, verbose=0)
    kernel, bias = model.layers[0].get_weights()
    return float(kernel[0, 0]), float(bias[0])


if __name__ == "__main__":
    for fit in (fit_with_gradient_tape, fit_with_model_fit):
        slope, intercept = fit()
        print(f"{fit.__name__}: y = {slope:.3f} x + {intercept:.3f}   (truth: y = 2 x)")
