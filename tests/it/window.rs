//! Convolution and pooling (`conv2d`, `maxpool2d`, `avgpool2d`) and the
//! window operations of their gradients: the interpreter against naive
//! loops written here and small cases checked by hand; each adjoint against
//! its operation through `<A x, y> = <x, Aᵀ y>`; max pooling's choice at
//! ties and NaNs; gradients and Hessians against central finite
//! differences over random geometries; the JIT, per example and batched,
//! against the interpreter bit for bit; and a conv layer that trains.

use gradc::autodiff::{self, check};
use gradc::ir::interp::{self, eval_op};
use gradc::ir::{Function, Op, Window};
use gradc::runtime::{self, Observer, Options, StepEvent};
use gradc::shape::{Shape, Tensor};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::common::{batch_agrees, compile, gradc, temp_dir};

fn t(dims: &[usize], data: Vec<f64>) -> Tensor {
    Tensor::new(Shape(dims.to_vec()), data)
}

/// Uniform numbers in [-1, 1) of the given shape.
fn random(dims: &[usize], rng: &mut impl Rng) -> Tensor {
    let n = dims.iter().product();
    t(dims, (0..n).map(|_| rng.random_range(-1.0..1.0)).collect())
}

/// Distinct numbers (no ties within a window) of the given shape, shuffled.
fn distinct(dims: &[usize], rng: &mut impl Rng) -> Tensor {
    let n: usize = dims.iter().product();
    let mut data: Vec<f64> = (0..n).map(|i| i as f64 * 0.1 - 1.0).collect();
    for i in (1..n).rev() {
        data.swap(i, rng.random_range(0..=i));
    }
    t(dims, data)
}

fn apply(w: Window, args: &[&Tensor]) -> Tensor {
    eval_op(&Op::Window(w), args).unwrap_or_else(|e| panic!("{w:?}: {e}"))
}

fn dot(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.shape, b.shape);
    a.data.iter().zip(&b.data).map(|(x, y)| x * y).sum()
}

fn assert_close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-12 * (1.0 + w.abs()),
            "{what}[{k}]: {g} but {w}\n{got:?}\n{want:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Naive references: the textbook formulas on an explicitly padded image.

/// `x` of `[c, h, w]` padded with `p` zeros on each side.
fn padded(x: &Tensor, p: usize) -> (Vec<f64>, usize, usize) {
    let [c, h, w] = x.shape.dims() else { panic!() };
    let (ph, pw) = (h + 2 * p, w + 2 * p);
    let mut out = vec![0.0; c * ph * pw];
    for ci in 0..*c {
        for i in 0..*h {
            for j in 0..*w {
                out[(ci * ph + i + p) * pw + j + p] = x.data[(ci * h + i) * w + j];
            }
        }
    }
    (out, ph, pw)
}

fn naive_conv(x: &Tensor, k: &Tensor, s: usize, p: usize) -> Vec<f64> {
    let [c, ..] = x.shape.dims() else { panic!() };
    let [o, _, kh, kw] = k.shape.dims() else {
        panic!()
    };
    let (xp, ph, pw) = padded(x, p);
    let (oh, ow) = ((ph - kh) / s + 1, (pw - kw) / s + 1);
    let mut out = Vec::new();
    for oi in 0..*o {
        for i in 0..oh {
            for j in 0..ow {
                let mut acc = 0.0;
                for ci in 0..*c {
                    for a in 0..*kh {
                        for b in 0..*kw {
                            let xv = xp[(ci * ph + i * s + a) * pw + j * s + b];
                            acc += xv * k.data[((oi * c + ci) * kh + a) * kw + b];
                        }
                    }
                }
                out.push(acc);
            }
        }
    }
    out
}

