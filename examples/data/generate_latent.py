"""Writes the data sets of two models with hidden structure (run from this
folder): ratings.csv and ratings_test.csv (examples/embedding.grad), a
user x item rating table of rank 3 plus noise, and mixture.csv
(examples/gmm.grad), points drawn from a known mixture of three Gaussians
in 3 dimensions.

The files are committed; this script documents how they were made and
regenerates them bit for bit (fixed seeds, Python's own random module).
"""
import random

# The ratings: r(u, i) = U[u] . V[i] + a[u] + b[i] + 3 + N(0, NOISE^2).
USERS, ITEMS, RANK, NOISE = 40, 50, 3, 0.1

# The mixture: its weights, means and covariance factors A (lower
# triangular, the covariance being A A^T).
WEIGHTS = [0.5, 0.3, 0.2]
MEANS = [[-2.0, 0.0, 1.0], [2.0, 1.5, -1.0], [0.0, -2.5, -0.5]]
FACTORS = [
    [[0.5, 0.0, 0.0], [0.2, 0.4, 0.0], [-0.1, 0.1, 0.3]],
    [[0.4, 0.0, 0.0], [-0.2, 0.5, 0.0], [0.0, 0.2, 0.4]],
    [[0.3, 0.0, 0.0], [0.0, 0.3, 0.0], [0.1, -0.1, 0.5]],
]


def ratings(train_path, test_path, seed=17, observed=0.5, held_out=0.2):
    # Each (user, item) pair is rated with probability `observed`; a rated
    # pair goes to the test set with probability `held_out`.
    rng = random.Random(seed)
    u = [[rng.gauss(0, 0.6) for _ in range(RANK)] for _ in range(USERS)]
    v = [[rng.gauss(0, 0.6) for _ in range(RANK)] for _ in range(ITEMS)]
    a = [rng.gauss(0, 0.3) for _ in range(USERS)]
    b = [rng.gauss(0, 0.3) for _ in range(ITEMS)]
    with open(train_path, "w") as train, open(test_path, "w") as test:
        for f in (train, test):
            f.write("user,item,rating\n")
        for user in range(USERS):
            for item in range(ITEMS):
                if rng.random() >= observed:
                    continue
                dot = sum(p * q for p, q in zip(u[user], v[item]))
                r = dot + a[user] + b[item] + 3 + rng.gauss(0, NOISE)
                f = test if rng.random() < held_out else train
                f.write(f"{user},{item},{r:.6f}\n")


def mixture(path, n=300, seed=23):
    # Each point: a component drawn by WEIGHTS, then mean + A z, z ~ N(0, I).
    rng = random.Random(seed)
    with open(path, "w") as f:
        f.write("x1,x2,x3\n")
        for _ in range(n):
            k = rng.choices(range(len(WEIGHTS)), WEIGHTS)[0]
            z = [rng.gauss(0, 1) for _ in range(3)]
            a, m = FACTORS[k], MEANS[k]
            x = [m[i] + sum(a[i][j] * z[j] for j in range(3)) for i in range(3)]
            f.write(",".join(f"{v:.6f}" for v in x) + "\n")


if __name__ == "__main__":
    ratings("ratings.csv", "ratings_test.csv")
    mixture("mixture.csv")
