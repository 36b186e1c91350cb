"""Writes the data sets of the loop examples, sine.csv (examples/rnn.grad)
and oscillator.csv (examples/ode.grad); run from this folder.

The files are committed; this script documents how they were made and
regenerates them bit for bit (fixed seeds, Python's own random module).
"""
import math
import random


def sine(path, n=400, seed=11):
    # Windows of a noisy sine, x(t) = sin(phase + 0.4 t) + N(0, 0.05^2):
    # the 10 values t = 0..9 of a window, then the next one (t = 10).
    rng = random.Random(seed)
    with open(path, "w") as f:
        f.write(",".join([f"x{t}" for t in range(10)] + ["y"]) + "\n")
        for _ in range(n):
            phase = rng.uniform(0, 2 * math.pi)
            xs = [math.sin(phase + 0.4 * t) + rng.gauss(0, 0.05) for t in range(11)]
            f.write(",".join(f"{x:.5f}" for x in xs) + "\n")


def oscillator(path, n=32, k=4.0, c=0.3, steps=20, h=0.1, seed=5):
    # The damped oscillator y'' = -k y - c y' from random (y, y'), observed
    # at t = h, 2h, ..., steps * h with noise N(0, 0.01^2): the exact
    # solution, y = exp(-c t / 2) (A cos(w t) + B sin(w t)).
    rng = random.Random(seed)
    w = math.sqrt(k - c * c / 4)
    with open(path, "w") as f:
        f.write(",".join(["y0", "v0"] + [f"y{i + 1}" for i in range(steps)]) + "\n")
        for _ in range(n):
            y0, v0 = rng.uniform(-1, 1), rng.uniform(-1, 1)
            a, b = y0, (v0 + c / 2 * y0) / w
            ys = []
            for i in range(steps):
                t = h * (i + 1)
                y = math.exp(-c * t / 2) * (a * math.cos(w * t) + b * math.sin(w * t))
                ys.append(y + rng.gauss(0, 0.01))
            f.write(",".join(f"{x:.5f}" for x in [y0, v0] + ys) + "\n")


sine("sine.csv")
oscillator("oscillator.csv")
