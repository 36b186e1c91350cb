"""Writes decay.csv, the data of examples/curve_fit.grad (run from this folder).

Noise-free samples of an exponential decay, y = a exp(-k t) + c with
a = 2.5, k = 1.3, c = 0.5, at t = 0, 0.1, ..., 4.9: the least-squares fit
recovers those parameters (to the rounding of the printed values, which
keep 17 significant digits). The file is committed; this script documents
how it was made and regenerates it bit for bit.
"""
import math

A, K, C = 2.5, 1.3, 0.5


def decay(path, n=50):
    with open(path, "w") as f:
        f.write("t,y\n")
        for i in range(n):
            t = i / 10
            y = A * math.exp(-K * t) + C
            f.write(f"{t!r},{y!r}\n")


if __name__ == "__main__":
    decay("decay.csv")