/// Max or mean of every window.
fn naive_pool(x: &Tensor, k: usize, s: usize, max: bool) -> Vec<f64> {
    let [c, h, w] = x.shape.dims() else { panic!() };
    let mut out = Vec::new();
    for ci in 0..*c {
        for i in 0..(h - k) / s + 1 {
            for j in 0..(w - k) / s + 1 {
                let window: Vec<f64> = (0..k * k)
                    .map(|e| x.data[(ci * h + i * s + e / k) * w + j * s + e % k])
                    .collect();
                out.push(if max {
                    window.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
                } else {
                    window.iter().sum::<f64>() / (k * k) as f64
                });
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// The interpreter

#[test]
fn conv2d_by_hand() {
    // 1..9 in a 3 x 3 image, a 2 x 2 kernel of ones: the sums of the four
    // 2 x 2 blocks; with padding 1 and stride 2, the corners' blocks of the
    // padded image: 1, 2 + 3, 4 + 7, 5 + 6 + 8 + 9.
    let x = t(&[1, 3, 3], (1..=9).map(f64::from).collect());
    let k = t(&[1, 1, 2, 2], vec![1.0; 4]);
    let plain = Window::Conv2d {
        stride: 1,
        padding: 0,
    };
    assert_eq!(apply(plain, &[&x, &k]).data, [12.0, 16.0, 24.0, 28.0]);
    let strided = Window::Conv2d {
        stride: 2,
        padding: 1,
    };
    assert_eq!(apply(strided, &[&x, &k]).data, [1.0, 5.0, 11.0, 28.0]);
    // Cross-correlation, not convolution: the kernel is not flipped.
    let k = t(&[1, 1, 2, 2], vec![1.0, 0.0, 0.0, 0.0]);
    assert_eq!(apply(plain, &[&x, &k]).data, [1.0, 2.0, 4.0, 5.0]);
}

#[test]
fn pooling_by_hand() {
    let x = t(&[1, 4, 4], (1..=16).map(f64::from).collect());
    let max = Window::MaxPool2d { k: 2, stride: 2 };
    assert_eq!(apply(max, &[&x]).data, [6.0, 8.0, 14.0, 16.0]);
    let avg = Window::AvgPool2d { k: 2, stride: 2 };
    assert_eq!(apply(avg, &[&x]).data, [3.5, 5.5, 11.5, 13.5]);
    // Overlapping windows, and a last row and column no window reaches.
    let avg = Window::AvgPool2d { k: 3, stride: 2 };
    let x5 = t(&[1, 5, 5], (1..=25).map(f64::from).collect());
    assert_eq!(apply(avg, &[&x5]).data, [7.0, 9.0, 17.0, 19.0]);
}

#[test]
fn the_interpreter_matches_the_naive_loops() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
    for trial in 0..60 {
        let (c, o) = (rng.random_range(1..4), rng.random_range(1..4));
        let (h, w) = (rng.random_range(1..8), rng.random_range(1..8));
        let (s, p) = (rng.random_range(1..4), rng.random_range(0..3));
        let kh = rng.random_range(1..=h + 2 * p);
        let kw = rng.random_range(1..=w + 2 * p);
        let x = random(&[c, h, w], &mut rng);
        let k = random(&[o, c, kh, kw], &mut rng);
        let conv = Window::Conv2d {
            stride: s,
            padding: p,
        };
        let what = format!(
            "trial {trial}: conv {:?} * {:?} s {s} p {p}",
            x.shape, k.shape
        );
        assert_close(
            &what,
            &apply(conv, &[&x, &k]).data,
            &naive_conv(&x, &k, s, p),
        );
        let kp = rng.random_range(1..=h.min(w));
        for max in [true, false] {
            let pool = if max {
                Window::MaxPool2d { k: kp, stride: s }
            } else {
                Window::AvgPool2d { k: kp, stride: s }
            };
            let what = format!("trial {trial}: {pool:?} of {:?}", x.shape);
            assert_close(&what, &apply(pool, &[&x]).data, &naive_pool(&x, kp, s, max));
        }
    }
}

#[test]
fn each_adjoint_is_the_transpose_of_its_operation() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
    for trial in 0..60 {
        let (c, o) = (rng.random_range(1..4), rng.random_range(1..4));
        let (h, w) = (rng.random_range(2..8), rng.random_range(2..8));
        let (stride, padding) = (rng.random_range(1..4), rng.random_range(0..3));
        let (kh, kw) = (rng.random_range(1..=h), rng.random_range(1..=w));
        let x = random(&[c, h, w], &mut rng);
        let k = random(&[o, c, kh, kw], &mut rng);
        let y = apply(Window::Conv2d { stride, padding }, &[&x, &k]);
        let g = random(y.shape.dims(), &mut rng);
        let dx = apply(
            Window::Conv2dInput {
                stride,
                padding,
                h,
                w,
            },
            &[&g, &k],
        );
        let dk = apply(
            Window::Conv2dKernel {
                stride,
                padding,
                kh,
                kw,
            },
            &[&x, &g],
        );
        let what = format!("trial {trial}: conv {:?} * {:?}", x.shape, k.shape);
        assert_close(&format!("{what}, input"), &[dot(&y, &g)], &[dot(&x, &dx)]);
        assert_close(&format!("{what}, kernel"), &[dot(&y, &g)], &[dot(&k, &dk)]);

        let kp = rng.random_range(1..=h.min(w));
        let pool = |w: fn(usize, usize) -> Window| w(kp, stride);
        let avg = apply(pool(|k, stride| Window::AvgPool2d { k, stride }), &[&x]);
        let g = random(avg.shape.dims(), &mut rng);
        let back = apply(
            Window::AvgPoolAdjoint {
                k: kp,
                stride,
                h,
                w,
            },
            &[&g],
        );
        assert_close(
            &format!("{what}, avgpool"),
            &[dot(&avg, &g)],
            &[dot(&x, &back)],
        );

        let u = random(&[c, h, w], &mut rng);
        let gathered = apply(
            pool(|k, stride| Window::MaxPoolGather { k, stride }),
            &[&x, &u],
        );
        let scattered = apply(
            pool(|k, stride| Window::MaxPoolScatter { k, stride }),
            &[&x, &g],
        );
        assert_close(
            &format!("{what}, maxpool"),
            &[dot(&gathered, &g)],
            &[dot(&u, &scattered)],
        );
        // Max pooling is the gather of x at its own choice.
        let max = apply(pool(|k, stride| Window::MaxPool2d { k, stride }), &[&x]);
        let own = apply(
            pool(|k, stride| Window::MaxPoolGather { k, stride }),
            &[&x, &x],
        );
        assert_eq!(max.data, own.data);
    }
}

#[test]
fn max_pooling_chooses_the_first_largest_and_a_nan() {
    let scatter = Window::MaxPoolScatter { k: 2, stride: 2 };
    let max = Window::MaxPool2d { k: 2, stride: 2 };
    let g = t(&[1, 1, 2], vec![10.0, 20.0]);
    // A tie in the first window (the first in row-major order takes the
    // cotangent); a NaN after a larger number in the second (the NaN).
    let x = t(
        &[1, 2, 4],
        vec![5.0, 1.0, 7.0, f64::NAN, 2.0, 5.0, 9.0, 1.0],
    );
    let y = apply(max, &[&x]);
    assert_eq!(y.data[0], 5.0);
    assert!(y.data[1].is_nan());
    let d = apply(scatter, &[&x, &g]);
    assert_eq!(d.data, [10.0, 0.0, 0.0, 20.0, 0.0, 0.0, 0.0, 0.0]);
    // All -inf: the first element, as argmax.
    let x = t(&[1, 2, 2], vec![f64::NEG_INFINITY; 4]);
    let d = apply(scatter, &[&x, &t(&[1, 1, 1], vec![3.0])]);
    assert_eq!(d.data, [3.0, 0.0, 0.0, 0.0]);
}

// ---------------------------------------------------------------------------
// Gradients

/// A random geometry: channels, image, kernel, stride, padding and a
/// pooling window.
#[derive(Clone, Debug)]
struct Geo {
    c: usize,
    o: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    padding: usize,
    pool: usize,
    pool_stride: usize,
}

fn geo() -> impl Strategy<Value = Geo> {
    (
        1..3usize,
        1..3usize,
        2..7usize,
        2..7usize,
        1..3usize,
        0..3usize,
    )
        .prop_flat_map(|(c, o, h, w, stride, padding)| {
            (
                Just((c, o, h, w, stride, padding)),
                1..=h + 2 * padding,
                1..=w + 2 * padding,
                1..4usize,
            )
        })
        .prop_filter(
            "a pooled map of at least 1 x 1",
            |((_, _, h, w, s, p), kh, kw, _)| {
                (h + 2 * p - kh) / s + 1 >= 1 && (w + 2 * p - kw) / s + 1 >= 1
            },
        )
        .prop_flat_map(|((c, o, h, w, stride, padding), kh, kw, pool_stride)| {
            let (oh, ow) = (
                (h + 2 * padding - kh) / stride + 1,
                (w + 2 * padding - kw) / stride + 1,
            );
            (1..=oh.min(ow)).prop_map(move |pool| Geo {
                c,
                o,
                h,
                w,
                kh,
                kw,
                stride,
                padding,
                pool,
                pool_stride,
            })
        })
}

/// A loss through a convolution (with its own stride and padding), a
/// nonlinearity, max and average pooling of its result, and a second
/// convolution of an input by the first map; parameters `x` and `K`.
fn source(g: &Geo) -> String {
    let Geo {
        c,
        o,
        h,
        w,
        kh,
        kw,
        stride,
        padding,
        pool,
        pool_stride,
    } = g;
    format!(
        "param x: [{c}, {h}, {w}]\n\
         param K: [{o}, {c}, {kh}, {kw}]\n\
         input r\n\
         let y = conv2d(x, K, stride = {stride}, padding = {padding})\n\
         let m = maxpool2d(y, {pool}, stride = {pool_stride})\n\
         let a = avgpool2d(y * y, {pool}, stride = {pool_stride})\n\
         loss r * sum(m * m) + sum(a) + sum(sin(y))\n"
    )
}

fn params_of(g: &Geo, rng: &mut impl Rng) -> Vec<Tensor> {
    vec![
        distinct(&[g.c, g.h, g.w], rng),
        random(&[g.o, g.c, g.kh, g.kw], rng),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn gradients_agree_with_finite_differences(g in geo(), seed in any::<u64>()) {
        let src = source(&g);
        let c = compile(&src);
        let grad = c.gradient().map_err(|d| TestCaseError::fail(format!("{d:?}")))?;
        let raw = autodiff::grad(&c.ir).map_err(|e| TestCaseError::fail(e.message))?;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let params = params_of(&g, &mut rng);
        let inputs = vec![Tensor::scalar(0.7)];
        for gp in [&grad, &raw] {
            let checks = check::check(&c.raw, gp, &params, &inputs)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            for pc in checks {
                // Max pooling is not smooth where a window's choice changes:
                // distinct values of x keep its steps away from those.
                prop_assert!(pc.max_rel_error < 1e-5, "{pc:?}\n{src}\n{gp}");
            }
        }
    }
}

/// The Hessian (the gradient program differentiated again: its window
/// operations' own rules) against central differences of the gradient.
#[test]
fn hessians_agree_with_differences_of_the_gradient() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
    let geos = [
        Geo {
            c: 1,
            o: 2,
            h: 4,
            w: 3,
            kh: 2,
            kw: 2,
            stride: 1,
            padding: 1,
            pool: 2,
            pool_stride: 1,
        },
        Geo {
            c: 2,
            o: 1,
            h: 5,
            w: 5,
            kh: 3,
            kw: 2,
            stride: 2,
            padding: 0,
            pool: 1,
            pool_stride: 1,
        },
    ];
    for g in &geos {
        let src = source(g);
        let c = compile(&src);
        let params = params_of(g, &mut rng);
        let inputs = vec![Tensor::scalar(0.7)];
        let h = autodiff::hessian(&c.ir, &params, &inputs).unwrap_or_else(|e| panic!("{e}\n{src}"));
        let grad = c.gradient().unwrap();
        let flat = |ps: &[Tensor]| -> Vec<f64> {
            let (_, gs) = check::gradients(&grad, ps, &inputs).unwrap();
            gs.into_iter().flat_map(|t| t.data).collect()
        };
        let mut work = params.clone();
        let mut row = 0;
        for (pi, p) in params.iter().enumerate() {
            for k in 0..p.data.len() {
                let x = p.data[k];
                work[pi].data[k] = x + check::EPS;
                let up = flat(&work);
                work[pi].data[k] = x - check::EPS;
                let down = flat(&work);
                work[pi].data[k] = x;
                for (j, (u, d)) in up.iter().zip(&down).enumerate() {
                    let numeric = (u - d) / (2.0 * check::EPS);
                    let err = check::relative_error(h[row][j], numeric);
                    assert!(
                        err < 1e-5,
                        "H[{row}][{j}] = {} but {numeric}\n{src}",
                        h[row][j]
                    );
                }
                row += 1;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The JIT

/// Same bits, or both NaN.
fn same(what: &str, want: &[f64], got: &[f64]) {
    assert_eq!(want.len(), got.len(), "{what}: lengths");
    for (k, (w, g)) in want.iter().zip(got).enumerate() {
        assert!(
            w.to_bits() == g.to_bits() || (w.is_nan() && g.is_nan()),
            "{what}[{k}]: interpreter {w:e}, JIT {g:e}"
        );
    }
}

/// Programs with inputs (so the batched code runs window operations per
/// example) and parameters, sizes beyond the unrolled loops.
fn jit_sources() -> Vec<String> {
    let mut out = Vec::new();
    for (h, w, k, s, p, pool) in [
        (7, 6, 3, 1, 1, 2),
        (9, 8, 3, 2, 2, 3),
        (5, 5, 5, 1, 0, 1),
        (6, 7, 2, 3, 1, 2),
        (11, 10, 4, 1, 3, 4),
        // One output position: every tap's row and column known when
        // compiling, some of them in the padding.
        (3, 3, 5, 1, 1, 1),
    ] {
        out.push(format!(
            "input x: [2, {h}, {w}]\n\
             input r\n\
             param K: [5, 2, {k}, {k}] = normal(0, 0.5)\n\
             let y = conv2d(x, K, stride = {s}, padding = {p})\n\
             let m = maxpool2d(tanh(y), {pool}, stride = 1)\n\
             let a = avgpool2d(y, {pool})\n\
             loss r * sum(m * m) + sum(a * a)\n\
             output m = m\n"
        ));
    }
    // A convolution of parameters only (computed once per batch), its
    // gradient's window operations per example.
    out.push(
        "param Q: [2, 6, 6] = normal(0, 1)\n\
         param K: [3, 2, 3, 3] = normal(0, 0.5)\n\
         input r: [3, 2, 2]\n\
         let y = maxpool2d(conv2d(Q, K, padding = 1), 3)\n\
         loss sum(y * r) + sum(avgpool2d(y * r, 2))\n"
            .to_string(),
    );
    out
}

#[test]
fn the_jit_agrees_with_the_interpreter_bit_for_bit() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
    for src in jit_sources() {
        let c = compile(&src);
        let fs: Vec<Function> = vec![c.ir.clone(), c.gradient().unwrap()];
        for f in &fs {
            let jit = gradc::backend::compile(f).unwrap_or_else(|e| panic!("{e}\n{src}"));
            for _ in 0..3 {
                let params: Vec<Tensor> = f
                    .params
                    .iter()
                    .map(|s| random(s.shape.dims(), &mut rng))
                    .collect();
                let mut inputs = check::random_inputs(f, &mut rng);
                // A NaN in the image: max pooling's choice in both engines.
                inputs[0].data[3] = f64::NAN;
                let want = interp::run_outputs(f, &params, &inputs).unwrap();
                let got = jit.run(&params, &inputs).unwrap();
                for ((o, w), g) in want.iter().zip(&got) {
                    same(&format!("{} of\n{src}", o.name), &w.data, &g.data);
                }
                inputs[0].data[3] = 0.25;
                let want = interp::run_outputs(f, &params, &inputs).unwrap();
                let got = jit.run(&params, &inputs).unwrap();
                for ((o, w), g) in want.iter().zip(&got) {
                    same(&format!("{} of\n{src}", o.name), &w.data, &g.data);
                }
            }
        }
    }
}

#[test]
fn the_batched_jit_agrees_with_the_interpreter_bit_for_bit() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(13);
    for src in jit_sources() {
        let c = compile(&src);
        let f = c.gradient().unwrap();
        let params: Vec<Tensor> = f
            .params
            .iter()
            .map(|s| random(s.shape.dims(), &mut rng))
            .collect();
        let examples: Vec<Vec<Tensor>> =
            (0..5).map(|_| check::random_inputs(&f, &mut rng)).collect();
        batch_agrees(&f, &params, &examples);
    }
}

// ---------------------------------------------------------------------------
// Training

#[derive(Default)]
struct Losses(Vec<f64>);

impl Observer for Losses {
    fn step(&mut self, e: &StepEvent<'_>) {
        self.0.push(e.loss);
    }
}

/// A conv layer, max pooling and a linear read-out learn to tell a
/// vertical bar from a horizontal one in 4 x 4 images.
#[test]
fn a_conv_layer_trains() {
    let dir = temp_dir("conv_train");
    let mut csv = String::new();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    for e in 0..64 {
        let vertical = e % 2 == 0;
        let at = rng.random_range(0..4);
        let pixels: Vec<String> = (0..16)
            .map(|p| {
                let (i, j) = (p / 4, p % 4);
                let on = if vertical { j == at } else { i == at };
                let noise: f64 = rng.random_range(-0.1..0.1);
                format!("{}", f64::from(u8::from(on)) + noise)
            })
            .collect();
        csv.push_str(&format!("{},{}\n", pixels.join(","), u8::from(vertical)));
    }
    std::fs::write(dir.join("bars.csv"), csv).unwrap();
    let src = "input x: [1, 4, 4]\n\
               input y\n\
               param K: [2, 1, 3, 3] = normal(0, 0.5)\n\
               param v: [2] = zeros\n\
               param b = 0\n\
               let h = maxpool2d(relu(conv2d(x, K, padding = 1)), 4)\n\
               let z = dot(v, reshape(h, [2])) + b\n\
               loss bce_logits(z, y)\n\
               train {\n  data = csv(\"bars.csv\", x = 0..16, y = 16)\n  \
               optimizer = adam(lr = 0.05)\n  batch = 16\n  epochs = 30\n  seed = 3\n}\n";
    let c = compile(src);
    let cfg = c.typed.train.clone().unwrap();
    let opts = Options {
        base_dir: dir,
        ..Options::default()
    };
    let mut losses = Losses::default();
    runtime::train(&c, &cfg, &opts, &mut losses).unwrap_or_else(|e| panic!("{e}"));
    let first: f64 = losses.0[..4].iter().sum::<f64>() / 4.0;
    let n = losses.0.len();
    let last: f64 = losses.0[n - 4..].iter().sum::<f64>() / 4.0;
    assert!(n == 4 * 30, "{n} steps");
    assert!(
        last < 0.25 * first,
        "loss from {first} to {last}: {:?}",
        losses.0
    );
}

// ---------------------------------------------------------------------------
// Cost

#[test]
fn flops_of_a_convolution_and_its_cheap_gradient() {
    // [4, 2, 3, 3] over [2, 8, 8]: 4 x 6 x 6 outputs of 2 x 3 x 3 terms, a
    // multiply and an add each; then the sum of 144 elements.
    let c = compile("param K: [4, 2, 3, 3]\ninput x: [2, 8, 8]\nloss sum(conv2d(x, K))\n");
    let flops = |f: &Function| gradc::ir::stats::stats(f).flops;
    assert_eq!(flops(&c.ir), 2 * 144 * 18 + 144);
    let src = jit_sources().remove(1);
    let c = compile(&src);
    let (fw, bw) = (flops(&c.ir), flops(&c.gradient().unwrap()));
    assert!(
        bw <= 4 * fw,
        "the gradient costs {bw} flops, the forward {fw}"
    );
}

/// An untaken branch's zero cotangent stays zero through a convolution
/// whose kernel is infinite (no 0 * inf = NaN in the gradient).
#[test]
fn an_untaken_convolution_passes_exact_zeros() {
    let src = "param x: [1, 3, 3]\nparam K: [1, 1, 2, 2]\ninput a\n\
               loss if a > 0 then sum(conv2d(x, K, padding = 1)) else sum(x)\n";
    let c = compile(src);
    let g = c.gradient().unwrap();
    let x = t(&[1, 3, 3], vec![1.0; 9]);
    let k = t(&[1, 1, 2, 2], vec![1.0, f64::INFINITY, 2.0, 3.0]);
    let (_, grads) = check::gradients(&g, &[x, k], &[Tensor::scalar(-1.0)]).unwrap();
    assert_eq!(grads[0].data, vec![1.0; 9], "{g}");
    assert!(
        grads[1].data.iter().all(|&d| d == 0.0),
        "{:?}\n{g}",
        grads[1].data
    );
}

/// `gradc grad --hessian` and `gradc check` on a program with every window
/// builtin, on both backends; a bad stride is a located error, exit 1.
#[test]
fn the_cli_differentiates_a_convolution_twice() {
    let dir = temp_dir("conv_cli");
    let file = dir.join("conv.grad");
    std::fs::write(
        &file,
        "param x: [1, 4, 4] = normal(0, 1)\nparam K: [2, 1, 2, 2] = normal(0, 1)\n\
         let y = conv2d(x, K, stride = 2, padding = 1)\n\
         loss sum(maxpool2d(y * y, 2, stride = 1)) + sum(avgpool2d(y, 3) ^ 2)\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    for backend in ["jit", "interp"] {
        let (ok, out, err) = gradc(&["grad", "--hessian", "--backend", backend, path]);
        assert!(ok, "{err}");
        // 16 + 8 parameters: a 24 x 24 matrix, one row a line.
        assert_eq!(
            out.lines().filter(|l| l.starts_with('[')).count(),
            24,
            "{out}"
        );
        let (ok, out, err) = gradc(&["check", "--backend", backend, path]);
        assert!(ok, "{out}{err}");
    }
    std::fs::write(
        &file,
        "param x: [1, 4, 4]\nloss sum(avgpool2d(x, 2, stride = x))\n",
    )
    .unwrap();
    let (ok, _, err) = gradc(&["eval", path]);
    assert!(!ok);
    assert!(
        err.contains("conv.grad:2:35") && err.contains("must be a constant integer"),
        "{err}"
    );
}
