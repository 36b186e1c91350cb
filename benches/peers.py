#!/usr/bin/env python3
"""gradc's training speed against JAX and PyTorch, measured in one run.

    python3 benches/peers.py            # from the repository's root (or anywhere)

The workloads (benches/workloads/*.grad, the same in every framework, f64):
  logistic20   logistic regression, 20,000 x 20 blobs, SGD 0.1, batch 32, 6,250 steps
  digits_mlp   64-32-10 relu MLP, 8x8 digits (1,437 rows), Adam 1e-3, batch 32, 2,250 steps
  mlp784       784-256-10 relu MLP, 2,048 random 28x28 images, SGD 0.01, batch 128, 80 steps
  rosenbrock   one value-and-gradient call at n = 2, 100, 10,000

What is timed, per optimizer step (per call for Rosenbrock), the median of
several repetitions, compilation and warm-up excluded:
  gradc        `cargo bench --bench train` (criterion's median of one step:
               the batched gradient call on a batch already in memory and the
               optimizer update, at 1 thread and at one per core); and
               `gradc train FILE --json
               --quiet` (the release binary's "seconds" over its steps, on
               every core: the
               whole training loop with its checks, epoch records and the
               final evaluation on the training data)
  JAX          jax.jit of one step (gather, value and gradient, update) called
               in a Python loop; and the whole loop in one lax.scan
  PyTorch      eager (autograd, torch.optim); torch.compile of the loss with
               --torch-compile (slow to compile on a small machine)
Every step gathers its batch from the data by a row index, as gradc does;
batches are whole (the index stream runs on across epochs). JAX and PyTorch
run with their default thread pools (all cores; --peer-threads 1 for one),
as `gradc train` does (--threads, default all cores).

The data is written to target/bench-data/ by the same generator as
benches/workloads/data.rs (the files are identical): an LCG and only
additions and multiplications of its uniforms. The digits are copied from
examples/data/ when those files exist; otherwise random 8x8 images stand in.

The peers are optional; without them the script says so and prints what it
can. To install them (never into the repository):
    python3 -m venv /tmp/peers && /tmp/peers/bin/pip install numpy jax torch
    /tmp/peers/bin/python benches/peers.py
(torch from PyPI on Linux is the CUDA build, about 4 GB with the NVIDIA
libraries it needs to import; it runs on the CPU all the same.)
"""
import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "target" / "bench-data"
WORKLOADS = ROOT / "benches" / "workloads"

BLOBS, BLOB_FEATURES, MNIST_LIKE, DIGITS = 20_000, 20, 2_048, 1_437
ROSENBROCK = (2, 100, 10_000)
# The peers' thread count, 0 for their default (--peer-threads).
PEER_THREADS = [0]

# name: (batch, steps, optimizer, learning rate, pixel scale); the trained
# workloads, as their train blocks say.
TRAINED = {
    "logistic20": (32, 6250, "sgd", 0.1, None),
    "digits_mlp": (32, 2250, "adam", 1e-3, 16.0),
    "mlp784": (128, 80, "sgd", 0.01, 255.0),
}

# The targets: (row, ratio column, at most).
TARGETS = [
    ("logistic20", "jax_scan", 0.6),
    ("digits_mlp", "jax_scan", 0.6),
    ("rosenbrock n=10000", "jax_jit", 0.5),
]


# ---------------------------------------------------------------- data


