//! NumPy's broadcasting of elementwise operands, and `@` as `numpy.matmul`
//! on operands of any rank: values against hand-computed entries and a
//! reference written from NumPy's rules, gradients against central
//! differences, every engine with the interpreter's bits, and a training
//! run whose biases broadcast.

use gradc::autodiff::check;
use gradc::eval::{Evaluator, Mode};
use gradc::runtime::{self, Options};
use gradc::shape::Tensor;
use gradc::Compiled;

use crate::common::{compile, same_bits_on_every_engine, temp_dir};

/// The multi-index of the `i`-th element, row-major, of a tensor of `dims`.
fn unravel(mut i: usize, dims: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; dims.len()];
    for (k, &n) in dims.iter().enumerate().rev() {
        idx[k] = i % n;
        i /= n;
    }
    idx
}

/// Where the element `idx` of a result of shape `out` is read from in an
/// operand of shape `dims`: its axes aligned with the last ones of `out`, a
/// length-1 axis read at 0.
fn source(dims: &[usize], out: &[usize], idx: &[usize]) -> usize {
    let lead = out.len() - dims.len();
    dims.iter().enumerate().fold(0, |at, (k, &n)| {
        at * n + if n == 1 { 0 } else { idx[lead + k] }
    })
}

/// `f` of the operands' elements at every index of `out`, as NumPy
/// broadcasts them.
fn reference(out: &[usize], xs: &[&Tensor], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let size: usize = out.iter().product();
    (0..size)
        .map(|i| {
            let idx = unravel(i, out);
            let vals: Vec<f64> = xs
                .iter()
                .map(|x| x.data[source(x.shape.dims(), out, &idx)])
                .collect();
            f(&vals)
        })
        .collect()
}

/// Gradients against central differences at the initial parameters and
/// seeded random inputs; the forward and the gradient program on every
/// engine with the interpreter's bits.
fn differentiates_on_every_engine(c: &Compiled, seed: u64) {
    let g = c.gradient().unwrap();
    let params = c.initial_params(0);
    let mut rng = <rand_xoshiro::Xoshiro256PlusPlus as rand::SeedableRng>::seed_from_u64(seed);
    let inputs = check::random_inputs(&c.ir, &mut rng);
    let errors = check::check(&c.ir, &g, &params, &inputs).unwrap();
    assert_eq!(errors.len(), c.typed.params.len());
    for e in errors {
        assert!(e.max_rel_error < 1e-6, "{e:?}");
    }
    for f in [&c.ir, &g] {
        same_bits_on_every_engine(f, &params, &inputs);
    }
}

const ELEMENTWISE: &str = "param b: [2, 1, 4] = [[[1, 2, 3, 4]], [[5, 6, 7, 8]]]\n\
    param x: [4] = [10, 20, 30, 40]\n\
    param c: [3, 1] = [[0.5], [1.5], [2.5]]\n\
    output s = b + x * c\n\
    output d = c - x\n\
    output m = max(b, c)\n\
    output w = where(c > 1, b, x)\n\
    output p = x / c ^ b\n\
    output e = mse(b, x)\n\
    output h = huber(c, x / 10)\n\
    loss sum(b + x)\n";

