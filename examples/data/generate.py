"""Writes the generated data sets of examples/data (run from this folder).

The files are committed; this script documents how they were made and
regenerates them bit for bit (fixed seeds, Python's own random module).
"""
import math
import random


def blobs(path, n=200, seed=7):
    # Two Gaussian blobs in the plane, labels 0 and 1.
    rng = random.Random(seed)
    with open(path, "w") as f:
        f.write("x1,x2,y\n")
        for i in range(n):
            y = i % 2
            cx, cy = (1.5, 1.0) if y else (-1.0, -1.5)
            f.write(f"{cx + rng.gauss(0, 0.8):.6f},{cy + rng.gauss(0, 0.8):.6f},{y}\n")


def moons3(path, n=400, seed=3):
    # Two interleaved half-moons, plus a third feature that is pure noise.
    rng = random.Random(seed)
    with open(path, "w") as f:
        f.write("x1,x2,x3,y\n")
        for i in range(n):
            y = i % 2
            t = rng.uniform(0, math.pi)
            if y == 0:
                x1, x2 = math.cos(t), math.sin(t)
            else:
                x1, x2 = 1 - math.cos(t), 0.5 - math.sin(t)
            x1 += rng.gauss(0, 0.1)
            x2 += rng.gauss(0, 0.1)
            x3 = rng.gauss(0, 1.0)
            f.write(f"{x1:.6f},{x2:.6f},{x3:.6f},{y}\n")


def linear(path, n=200, seed=11):
    # y = 2 x1 - 3 x2 + 0.5 + noise: linear regression recovers (2, -3, 0.5).
    rng = random.Random(seed)
    with open(path, "w") as f:
        f.write("x1,x2,y\n")
        for _ in range(n):
            x1, x2 = rng.uniform(-2, 2), rng.uniform(-2, 2)
            y = 2 * x1 - 3 * x2 + 0.5 + rng.gauss(0, 0.05)
            f.write(f"{x1:.6f},{x2:.6f},{y:.6f}\n")


def collocation(path, n=33):
    # Evenly spaced points of [0, 1], ends included: where pinn.grad asks
    # its network to satisfy the differential equation.
    with open(path, "w") as f:
        f.write("x\n")
        for k in range(n):
            f.write(f"{k / (n - 1)}\n")


if __name__ == "__main__":
    blobs("blobs.csv")
    moons3("moons3.csv")
    linear("linear.csv")
    collocation("collocation.csv")
