#!/usr/bin/env python3
"""Times GradBench's evals in JAX side by side with `gradc gradbench`, in one
run on the same inputs: measure.py draws each eval's inputs at GradBench's
default sizes (the same seed, the same generators) and times gradc on them
through the protocol; here each eval's function is written in JAX as the
eval's README defines it (f64, `jax.jit`), its derivative by `jax.grad`
(`kmeans`' Newton direction by a `jax.jvp` of the gradient), and timed the
same way: compilation excluded (one call first), then the median of at
least `min_runs` runs and `min_seconds`, each run waited for with
`block_until_ready`. Every JAX output is checked against gradc's answer
(largest difference over the largest magnitude of gradc's, at most 1e-8).
Prints one Markdown table; without JAX, gradc's figures alone.

    /tmp/peers/bin/python gradbench/jax_peers.py target/release/gradc [--flush-subnormals] [--threads=N] [EVAL ...]

EVALs among gmm, lstm, lse, llsq, ode, kmeans, det, ht (all, in that
order, when none is named).
"""
import importlib.util
import math
import os
import pathlib
import random
import statistics
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("measure", HERE / "measure.py")
measure = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(measure)

try:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.scipy.special import logsumexp, multigammaln

    jax.config.update("jax_enable_x64", True)
except ImportError as e:
    jax = None
    JAX_MISSING = str(e)

ORDER = ["gmm", "lstm", "lse", "llsq", "ode", "kmeans", "det", "ht"]
TOLERANCE = 1e-8


# Each eval: from one input (as measure.py draws it), the primal and the
# derivative (which `peer` compiles with `jax.jit`) and the arguments they
# take. Their outputs are arrays, or a dict of arrays named as gradc names
# its gradients.


def gmm(input):
    d, k = input["d"], input["k"]
    # Q_k's strictly lower part, column by column: (1, 0), (2, 0), ..., (2, 1), ...
    rows, cols = zip(*[(j, i) for i in range(d) for j in range(i + 1, d)])
    rows, cols = np.array(rows), np.array(cols)

    def objective(x, gamma, m, alpha, mu, q, l):
        n = x.shape[0]
        Q = jnp.zeros((k, d, d)).at[:, rows, cols].set(l) + jax.vmap(jnp.diag)(jnp.exp(q))
        Qx = jnp.einsum("kij,nkj->nki", Q, x[:, None, :] - mu[None, :, :])     # [N, K, D]
        inner = alpha + jnp.sum(q, axis=1) - 0.5 * jnp.sum(Qx**2, axis=2)      # [N, K]
        likelihood = (-0.5 * n * d * math.log(2 * math.pi) + jnp.sum(logsumexp(inner, axis=1))
                      - n * logsumexp(alpha))
        dof = d + m + 1
        c = dof * d * (jnp.log(gamma) - 0.5 * math.log(2)) - multigammaln(0.5 * dof, d)
        prior = (m * jnp.sum(q) - 0.5 * gamma**2 * (jnp.sum(jnp.exp(q) ** 2) + jnp.sum(l**2))
                 + k * c)
        return likelihood + prior

    def jacobian(*args):
        g = jax.grad(objective, argnums=(3, 4, 5, 6))(*args)
        return dict(zip(["alpha", "mu", "q", "l"], g))

    args = [input["x"], input["gamma"], input["m"], input["alpha"], input["mu"], input["q"], input["l"]]
    return objective, jacobian, args


def lstm(input):
    def objective(main, extra, state, sequence):
        layers, b = main.shape[0] // 2, main.shape[1] // 4

        def cell(w, bias, hidden, c, x):
            forget = jax.nn.sigmoid(x * w[:b] + bias[:b])
            ingate = jax.nn.sigmoid(hidden * w[b:2 * b] + bias[b:2 * b])
            outgate = jax.nn.sigmoid(x * w[2 * b:3 * b] + bias[2 * b:3 * b])
            change = jnp.tanh(hidden * w[3 * b:] + bias[3 * b:])
            c = c * forget + ingate * change
            return outgate * jnp.tanh(c), c

        def step(carry, chars):
            s, total = carry
            now, after = chars
            x, s2 = now * extra[0], []
            for i in range(layers):
                hidden, c = cell(main[2 * i], main[2 * i + 1], s[2 * i], s[2 * i + 1], x)
                s2 += [hidden, c]
                x = hidden
            ypred = x * extra[1] + extra[2]
            ynorm = ypred - jnp.log(jnp.sum(jnp.exp(ypred)) + 2)
            return (jnp.stack(s2), total + jnp.sum(after * ynorm)), None

        (_, total), _ = jax.lax.scan(step, (state, 0.0), (sequence[:-1], sequence[1:]))
        return -total / ((sequence.shape[0] - 1) * b)

    def jacobian(*args):
        main, extra = jax.grad(objective, argnums=(0, 1))(*args)
        return jnp.concatenate([main.ravel(), extra.ravel()])

    args = [input["main_params"], input["extra_params"], input["state"], input["sequence"]]
    return objective, jacobian, args