/// Every elementwise form broadcasts as NumPy: a few entries by hand, all
/// of them against the reference.
#[test]
fn elementwise_operands_broadcast_as_numpy() {
    let c = compile(ELEMENTWISE);
    let params = c.initial_params(0);
    let outs = Evaluator::compile(&c.ir, Mode::Interp)
        .unwrap()
        .outputs(&params, &[])
        .unwrap();
    let (b, x, cc) = (&params[0], &params[1], &params[2]);
    let out = |k: usize| &outs[k + 1];
    // By hand: s[1, 2, 3] = b[1, 0, 3] + x[3] c[2, 0] = 8 + 40 * 2.5.
    assert_eq!(out(0).shape.dims(), [2, 3, 4]);
    assert_eq!(out(0).data[12 + 2 * 4 + 3], 108.0);
    assert_eq!(out(0).data[0], 1.0 + 10.0 * 0.5);
    assert_eq!(out(1).shape.dims(), [3, 4]);
    assert_eq!(out(1).data[4..8], [-8.5, -18.5, -28.5, -38.5]);
    // (b - x)^2 over the 8 pairs: (81 + 324 + 729 + 1296 + 25 + 196 + 529 + 1024) / 8.
    assert_eq!(out(5).data, [525.5]);
    let all = [2, 3, 4];
    assert_eq!(
        out(0).data,
        reference(&all, &[b, x, cc], |v| v[0] + v[1] * v[2])
    );
    assert_eq!(out(1).data, reference(&[3, 4], &[cc, x], |v| v[0] - v[1]));
    assert_eq!(out(2).data, reference(&all, &[b, cc], |v| v[0].max(v[1])));
    let picked = reference(&all, &[cc, b, x], |v| if v[0] > 1.0 { v[1] } else { v[2] });
    assert_eq!(out(3).data, picked);
    let p = reference(&all, &[x, cc, b], |v| v[0] / v[1].powf(v[2]));
    for (got, want) in out(4).data.iter().zip(&p) {
        assert!((got - want).abs() <= 1e-12 * want.abs(), "{got} {want}");
    }
    let r = reference(&[3, 4], &[cc, x], |v| {
        let r = (v[0] - v[1] / 10.0).abs();
        if r <= 1.0 {
            0.5 * r * r
        } else {
            r - 0.5
        }
    });
    let want = r.iter().sum::<f64>() / 12.0;
    assert!(
        (out(6).item() - want).abs() < 1e-12,
        "{} {want}",
        out(6).item()
    );
}

/// A broadcast operand's gradient is summed over the axes it was repeated
/// along: central differences agree, for parameters repeated along missing
/// and along length-1 axes, through every elementwise form.
#[test]
fn broadcast_operands_differentiate_on_every_engine() {
    let src = "param b: [2, 1, 4] = normal(0, 1)\n\
               param x: [4] = normal(0, 1)\n\
               param c: [3, 1] = normal(0, 1)\n\
               input z: [3, 4]\n\
               let s = b * x - c / (1 + z^2)\n\
               let m = max(b, c) + min(z, x) + (abs(c) + 1) ^ b\n\
               let w = where(z > c, b, x * z)\n\
               loss sum(tanh(s)) + mean(m * w) + huber(c, z) + mse(b, z) + bce_logits(x, sigmoid(c))\n";
    let c = compile(src);
    differentiates_on_every_engine(&c, 11);
}

/// The shapes `@` gives, as `numpy.matmul`, and its values: one product
/// per pair of matrices of the broadcast batch.
fn matmul_reference(a: &Tensor, b: &Tensor) -> (Vec<usize>, Vec<f64>) {
    let (da, db) = (a.shape.dims(), b.shape.dims());
    let a2 = if da.len() == 1 {
        vec![1, da[0]]
    } else {
        da.to_vec()
    };
    let b2 = if db.len() == 1 {
        vec![db[0], 1]
    } else {
        db.to_vec()
    };
    let (ba, mk) = a2.split_at(a2.len() - 2);
    let (bb, kn) = b2.split_at(b2.len() - 2);
    let (m, k, n) = (mk[0], mk[1], kn[1]);
    let rank = ba.len().max(bb.len());
    let len = |d: &[usize], r: usize| {
        let lead = rank - d.len();
        if r < lead {
            1
        } else {
            d[r - lead]
        }
    };
    let batch: Vec<usize> = (0..rank).map(|r| len(ba, r).max(len(bb, r))).collect();
    let mut out = Vec::new();
    for i in 0..batch.iter().product() {
        let idx = unravel(i, &batch);
        let (oa, ob) = (source(ba, &batch, &idx), source(bb, &batch, &idx));
        for r in 0..m {
            for col in 0..n {
                let dot = (0..k)
                    .map(|j| a.data[(oa * m + r) * k + j] * b.data[(ob * k + j) * n + col])
                    .sum();
                out.push(dot);
            }
        }
    }
    let mut dims = batch;
    if da.len() > 1 {
        dims.push(m);
    }
    if db.len() > 1 {
        dims.push(n);
    }
    (dims, out)
}