class Lcg:
    """Knuth's MMIX linear congruential generator, as in data.rs."""

    def __init__(self, seed):
        self.state = seed

    def uniform(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        return (self.state >> 11) * (1.0 / (1 << 53))

    def below(self, n):
        return int(self.uniform() * n)


def idx(code, dims, elements):
    return bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + elements


def write(name, data):
    DATA.mkdir(parents=True, exist_ok=True)
    tmp = DATA / f"{name}.py.tmp"
    tmp.write_bytes(data)
    tmp.replace(DATA / name)


def blobs():
    rng = Lcg(1)
    xs, ys = [], bytearray()
    for _ in range(BLOBS):
        y = rng.below(2)
        shift = (2.0 * y - 1.0) * 0.3
        for _ in range(BLOB_FEATURES):
            noise = rng.uniform() + rng.uniform() + rng.uniform() + rng.uniform() - 2.0
            xs.append(shift + noise)
        ys.append(y)
    write("blobs-x-idx2-double", idx(0x0E, [BLOBS, BLOB_FEATURES], struct.pack(f">{len(xs)}d", *xs)))
    write("blobs-y-idx1-ubyte", idx(0x08, [BLOBS], bytes(ys)))


def images(prefix, seed, n, side, levels):
    rng = Lcg(seed)
    pixels, labels = bytearray(), bytearray()
    for _ in range(n):
        pixels.extend(rng.below(levels) for _ in range(side * side))
        labels.append(rng.below(10))
    write(f"{prefix}-images-idx3-ubyte", idx(0x08, [n, side, side], bytes(pixels)))
    write(f"{prefix}-labels-idx1-ubyte", idx(0x08, [n], bytes(labels)))


def digits():
    names = ["digits-train-images-idx3-ubyte", "digits-train-labels-idx1-ubyte"]
    examples = ROOT / "examples" / "data"
    if all((examples / n).is_file() for n in names):
        for n in names:
            write(n, (examples / n).read_bytes())
        return True
    images("digits-train", 3, DIGITS, 8, 17)
    return False


def read_idx(name):
    """An IDX file as (dims, flat list of numbers)."""
    raw = (DATA / name).read_bytes()
    code, rank = raw[2], raw[3]
    dims = struct.unpack(f">{rank}I", raw[4 : 4 + 4 * rank])
    body = raw[4 + 4 * rank :]
    if code == 0x08:
        return dims, list(body)
    return dims, list(struct.unpack(f">{len(body) // 8}d", body))


def generate():
    blobs()
    images("mnist-like", 2, MNIST_LIKE, 28, 256)
    return digits()


def dataset(name, np):
    """The workload's features and labels as numpy arrays (f64, int)."""
    files = {
        "logistic20": ("blobs-x-idx2-double", "blobs-y-idx1-ubyte"),
        "digits_mlp": ("digits-train-images-idx3-ubyte", "digits-train-labels-idx1-ubyte"),
        "mlp784": ("mnist-like-images-idx3-ubyte", "mnist-like-labels-idx1-ubyte"),
    }[name]
    dims, xs = read_idx(files[0])
    _, ys = read_idx(files[1])
    x = np.array(xs, dtype=np.float64).reshape(dims[0], -1)
    scale = TRAINED[name][4]
    if scale:
        x = x * (1.0 / scale)
    return x, np.array(ys, dtype=np.int64)


def batches(n, batch, steps, np):
    """[steps, batch] row indices: a new permutation every epoch, whole
    batches running on across epochs."""
    rng = np.random.default_rng(0)
    need = steps * batch
    rows = np.concatenate([rng.permutation(n) for _ in range(need // n + 1)])
    return rows[:need].reshape(steps, batch)


def init(name, np):
    """Initial parameters (glorot uniform weights, zero biases)."""
    rng = np.random.default_rng(1)

    def glorot(o, i):
        a = (6.0 / (i + o)) ** 0.5
        return rng.uniform(-a, a, size=(o, i))

    if name == "logistic20":
        return [rng.normal(0.0, 0.1, size=BLOB_FEATURES), np.zeros(())]
    i, h = {"digits_mlp": (64, 32), "mlp784": (784, 256)}[name]
    return [glorot(h, i), np.zeros(h), glorot(10, h), np.zeros(10)]


def rosenbrock_point(n, np):
    return np.random.default_rng(n).uniform(-2.0, 2.0, size=n)


# ---------------------------------------------------------------- timing


def median_time(run, reps):
    """The median wall time of `run()` over `reps` calls, after one
    warm-up call."""
    run()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# ---------------------------------------------------------------- gradc


def gradc_criterion(results, run_cargo):
    if run_cargo:
        print("running cargo bench --bench train ...", file=sys.stderr)
        subprocess.run(["cargo", "bench", "--bench", "train"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    base = ROOT / "target" / "criterion"
    ids = {name: base / "train" / name for name in TRAINED}
    ids.update({f"rosenbrock n={n}": base / "rosenbrock" / f"n={n}" for n in ROSENBROCK})
    for row, d in ids.items():
        for threads, column in [("1", "gradc"), ("0", "gradc_all_cores")]:
            f = d / f"threads={threads}" / "new" / "estimates.json"
            if f.is_file():
                ns = json.loads(f.read_text())["median"]["point_estimate"]
                results.setdefault(row, {})[column] = ns * 1e-9
            else:
                print(f"no criterion result for {row} ({f})", file=sys.stderr)


def gradc_cli(results, reps):
    exe = ROOT / "target" / "release" / "gradc"
    print("building the release binary ...", file=sys.stderr)
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    for name in TRAINED:
        per_step = []
        for _ in range(reps):
            out = subprocess.run([str(exe), "train", str(WORKLOADS / f"{name}.grad"), "--json", "--quiet"],
                                 cwd=ROOT, check=True, capture_output=True, text=True).stdout
            doc = json.loads(out)
            per_step.append(doc["seconds"] / doc["steps"])
        results.setdefault(name, {})["gradc_cli"] = statistics.median(per_step)


# ---------------------------------------------------------------- JAX


def jax_peers(results, reps, np):
    try:
        import jax
    except ImportError:
        print("JAX is not installed (pip install jax): no JAX figures", file=sys.stderr)
        return None
    except Exception as e:
        print(f"JAX cannot be imported ({str(e)[:120]}): no JAX figures", file=sys.stderr)
        return None
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax import lax

    def loss_fn(name):
        if name == "logistic20":
            def loss(p, x, y):
                z = x @ p[0] + p[1]
                return jnp.mean(jnp.logaddexp(0.0, z) - y.astype(jnp.float64) * z)
        else:
            def loss(p, x, y):
                h = jnp.maximum(x @ p[0].T + p[1], 0.0)
                logits = h @ p[2].T + p[3]
                picked = jnp.take_along_axis(logits, y[:, None], axis=1)[:, 0]
                return jnp.mean(jax.nn.logsumexp(logits, axis=1) - picked)
        return loss

    def make_step(name):
        _, _, opt, lr, _ = TRAINED[name]
        vg = jax.value_and_grad(loss_fn(name))

        def step(carry, x, y, rows):
            p, m, v, t = carry
            value, g = vg(p, x[rows], y[rows])
            if opt == "sgd":
                return (tuple(a - lr * b for a, b in zip(p, g)), m, v, t), value
            t = t + 1
            m = tuple(0.9 * a + 0.1 * b for a, b in zip(m, g))
            v = tuple(0.999 * a + 0.001 * b * b for a, b in zip(v, g))
            c1, c2 = 1.0 - 0.9**t, 1.0 - 0.999**t
            p = tuple(a - lr * (mm / c1) / (jnp.sqrt(vv / c2) + 1e-8) for a, mm, vv in zip(p, m, v))
            return (p, m, v, t), value

        return step

    for name, (batch, steps, _, _, _) in TRAINED.items():
        x, y = dataset(name, np)
        idx = batches(len(y), batch, steps, np)
        p0 = tuple(jnp.asarray(a) for a in init(name, np))
        carry0 = (p0, tuple(jnp.zeros_like(a) for a in p0), tuple(jnp.zeros_like(a) for a in p0),
                  jnp.asarray(0.0))
        X, Y, I = jnp.asarray(x), jnp.asarray(y), jnp.asarray(idx)
        step = make_step(name)
        jstep = jax.jit(step)

        # The rows of each step as separate device arrays, made beforehand.
        rows = [I[i] for i in range(steps)]

        def loop_rows():
            carry = carry0
            for r in rows:
                carry, value = jstep(carry, X, Y, r)
            jax.block_until_ready(carry)

        scan = jax.jit(lambda c, X, Y, I: lax.scan(lambda c, r: step(c, X, Y, r), c, I))

        def scanned():
            jax.block_until_ready(scan(carry0, X, Y, I))

        results.setdefault(name, {})["jax_jit"] = median_time(loop_rows, reps) / steps
        results[name]["jax_scan"] = median_time(scanned, reps) / steps

    def rosenbrock(z):
        a, b = z[:-1], z[1:]
        return jnp.sum(100.0 * (b - a * a) ** 2 + (1.0 - a) ** 2)

    vg = jax.jit(jax.value_and_grad(rosenbrock))
    for n in ROSENBROCK:
        z = jnp.asarray(rosenbrock_point(n, np))
        calls = max(200, 200_000 // n)

        def run():
            for _ in range(calls):
                jax.block_until_ready(vg(z))

        results.setdefault(f"rosenbrock n={n}", {})["jax_jit"] = median_time(run, reps) / calls
    return jax.__version__


# ---------------------------------------------------------------- PyTorch


def torch_peers(results, reps, np, compile_too):
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed (pip install torch): no PyTorch figures", file=sys.stderr)
        return None
    except Exception as e:  # A broken install (a CUDA build without its libraries).
        print(f"PyTorch cannot be imported ({str(e)[:120]}): no PyTorch figures", file=sys.stderr)
        return None
    torch.set_default_dtype(torch.float64)
    if PEER_THREADS[0]:
        torch.set_num_threads(PEER_THREADS[0])
    F = torch.nn.functional

    def loss_fn(name):
        if name == "logistic20":
            return lambda p, x, y: F.binary_cross_entropy_with_logits(x @ p[0] + p[1], y.double())
        return lambda p, x, y: F.cross_entropy(torch.relu(x @ p[0].T + p[1]) @ p[2].T + p[3], y)

    variants = [("torch", False)] + ([("torch_compile", True)] if compile_too else [])
    for name, (batch, steps, opt, lr, _) in TRAINED.items():
        x, y = dataset(name, np)
        X, Y = torch.from_numpy(x), torch.from_numpy(y)
        rows = [torch.from_numpy(r.copy()) for r in batches(len(y), batch, steps, np)]
        for column, compiled in variants:
            loss = loss_fn(name)
            if compiled:
                loss = torch.compile(loss)

            def loop():
                p = [torch.from_numpy(a.copy()).requires_grad_() for a in init(name, np)]
                o = torch.optim.SGD(p, lr=lr) if opt == "sgd" else torch.optim.Adam(p, lr=lr)
                for r in rows:
                    o.zero_grad()
                    loss(p, X[r], Y[r]).backward()
                    o.step()

            results.setdefault(name, {})[column] = median_time(loop, reps) / steps

    def rosenbrock(z):
        a, b = z[:-1], z[1:]
        return torch.sum(100.0 * (b - a * a) ** 2 + (1.0 - a) ** 2)

    for n in ROSENBROCK:
        z = torch.from_numpy(rosenbrock_point(n, np)).requires_grad_()
        calls = max(200, 200_000 // n)

        def run():
            for _ in range(calls):
                value = rosenbrock(z)
                (g,) = torch.autograd.grad(value, z)

        results.setdefault(f"rosenbrock n={n}", {})["torch"] = median_time(run, reps) / calls
    return f"{torch.__version__} ({torch.get_num_threads()} threads)"


# ---------------------------------------------------------------- report


def machine():
    """Cores, architecture and the vector extensions that matter here."""
    flags = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    ext = "+".join(f.upper() for f in ("avx2", "fma", "avx512f") if f in flags)
    return f"{os.cpu_count()} cores, {os.uname().machine}" + (f" {ext}" if ext else "")


def fmt_time(s):
    if s is None:
        return "-"
    for unit, k in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if s >= k:
            return f"{s / k:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def report(results):
    columns = ["gradc", "gradc_all_cores", "gradc_cli", "jax_scan", "jax_jit", "torch", "torch_compile"]
    present = [c for c in columns if any(c in r for r in results.values())]
    peers = [c for c in present if not c.startswith("gradc")]
    head = ["per step (per call)"] + present + [f"gradc/{c}" for c in peers]
    rows = []
    for row, r in results.items():
        cells = [row] + [fmt_time(r.get(c)) for c in present]
        for c in peers:
            ok = "gradc" in r and c in r
            cells.append(f"{r['gradc'] / r[c]:.3g}x" if ok else "-")
        rows.append(cells)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    for line in [head, ["-" * w for w in widths]] + rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths)))
    print("(gradc: criterion's step at 1 thread, gradc_all_cores at one per core;")
    print(" gradc_cli: `gradc train`'s seconds per step;")
    print(" gradc/X: gradc's time over X's, below 1 when gradc is faster)")
    print()
    for row, column, limit in TARGETS:
        r = results.get(row, {})
        if "gradc" in r and column in r:
            ratio = r["gradc"] / r[column]
            verdict = "met" if ratio <= limit else "not met"
            print(f"target {row}: gradc/{column} <= {limit}: {ratio:.2f}, {verdict}")
        else:
            print(f"target {row}: gradc/{column} <= {limit}: not measured")
    r = results.get("mlp784", {})
    cores = os.cpu_count() or 1
    if "gradc" in r and "gradc_all_cores" in r and cores >= 2:
        speedup = r["gradc"] / r["gradc_all_cores"]
        verdict = "met" if speedup >= 1.7 else "not met"
        print(f"target mlp784: {cores} threads >= 1.7x faster than 1: {speedup:.2f}x, {verdict}"
              + ("" if cores == 2 else " (the target is at 2 threads)"))
    else:
        print("target mlp784: 2 threads >= 1.7x faster than 1: not measured")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=5, help="repetitions per measurement (the median is kept)")
    ap.add_argument("--no-cargo", action="store_true",
                    help="use the criterion results already in target/criterion instead of running cargo bench")
    ap.add_argument("--no-cli", action="store_true", help="skip the gradc train runs of the release binary")
    ap.add_argument("--torch-compile", action="store_true", help="also time torch.compile (slow to compile)")
    ap.add_argument("--peer-threads", type=int, default=0,
                    help="threads of JAX and PyTorch (default 0: their own default, all cores)")
    args = ap.parse_args()
    if args.peer_threads:
        # Read by XLA when JAX is first imported; PyTorch's is set on import.
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   f" --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={args.peer_threads}")
        PEER_THREADS[0] = args.peer_threads

    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    real = generate()
    print(f"data in {DATA}; digits: {'examples/data' if real else 'random 8x8 stand-in'}", file=sys.stderr)
    results = {}
    gradc_criterion(results, not args.no_cargo)
    if not args.no_cli:
        gradc_cli(results, args.reps)
    versions = []
    try:
        import numpy as np
    except ImportError:
        np = None
        print("numpy is not installed: no JAX or PyTorch figures", file=sys.stderr)
    if np is not None:
        print("timing JAX ...", file=sys.stderr)
        v = jax_peers(results, args.reps, np)
        if v:
            versions.append(f"jax {v}")
        print("timing PyTorch ...", file=sys.stderr)
        v = torch_peers(results, args.reps, np, args.torch_compile)
        if v:
            versions.append(f"torch {v}")
    print(f"# {time.strftime('%Y-%m-%d')}; {machine()}; load average {load}")
    print(f"# {', '.join(versions) or 'no peers'}; peers' threads: {args.peer_threads or 'default'}; "
          f"digits: {'examples/data' if real else 'random stand-in'}")
    report(results)


if __name__ == "__main__":
    main()