def lse(input):
    def primal(x):
        a = jnp.max(x)
        return a + jnp.log(jnp.sum(jnp.exp(x - a)))

    return primal, jax.grad(primal), [input["x"]]


def llsq(input):
    n = input["n"]

    def primal(x):
        t = -1 + 2 * jnp.arange(n) / (n - 1)
        powers = t[:, None] ** jnp.arange(x.shape[0])[None, :]                 # [n, m]
        return 0.5 * jnp.sum((jnp.sign(t) - powers @ x) ** 2)

    return primal, jax.grad(primal), [input["x"]]


def ode(input):
    # y_0' = x_0, y_i' = x_i y_{i-1} for i > 0: the README's right-hand side
    # as GradBench's own JAX tool and gradc's program compute it.
    s = input["s"]
    h = 2 / s

    def primal(x):
        def f(y):
            return jnp.concatenate([x[:1], x[1:] * y[:-1]])

        def step(y, _):
            k1 = f(y)
            k2 = f(y + h * k1 / 2)
            k3 = f(y + h * k2 / 2)
            k4 = f(y + h * k3)
            return y + h * (k1 + 2 * k2 + 2 * k3 + k4) / 6, None

        y, _ = jax.lax.scan(step, jnp.zeros_like(x), None, length=s)
        return y

    return primal, jax.grad(lambda x: primal(x)[-1]), [input["x"]]


def kmeans(input):
    def cost(points, C):
        d2 = (jnp.sum(C**2, axis=1)[:, None] + jnp.sum(points**2, axis=1)[None, :]
              - 2 * C @ points.T)                                              # [K, N]
        return jnp.sum(jnp.min(d2, axis=0))

    def direction(points, C):
        gradient = jax.grad(cost, argnums=1)
        g, hessian_diagonal = jax.jvp(lambda c: gradient(points, c), (C,), (jnp.ones_like(C),))
        return g / hessian_diagonal

    return cost, direction, [input["points"], input["centroids"]]


def det(input):
    # Expansion by minors along the first row, each minor computed once from
    # the smaller ones: a minor is the last |S| rows and a subset S of the
    # columns (bit j of s for column j), its determinant the sum over j in S
    # of +-A[first row, j] times the minor of S without j.
    ell = input["ell"]
    p = 1 << ell
    inside = np.array([[(s >> j) & 1 for j in range(ell)] for s in range(p)])
    before = np.cumsum(inside, axis=1) - inside                                # members of S before j
    sign = inside * (1 - 2 * (before % 2))
    without = np.array([[s & ~(1 << j) for j in range(ell)] for s in range(p)])
    row = np.minimum(ell - inside.sum(axis=1), ell - 1)                       # the empty minor's unused
    empty = (np.arange(p) == 0).astype(np.float64)

    def primal(A):
        minors = jnp.asarray(empty)
        for _ in range(ell):
            minors = empty + jnp.sum(sign * A[row] * minors[without], axis=1)
        return minors[p - 1]

    return primal, lambda A: jax.grad(primal)(A).ravel(), [np.reshape(input["A"], (ell, ell))]