const MATMUL: &str = "param A: [2, 3, 4] = normal(0, 1)\n\
    param B: [2, 4, 5] = normal(0, 1)\n\
    param D: [3, 1, 2, 4] = normal(0, 1)\n\
    param M: [3, 4] = normal(0, 1)\n\
    param W: [4, 5] = normal(0, 1)\n\
    param E: [1, 3, 4] = normal(0, 1)\n\
    param v: [4] = normal(0, 1)\n\
    output ab = A @ B\n\
    output db = D @ B\n\
    output vb = v @ B\n\
    output av = A @ v\n\
    output mb = M @ B\n\
    output aw = A @ W\n\
    output eb = E @ B[1:2]\n\
    output vm = v @ M.T\n\
    loss sum(tanh(A @ B)) + sum(tanh(D @ B)) + sum(v @ B) + sum(sin(A @ v)) \
      + sum(tanh(M @ B)) + sum(tanh(A @ W)) + sum(tanh(E @ B[1:2]))\n";

/// `@` on stacks of matrices, vectors on either side, and batches that
/// broadcast: NumPy's shapes and values.
#[test]
fn matmul_on_any_rank_is_numpys() {
    let c = compile(MATMUL);
    let params = c.initial_params(0);
    let outs = Evaluator::compile(&c.ir, Mode::Interp)
        .unwrap()
        .outputs(&params, &[])
        .unwrap();
    let p = |name: &str| {
        let i = c.typed.params.iter().position(|d| d.name == name).unwrap();
        &params[i]
    };
    let b1 = Tensor::new(
        gradc::shape::Shape(vec![1, 4, 5]),
        p("B").data[20..].to_vec(),
    );
    let mt = {
        let m = p("M");
        let data = (0..12).map(|i| m.data[(i % 3) * 4 + i / 3]).collect();
        Tensor::new(gradc::shape::Shape::matrix(4, 3), data)
    };
    let pairs = [
        (p("A"), p("B"), [2, 3, 5].as_slice()),
        (p("D"), p("B"), &[3, 2, 2, 5]),
        (p("v"), p("B"), &[2, 5]),
        (p("A"), p("v"), &[2, 3]),
        (p("M"), p("B"), &[2, 3, 5]),
        (p("A"), p("W"), &[2, 3, 5]),
        (p("E"), &b1, &[1, 3, 5]),
        (p("v"), &mt, &[3]),
    ];
    for (k, (a, b, dims)) in pairs.into_iter().enumerate() {
        let (want_dims, want) = matmul_reference(a, b);
        assert_eq!(want_dims, dims, "the reference's shape, case {k}");
        let got = &outs[k + 1];
        assert_eq!(got.shape.dims(), dims, "case {k}");
        for (g, w) in got.data.iter().zip(&want) {
            assert!(
                (g - w).abs() <= 1e-12 * w.abs().max(1.0),
                "case {k}: {g} {w}"
            );
        }
    }
}

#[test]
fn matmul_on_any_rank_differentiates_on_every_engine() {
    differentiates_on_every_engine(&compile(MATMUL), 3);
}

/// A stack of matrices times a matrix is one product of its rows, a
/// matrix times a stack one product of its columns, and a batch that needs
/// a loop has one of as many steps as pairs; rank 1 and 2 stay one
/// `matmul` as before.
#[test]
fn matmul_lowers_to_one_product_or_a_loop() {
    let ir = |src: &str| compile(src).ir.to_string();
    let rows =
        ir("param A: [2, 3, 4] = normal(0, 1)\nparam W: [4, 5] = normal(0, 1)\nloss sum(A @ W)\n");
    assert!(
        rows.contains("matmul %") && !rows.contains("loop"),
        "{rows}"
    );
    let columns =
        ir("param M: [3, 4] = normal(0, 1)\nparam B: [2, 4, 5] = normal(0, 1)\nloss sum(M @ B)\n");
    assert!(
        columns.contains("permute") && !columns.contains("loop"),
        "{columns}"
    );
    let stack = ir(
        "param A: [2, 3, 4] = normal(0, 1)\nparam B: [2, 4, 5] = normal(0, 1)\nloss sum(A @ B)\n",
    );
    assert!(stack.contains("loop 2 "), "{stack}");
    let plain =
        ir("param A: [3, 4] = normal(0, 1)\nparam W: [4, 5] = normal(0, 1)\nloss sum(A @ W)\n");
    assert!(
        !plain.contains("reshape") && !plain.contains("loop"),
        "{plain}"
    );
}

/// A scalar with a tensor keeps today's IR: no broadcast instruction.
#[test]
fn a_scalar_with_a_tensor_is_not_broadcast_in_the_ir() {
    let ir = compile("input x: [3]\nparam a = 2\nloss sum(a * x + 1)\n")
        .ir
        .to_string();
    assert!(!ir.contains("broadcast"), "{ir}");
}

