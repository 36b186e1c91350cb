#!/usr/bin/env python3
"""Times `gradc gradbench` on GradBench's default sizes of the evals it
answers: writes the messages GradBench's evals would send (inputs drawn as
their generators draw them, with Python's `random`), pipes them through the
tool, and prints a Markdown table of the compile time and the ratio of the
derivative's time to the primal's (medians of the "evaluate" timings); for
`saddle` and `particle`, whose four functions are each a whole computation,
a row per function with its time.

    cargo build --release
    python3 gradbench/measure.py target/release/gradc [--flush-subnormals] [--threads=N] [EVAL ...]

Options before the evals (`--flush-subnormals`, `--threads=1`) are passed
to `gradc gradbench`.
"""
import json
import random
import statistics
import subprocess
import sys

RUNS = {"min_runs": 3, "min_seconds": 0.5}


def lse():
    for n in [2500, 5000, 10000, 20000, 40000, 80000, 160000, 320000, 640000, 1280000]:
        yield f"n={n}", {"x": [random.random() for _ in range(n)]}


def llsq():
    for n in [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8196, 16392]:
        yield f"n={n},m=128", {"x": [random.random() for _ in range(128)], "n": n}


def gmm():
    # GradBench's d in [2, 10, 20, 32, 64] and k in [5, 10, 25, 50, 100].
    n = 1000
    combos = sorted([(d, k) for d in [2, 10, 20, 32, 64] for k in [5, 10, 25, 50, 100]],
                    key=lambda v: v[0] * v[1])
    for d, k in combos:
        yield f"d={d},k={k},n={n}", {
            "d": d, "k": k, "n": n, "m": 0, "gamma": 1.0,
            "x": [[random.gauss(0, 1) for _ in range(d)] for _ in range(n)],
            "mu": [[random.random() for _ in range(d)] for _ in range(k)],
            "q": [[random.gauss(0, 1) for _ in range(d)] for _ in range(k)],
            "l": [[random.gauss(0, 1) for _ in range(d * (d - 1) // 2)] for _ in range(k)],
            "alpha": [random.gauss(0, 1) for _ in range(k)],
        }


def ode():
    combos = sorted([(n, s) for n in [1000, 10000, 100000] for s in [1, 10, 100]],
                    key=lambda v: v[0] * v[1])
    for n, s in combos:
        yield f"n={n},s={s}", {"x": [random.random() for _ in range(n)], "s": s}


def lstm():
    # GradBench reads ADBench's files (l layers, c characters of b = 14
    # numbers); the same sizes here, drawn at random.
    b = 14
    rows = lambda r, c: [[random.uniform(-1, 1) for _ in range(c)] for _ in range(r)]
    for l in [2, 4]:
        for c in [1024, 4096]:
            yield f"l={l},c={c}", {"main_params": rows(2 * l, 4 * b), "extra_params": rows(3, b),
                                   "state": rows(2 * l, b), "sequence": rows(c, b)}


def det():
    for ell in [5, 6, 7, 8, 9, 10, 11]:
        yield f"ell={ell}", {"A": [random.random() for _ in range(ell * ell)], "ell": ell}


def kmeans():
    # GradBench's k in [10, 100, 1000], n in [1000, 10000, 100000], d in [8, 16];
    # the centroids the last k points, so that none is without a point.
    combos = sorted([(k, n, d) for k in [10, 100, 1000] for n in [1000, 10000, 100000] for d in [8, 16]],
                    key=lambda v: v[0] * v[1] * v[2])
    for k, n, d in combos:
        points = [[random.random() for _ in range(d)] for _ in range(n)]
        yield f"k={k},n={n},d={d}", {"points": points, "centroids": points[-k:]}


def ba():
    # GradBench runs ADBench's two smallest files, ba1 (n=49, m=7776,
    # p=31843) and ba2 (n=21, m=11315, p=36455): one camera, point, weight
    # and feature repeated. Their sizes here, the numbers of ba1's kind.
    for n, m, p in [(49, 7776, 31843), (21, 11315, 36455)]:
        cam = [random.uniform(-0.02, 0.02) for _ in range(3)] + [random.uniform(-0.1, 0.1) for _ in range(2)] \
            + [random.uniform(1, 1.5), random.uniform(300, 500), 0.0, 0.0, -3e-7, 6e-13]
        x = [random.uniform(-1, 1), random.uniform(-1, 1), random.uniform(-2, -1)]
        feat = [random.uniform(-400, 400), random.uniform(-400, 400)]
        yield f"n={n},m={m},p={p}", {"n": n, "m": m, "p": p, "cam": cam, "x": x, "w": random.random(), "feat": feat}


def ht():
    # GradBench reads ADBench's hand model files, which are not here: a
    # model drawn at random instead, with the 22 bones of ADBench's hand
    # (each finger's four hanging from the palm's bone) and 544 vertices
    # and 1084 triangles (sizes chosen here), at GradBench's first two
    # point counts (100 and 192), in the simple variant (each point on a
    # vertex, no `us`) and the complicated one (each on a triangle, at
    # `us`).
    def rigid():
        q = [random.gauss(0, 1) for _ in range(4)]
        w, x, y, z = (c / sum(c * c for c in q) ** 0.5 for c in q)
        r = [[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
             [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
             [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]]
        return [row + [random.uniform(-1, 1)] for row in r] + [[0.0, 0.0, 0.0, 1.0]]

    def weights():
        w = [random.random() ** 8 for _ in range(22)]
        return [c / sum(w) for c in w]

    v, t = 544, 1084
    model = {"bone_count": 22, "bone_names": [f"bone{i}" for i in range(22)],
             "parents": [-1, 0] + [1 if i % 4 == 2 else i - 1 for i in range(2, 22)],
             "base_relatives": [rigid() for _ in range(22)],
             "inverse_base_absolutes": [rigid() for _ in range(22)],
             "base_positions": [[random.uniform(-1, 1) for _ in range(3)] + [1.0] for _ in range(v)],
             "weights": [weights() for _ in range(v)],
             "triangles": [random.sample(range(v), 3) for _ in range(t)],
             "is_mirrored": False}
    for complicated in [False, True]:
        for c in [100, 192]:
            points = [[random.uniform(-1, 1) for _ in range(3)] for _ in range(c)]
            on = [random.randrange(t if complicated else v) for _ in range(c)]
            us = [[random.random() / 2, random.random() / 2] for _ in range(c)] if complicated else []
            yield f"{'complicated' if complicated else 'simple'},c={c}", {
                "theta": [random.uniform(-0.3, 0.3) for _ in range(26)], "us": us,
                "data": {"model": model, "correspondences": on, "points": points}}


def saddle():
    yield "start=[1,1]", {"start": [1.0, 1.0]}


def particle():
    yield "w=0", {"w": 0.0}


# Evals whose functions are all full computations (no primal of which the
# other is the derivative): a row per function, without a ratio.
WHOLE = {"saddle": (saddle, ["ff", "fr", "rf", "rr"]),
         "particle": (particle, ["ff", "fr", "rf", "rr"])}

EVALS = {"lse": (lse, "primal", "gradient"),
         "llsq": (llsq, "primal", "gradient"),
         "gmm": (gmm, "objective", "jacobian"),
         "ode": (ode, "primal", "gradient"),
         "lstm": (lstm, "objective", "jacobian"),
         "det": (det, "primal", "gradient"),
         "kmeans": (kmeans, "cost", "dir"),
         "ba": (ba, "objective", "jacobian"),
         "ht": (ht, "objective", "jacobian")}


# The options of `gradc gradbench` the tool runs with.
TOOL_OPTIONS = []


def evaluate(gradc, messages):
    text = "".join(json.dumps({"id": i} | m) + "\n" for i, m in enumerate(messages))
    out = subprocess.run([gradc, "gradbench", *TOOL_OPTIONS], input=text, capture_output=True, text=True,
                         check=True)
    return [json.loads(line) for line in out.stdout.splitlines()][2:]


def median(r):
    return statistics.median(t["nanoseconds"] for t in r["timings"] if t["name"] == "evaluate")


def compile_ms(r):
    return sum(t["nanoseconds"] for t in r["timings"] if t["name"] == "compile") / 1e6


def run_whole(gradc, name):
    inputs, functions = WHOLE[name]
    for size, input in inputs():
        messages = [{"kind": "start", "eval": name}, {"kind": "define", "module": name}]
        messages += [{"kind": "evaluate", "module": name, "function": f, "input": input | RUNS}
                     for f in functions]
        for f, r in zip(functions, evaluate(gradc, messages)):
            if not r["success"]:
                print(f"| {name} | {size}, {f} | failed: {r.get('error')} | | | |")
                continue
            print(f"| {name} | {size}, {f} | {median(r) / 1e3:.1f} | | | {compile_ms(r):.0f} |", flush=True)


def run(gradc, name):
    if name in WHOLE:
        return run_whole(gradc, name)
    inputs, primal, gradient = EVALS[name]
    random.seed(31337)
    sizes, messages = [], [{"kind": "start", "eval": name}, {"kind": "define", "module": name}]
    for size, input in inputs():
        sizes.append(size)
        for function in (primal, gradient):
            messages.append({"kind": "evaluate", "module": name, "function": function,
                             "input": input | RUNS})
    responses = evaluate(gradc, messages)
    for i, size in enumerate(sizes):
        p, g = responses[2 * i], responses[2 * i + 1]
        if not (p["success"] and g["success"]):
            print(f"| {name} | {size} | failed: {p.get('error') or g.get('error')} | | | |")
            continue
        print(f"| {name} | {size} | {median(p) / 1e3:.1f} | {median(g) / 1e3:.1f} | {median(g) / median(p):.2f} "
              f"| {compile_ms(p):.0f} / {compile_ms(g):.0f} |", flush=True)


def split_options(args):
    """The options of `gradc gradbench` at the front of `args` (set in
    `TOOL_OPTIONS`; one with a value written `--threads=1`), and the rest."""
    while args and args[0].startswith("--"):
        TOOL_OPTIONS.append(args.pop(0))
    return args


def main():
    gradc = sys.argv[1]
    names = split_options(sys.argv[2:]) or list(EVALS) + list(WHOLE)
    print("| eval | size | primal (us) | derivative (us) | ratio | compile (ms): primal / derivative |")
    print("|---|---|---|---|---|---|")
    for name in names:
        run(gradc, name)


if __name__ == "__main__":
    main()