def ht(input):
    # ADBench's hand, as gradbench/ht.grad computes it: the pose from theta,
    # each bone's rotation from its Euler angles (here three matrices
    # multiplied, as ADBench's C++; ht.grad writes the product out entry
    # by entry), the chain from the root,
    # skinning, the global angle-axis rotation, scale and translation; each
    # point's place on its triangle. The simple variant (no `us`) is each
    # point on a triangle of three times its vertex, at us = (1, 0), without
    # the `us` columns, as the tool answers it. The Jacobian's `us` columns
    # by one `jax.jvp` each (a point's errors read only its own `us`), the
    # pose's 26 by `jax.jacfwd`.
    data, model = input["data"], input["data"]["model"]
    bones, parents = model["bone_count"], model["parents"]
    simple = len(input["us"]) == 0
    corr = np.asarray(data["correspondences"], dtype=np.int64)
    k = len(corr)
    tri = np.repeat(corr[:, None], 3, axis=1) if simple else np.asarray(model["triangles"])[corr]
    us = np.tile([1.0, 0.0], (k, 1)) if simple else np.asarray(input["us"], dtype=np.float64)
    mirror = -1.0 if model["is_mirrored"] else 1.0

    def slot(r, c):
        if r == 0:
            return c
        if r == 2:
            return 3 + c
        if r >= 5:
            f, j = divmod(r - 5, 4)
            if j == 0:
                return 6 + 4 * f + c if c < 2 else -1
            return 7 + 4 * f + j if j < 3 and c == 0 else -1
        return -1

    place = np.array([[1.0 if slot(i // 3, i % 3) == t else 0.0 for t in range(26)]
                      for i in range(3 * (bones + 3))])
    scale = np.array([[1.0 if r == 1 else 0.0] for r in range(bones + 3)])

    def rows(a, b, c):
        return jnp.stack([a, b, c], axis=1)

    def rotations(t):
        zero, one, c, s = 0 * t, 1 + 0 * t, jnp.cos(t), jnp.sin(t)
        return c, s, zero, one

    def rot_x(t):
        c, s, zero, one = rotations(t)
        return rows(rows(one, zero, zero), rows(zero, c, -s), rows(zero, s, c))

    def rot_y(t):
        c, s, zero, one = rotations(t)
        return rows(rows(c, zero, s), rows(zero, one, zero), rows(-s, zero, c))

    def rot_z(t):
        c, s, zero, one = rotations(t)
        return rows(rows(c, -s, zero), rows(s, c, zero), rows(zero, zero, one))

    def errors(theta, us, base_relatives, inverse_base_absolutes, base_positions, weights, points):
        pose = jnp.reshape(place @ theta, (bones + 3, 3)) + scale
        angles = pose[3:]
        r = rot_z(angles[:, 1]) @ rot_y(angles[:, 2]) @ rot_x(angles[:, 0])
        relatives = jnp.concatenate([base_relatives[:, :, 0:3] @ r, base_relatives[:, :, 3:4]], axis=2)
        absolutes = []
        for i in range(bones):
            absolutes.append(relatives[i] if parents[i] < 0 else absolutes[parents[i]] @ relatives[i])
        transforms = jnp.stack(absolutes) @ inverse_base_absolutes
        moved = transforms[:, 0:3, :] @ base_positions.T                          # [B, 3, V]
        skinned = jnp.sum(moved * weights.T[:, None, :], axis=0) * jnp.array([[mirror], [1.0], [1.0]])
        aa = pose[0]
        n = jnp.sqrt(jnp.sum(aa**2))
        small = n < 0.0001
        u = aa / jnp.where(small, 1.0, n)
        s, c = jnp.sin(n), jnp.cos(n)
        turn = jnp.array([
            [u[0] * u[0] + (1 - u[0] * u[0]) * c, u[0] * u[1] * (1 - c) - u[2] * s, u[0] * u[2] * (1 - c) + u[1] * s],
            [u[0] * u[1] * (1 - c) + u[2] * s, u[1] * u[1] + (1 - u[1] * u[1]) * c, u[1] * u[2] * (1 - c) - u[0] * s],
            [u[0] * u[2] * (1 - c) - u[1] * s, u[2] * u[1] * (1 - c) + u[0] * s, u[2] * u[2] + (1 - u[2] * u[2]) * c]])
        r0 = jnp.where(small, jnp.eye(3), turn) * pose[1][None, :]
        vertices = (r0 @ skinned + pose[2][:, None]).T                             # [V, 3]
        u0, u1 = us[:, 0:1], us[:, 1:2]
        hand = u0 * vertices[tri[:, 0]] + u1 * vertices[tri[:, 1]] + (1 - u0 - u1) * vertices[tri[:, 2]]
        return jnp.ravel(points - hand)

    def jacobian(theta, us, *rest):
        pose_columns = jax.jacfwd(errors)(theta, us, *rest)                          # [3K, 26]
        if simple:
            return pose_columns
        along = [jax.jvp(lambda v: errors(theta, v, *rest), (us,), (jnp.zeros_like(us).at[:, j].set(1.0),))[1]
                 for j in range(2)]
        return jnp.concatenate([jnp.stack(along, axis=1), pose_columns], axis=1)

    model_arrays = [model["base_relatives"], model["inverse_base_absolutes"], model["base_positions"],
                    model["weights"], data["points"]]
    return errors, jacobian, [input["theta"], us] + model_arrays


PEERS = {"gmm": gmm, "lstm": lstm, "lse": lse, "llsq": llsq, "ode": ode, "kmeans": kmeans, "det": det,
         "ht": ht}


def time_jax(f, args):
    """The median time of `f(*args)` in ns, and its output, after one call to compile."""
    jax.block_until_ready(f(*args))
    times = []
    while len(times) < measure.RUNS["min_runs"] or sum(times) < measure.RUNS["min_seconds"] * 1e9:
        start = time.perf_counter_ns()
        out = jax.block_until_ready(f(*args))
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times), out


def flat(value):
    """A JSON answer's or a JAX output's numbers in one vector (a dict's by sorted name)."""
    if isinstance(value, dict):
        return np.concatenate([flat(value[key]) for key in sorted(value)])
    return np.ravel(np.asarray(value, dtype=np.float64))


def difference(ours, theirs):
    """The largest difference over the largest magnitude of gradc's answer."""
    a, b = flat(ours), flat(theirs)
    if a.shape != b.shape:
        return math.inf
    scale = np.max(np.abs(b)) or 1.0
    return float(np.max(np.abs(a - b)) / scale)


def peer(name, input, answers):
    """JAX's median times of the primal and derivative, and their agreement
    with gradc's answers (`None` when gradc gave none)."""
    primal, derivative, args = PEERS[name](input)
    args = [jnp.asarray(np.asarray(a, dtype=np.float64)) for a in args]
    tp, p = time_jax(jax.jit(primal), args)
    td, d = time_jax(jax.jit(derivative), args)
    if answers is None:
        return tp, td, "unchecked: gradc gave no answer"
    errors = difference(p, answers[0]), difference(d, answers[1])
    worst = max(errors)
    if worst <= TOLERANCE:
        return tp, td, f"yes ({worst:.0e})"
    return tp, td, f"**NO**: primal {errors[0]:.1e}, derivative {errors[1]:.1e}"


def gradc_columns(p, g):
    """gradc's primal, derivative and ratio cells, its medians (ns) and answers, or its error."""
    if not (p["success"] and g["success"]):
        error = (p.get("error") or g.get("error") or "no reason given").splitlines()[0]
        return f"gradc failed: {error.replace('|', '/')} | |", None, None
    gp, gd = measure.median(p), measure.median(g)
    return f"{gp / 1e3:.1f} | {gd / 1e3:.1f} | {gd / gp:.2f}", (gp, gd), (p["output"], g["output"])


def run(gradc, name):
    inputs, primal, gradient = measure.EVALS[name]
    random.seed(31337)
    drawn = list(inputs())
    messages = [{"kind": "start", "eval": name}, {"kind": "define", "module": name}]
    for _, input in drawn:
        messages += [{"kind": "evaluate", "module": name, "function": f, "input": input | measure.RUNS}
                     for f in (primal, gradient)]
    responses = measure.evaluate(gradc, messages)
    for i, (size, input) in enumerate(drawn):
        cells, times, answers = gradc_columns(responses[2 * i], responses[2 * i + 1])
        row = f"| {name} | {size} | {cells} |"
        if jax is None:
            print(row + " |" * 6, flush=True)
            continue
        try:
            jp, jd, agreement = peer(name, input, answers)
        except Exception as e:  # a JAX failure is a row of the table, not the end of the run
            message = str(e).splitlines()[0] if str(e) else ""
            print(row + f" JAX failed: {type(e).__name__}: {message} |" + " |" * 5, flush=True)
            continue
        versus = f"{times[0] / jp:.2f} | {times[1] / jd:.2f}" if times else " |"
        jax_cells = f"{jp / 1e3:.1f} | {jd / 1e3:.1f} | {jd / jp:.2f} | {versus} | {agreement}"
        print(f"{row} {jax_cells} |", flush=True)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    gradc, names = sys.argv[1], measure.split_options(sys.argv[2:]) or ORDER
    unknown = [n for n in names if n not in ORDER]
    if unknown:
        sys.exit(f"unknown eval(s) {', '.join(unknown)}: choose among {', '.join(ORDER)}")
    if jax is None:
        print(f"JAX cannot be imported ({JAX_MISSING}): gradc's figures alone.\n")
    else:
        print(f"JAX {jax.__version__} (f64, jax.jit) on {jax.devices()[0].platform}, its default threads "
              f"(XLA's CPU pool over the machine's {os.cpu_count()} cores; "
              f"XLA_FLAGS={os.environ.get('XLA_FLAGS', 'unset')}); `gradc gradbench` "
              f"{' '.join(measure.TOOL_OPTIONS) or 'with its defaults'} (its matrix products of 4 million "
              f"multiply-adds or more, and its elementwise runs of 131,072 elements or more (a call of "
              f"`exp` or `log` counting as 4 more), on one "
              f"thread a core unless `--threads` says, the rest on one). "
              f"Times in µs, medians of at least {measure.RUNS['min_runs']} runs and "
              f"{measure.RUNS['min_seconds']} s; agreement: the largest difference over the largest "
              f"magnitude of gradc's answer, at most {TOLERANCE:g}.\n")
    print("| eval | size | gradc primal | gradc derivative | gradc ratio | JAX primal | JAX derivative "
          "| JAX ratio | gradc/JAX primal | gradc/JAX derivative | agreement |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in names:
        run(gradc, name)


if __name__ == "__main__":
    main()