/// Training with biases that broadcast: a per-row bias `[2, 1]` and a
/// per-column bias `[1, 3]` learn a table that is exactly their sum, on
/// the batched engine and the per-example one alike.
#[test]
fn a_broadcast_bias_trains() {
    let dir = temp_dir("broadcast-train");
    // The targets: `t * T` plus a table R_i + C_j = i + 10 j, and plus an
    // offset per [2, 3] table of a stack of two: the model fits them exactly.
    let mut csv = String::from("t\n");
    for t in 0..16 {
        csv.push_str(&format!("{}\n", t as f64 / 8.0 - 1.0));
    }
    std::fs::write(dir.join("t.csv"), csv).unwrap();
    let src = "input t\n\
               param R: [2, 1] = zeros\n\
               param C: [1, 3] = zeros\n\
               param G: [2, 1, 1] = zeros\n\
               let T = [[1, 2, 3], [4, 5, 6]]\n\
               let target = t * T + [[0], [1]] + [[0, 10, 20]]\n\
               let stacked = t * T + [[[-1]], [[2]]]\n\
               loss mse(t * T + R + C, target) + mse(t * T + G, stacked)\n\
               train {\n\
                 data = csv(\"t.csv\", t = 0)\n\
                 optimizer = sgd(lr = 0.2)\n\
                 batch = 4\n\
                 epochs = 150\n\
                 seed = 1\n\
               }\n";
    let c = compile(src);
    let cfg = c.typed.train.clone().unwrap();
    let opts = Options {
        base_dir: dir.clone(),
        ..Options::default()
    };
    let r = runtime::train(&c, &cfg, &opts, &mut ()).unwrap_or_else(|e| panic!("{e}"));
    assert!(r.train.loss < 1e-10, "{}", r.train.loss);
    // Only the sums R_i + C_j are determined: they are the table.
    let (rr, cc, g) = (&r.params[0].data, &r.params[1].data, &r.params[2].data);
    assert_eq!((rr.len(), cc.len()), (2, 3));
    for (i, ri) in rr.iter().enumerate() {
        for (j, cj) in cc.iter().enumerate() {
            let fitted = ri + cj;
            assert!(
                (fitted - (i as f64 + 10.0 * j as f64)).abs() < 1e-4,
                "{i} {j}"
            );
        }
    }
    // G, repeated over a [2, 3] table per entry, is the offset of each.
    assert!(
        (g[0] + 1.0).abs() < 1e-4 && (g[1] - 2.0).abs() < 1e-4,
        "{g:?}"
    );
    for mode in [runtime::Mode::PerExample, runtime::Mode::Interp] {
        let other = runtime::train_with(&c, &cfg, &opts, mode, &mut ()).unwrap();
        assert_eq!(other.params, r.params, "{mode:?}");
    }
}

const EINSUM: &str = "param A: [2, 3] = normal(0, 1)\n\
    param B: [3, 4] = normal(0, 1)\n\
    param v: [3] = normal(0, 1)\n\
    param T: [2, 3, 4] = normal(0, 1)\n\
    output mm = einsum(\"ij,jk->ik\", A, B)\n\
    output tr = einsum(\"ij->ji\", A)\n\
    output dt = einsum(\"i,i\", v, v)\n\
    output bl = einsum(\"ij,j,jk->ki\", A, v, B)\n\
    output tc = einsum(\"bjk,ji->bik\", T, A.T)\n\
    output rs = einsum(\"ijk->j\", T)\n\
    loss sum(tanh(einsum(\"ij,jk\", A, B))) + einsum(\"i,ij,ijk->\", v, A.T, transpose(T, [1, 0, 2])) \
      + sum(sin(einsum(\"bjk,ji->bik\", T, A.T)))\n";

/// `einsum` gives the sums its subscripts write, term by term.
#[test]
fn einsum_sums_what_its_subscripts_say() {
    let c = compile(EINSUM);
    let params = c.initial_params(0);
    let outs = Evaluator::compile(&c.ir, Mode::Interp)
        .unwrap()
        .outputs(&params, &[])
        .unwrap();
    let (a, b, v, t) = (
        &params[0].data,
        &params[1].data,
        &params[2].data,
        &params[3].data,
    );
    let close = |got: f64, want: f64| {
        assert!(
            (got - want).abs() <= 1e-12 * want.abs().max(1.0),
            "{got} {want}"
        );
    };
    let out = |k: usize| &outs[k + 1];
    assert_eq!(out(0).shape.dims(), [2, 4]);
    for i in 0..2 {
        for k in 0..4 {
            let want = (0..3).map(|j| a[i * 3 + j] * b[j * 4 + k]).sum();
            close(out(0).data[i * 4 + k], want);
            let bl = (0..3).map(|j| a[i * 3 + j] * v[j] * b[j * 4 + k]).sum();
            close(out(3).data[k * 2 + i], bl);
        }
    }
    assert_eq!(out(1).shape.dims(), [3, 2]);
    for (i, j) in (0..2).flat_map(|i| (0..3).map(move |j| (i, j))) {
        assert_eq!(out(1).data[j * 2 + i], a[i * 3 + j]);
    }
    close(out(2).item(), v.iter().map(|x| x * x).sum());
    // tc[b, i, k] = sum_j T[b, j, k] A.T[j, i], with A.T[j, i] = A[i, j].
    assert_eq!(out(4).shape.dims(), [2, 2, 4]);
    for (bb, i, k) in
        (0..2).flat_map(|bb| (0..2).flat_map(move |i| (0..4).map(move |k| (bb, i, k))))
    {
        let want = (0..3).map(|j| t[bb * 12 + j * 4 + k] * a[i * 3 + j]).sum();
        close(out(4).data[bb * 8 + i * 4 + k], want);
    }
    assert_eq!(out(5).shape.dims(), [3]);
    for j in 0..3 {
        let want = (0..2)
            .flat_map(|i| (0..4).map(move |k| t[i * 12 + j * 4 + k]))
            .sum();
        close(out(5).data[j], want);
    }
}

#[test]
fn einsum_differentiates_on_every_engine() {
    differentiates_on_every_engine(&compile(EINSUM), 9);
}

/// Training through `@` on stacks, with the stack an input of each
/// example: a stack times a matrix (one product of rows) and a stack times
/// a stack (a loop); the batched engine, the per-example one and the
/// interpreter agree bit for bit, and the loss falls.
#[test]
fn matmul_on_stacks_trains_alike_on_every_engine() {
    let dir = temp_dir("batched-matmul-train");
    let mut csv = String::new();
    let mut r = <rand_xoshiro::Xoshiro256PlusPlus as rand::SeedableRng>::seed_from_u64(4);
    for _ in 0..24 {
        let row: Vec<String> = (0..13)
            .map(|_| format!("{:.3}", rand::RngExt::random_range(&mut r, -1.0..1.0)))
            .collect();
        csv.push_str(&row.join(","));
        csv.push('\n');
    }
    std::fs::write(dir.join("x.csv"), csv).unwrap();
    let src = "input x: [12]\n\
               input y\n\
               param W: [3, 2] = normal(0, 0.5)\n\
               param S: [2, 3, 1] = normal(0, 0.5)\n\
               param b: [2, 1, 1] = zeros\n\
               let X = reshape(x, [2, 2, 3])\n\
               let h = tanh(X @ W + b)\n\
               let z = sum(h) + sum(X @ S)\n\
               loss (z - y)^2\n\
               train {\n\
                 data = csv(\"x.csv\", x = 0..12, y = 12)\n\
                 optimizer = adam(lr = 0.05)\n\
                 batch = 8\n\
                 epochs = 20\n\
                 seed = 2\n\
               }\n";
    let c = compile(src);
    assert!(c.ir.to_string().contains("loop 2 "), "{}", c.ir);
    let cfg = c.typed.train.clone().unwrap();
    let opts = Options {
        base_dir: dir.clone(),
        ..Options::default()
    };
    let runs: Vec<_> = [
        runtime::Mode::Batched,
        runtime::Mode::PerExample,
        runtime::Mode::Interp,
    ]
    .into_iter()
    .map(|m| runtime::train_with(&c, &cfg, &opts, m, &mut ()).unwrap())
    .collect();
    for other in &runs[1..] {
        assert_eq!(other.params, runs[0].params);
        assert_eq!(other.train.loss.to_bits(), runs[0].train.loss.to_bits());
    }
    let first = runs[0].history.first().unwrap().loss;
    assert!(
        runs[0].train.loss < first,
        "{} !< {first}",
        runs[0].train.loss
    );
}
