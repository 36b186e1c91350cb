//! The sliding-window operations ([`Window`]) in plain f64: convolution,
//! pooling and their adjoints, each loop nest in the order the operation's
//! doc states (the JIT's `translate::window` follows the same).

use crate::ir::window::{Geometry, Window};

/// The elements of `w` applied to arguments `args` (row-major data) of
/// geometry `geo`.
pub fn eval(w: Window, geo: &Geometry, args: &[&[f64]]) -> Vec<f64> {
    match w {
        Window::Conv2d { .. } => conv2d(geo, args[0], args[1]),
        Window::Conv2dInput { .. } => conv2d_input(geo, args[0], args[1]),
        Window::Conv2dKernel { .. } => conv2d_kernel(geo, args[0], args[1]),
        Window::MaxPool2d { .. } => maxpool_gather(geo, args[0], args[0]),
        Window::MaxPoolGather { .. } => maxpool_gather(geo, args[0], args[1]),
        Window::MaxPoolScatter { .. } => maxpool_scatter(geo, args[0], args[1]),
        Window::AvgPool2d { .. } => avgpool(geo, args[0]),
        Window::AvgPoolAdjoint { .. } => avgpool_adjoint(geo, args[0]),
    }
}

/// Calls `term(input offset, kernel tap offset i * kw + j)` for every tap
/// of output position `(oh, ow)` inside the input, `i` then `j`.
fn taps(geo: &Geometry, oh: usize, ow: usize, term: &mut dyn FnMut(usize, usize)) {
    for i in 0..geo.kh {
        let Some(h) = geo.tap(oh, i, geo.h) else {
            continue;
        };
        for j in 0..geo.kw {
            if let Some(w) = geo.tap(ow, j, geo.w) {
                term(h * geo.w + w, i * geo.kw + j);
            }
        }
    }
}

fn conv2d(geo: &Geometry, x: &[f64], k: &[f64]) -> Vec<f64> {
    let (plane, taps_n) = (geo.h * geo.w, geo.kh * geo.kw);
    let mut out = Vec::with_capacity(geo.o * geo.oh * geo.ow);
    for o in 0..geo.o {
        for oh in 0..geo.oh {
            for ow in 0..geo.ow {
                let mut acc = -0.0;
                for c in 0..geo.c {
                    let kern = &k[(o * geo.c + c) * taps_n..];
                    taps(geo, oh, ow, &mut |at, t| acc += x[c * plane + at] * kern[t]);
                }
                out.push(acc);
            }
        }
    }
    out
}

fn conv2d_input(geo: &Geometry, g: &[f64], k: &[f64]) -> Vec<f64> {
    let (plane, taps_n) = (geo.h * geo.w, geo.kh * geo.kw);
    let mut out = vec![0.0; geo.c * plane];
    for o in 0..geo.o {
        for oh in 0..geo.oh {
            for ow in 0..geo.ow {
                let gv = g[(o * geo.oh + oh) * geo.ow + ow];
                for c in 0..geo.c {
                    let kern = &k[(o * geo.c + c) * taps_n..];
                    let dst = &mut out[c * plane..];
                    taps(geo, oh, ow, &mut |at, t| dst[at] += gv * kern[t]);
                }
            }
        }
    }
    out
}

fn conv2d_kernel(geo: &Geometry, x: &[f64], g: &[f64]) -> Vec<f64> {
    let plane = geo.h * geo.w;
    let mut out = Vec::with_capacity(geo.o * geo.c * geo.kh * geo.kw);
    for o in 0..geo.o {
        for c in 0..geo.c {
            for i in 0..geo.kh {
                for j in 0..geo.kw {
                    let mut acc = -0.0;
                    for oh in 0..geo.oh {
                        let Some(h) = geo.tap(oh, i, geo.h) else {
                            continue;
                        };
                        for ow in 0..geo.ow {
                            if let Some(w) = geo.tap(ow, j, geo.w) {
                                let gv = g[(o * geo.oh + oh) * geo.ow + ow];
                                acc += gv * x[c * plane + h * geo.w + w];
                            }
                        }
                    }
                    out.push(acc);
                }
            }
        }
    }
    out
}

/// The offset within its channel of the element max pooling chooses in the
/// window of `(oh, ow)`: the first largest in row-major order, a NaN
/// counting as the largest (as [`super::argmax`]).
pub fn chosen(geo: &Geometry, x: &[f64], oh: usize, ow: usize) -> usize {
    // Pooling has no padding: the window's first element is its corner,
    // chosen when no element is above -inf.
    let mut at = oh * geo.stride * geo.w + ow * geo.stride;
    let mut best = f64::NEG_INFINITY;
    taps(geo, oh, ow, &mut |off, _| {
        let v = x[off];
        if v > best || (v.is_nan() && !best.is_nan()) {
            at = off;
            best = v;
        }
    });
    at
}

fn maxpool_gather(geo: &Geometry, x: &[f64], u: &[f64]) -> Vec<f64> {
    let plane = geo.h * geo.w;
    let mut out = Vec::with_capacity(geo.c * geo.oh * geo.ow);
    for c in 0..geo.c {
        let (xc, uc) = (&x[c * plane..(c + 1) * plane], &u[c * plane..]);
        for oh in 0..geo.oh {
            for ow in 0..geo.ow {
                out.push(uc[chosen(geo, xc, oh, ow)]);
            }
        }
    }
    out
}

fn maxpool_scatter(geo: &Geometry, x: &[f64], g: &[f64]) -> Vec<f64> {
    let plane = geo.h * geo.w;
    let mut out = vec![0.0; geo.c * plane];
    for c in 0..geo.c {
        let xc = &x[c * plane..(c + 1) * plane];
        for oh in 0..geo.oh {
            for ow in 0..geo.ow {
                let at = chosen(geo, xc, oh, ow);
                out[c * plane + at] += g[(c * geo.oh + oh) * geo.ow + ow];
            }
        }
    }
    out
}

fn avgpool(geo: &Geometry, x: &[f64]) -> Vec<f64> {
    let plane = geo.h * geo.w;
    let n = (geo.kh * geo.kw) as f64;
    let mut out = Vec::with_capacity(geo.c * geo.oh * geo.ow);
    for c in 0..geo.c {
        for oh in 0..geo.oh {
            for ow in 0..geo.ow {
                let mut acc = -0.0;
                taps(geo, oh, ow, &mut |at, _| acc += x[c * plane + at]);
                out.push(acc / n);
            }
        }
    }
    out
}

fn avgpool_adjoint(geo: &Geometry, g: &[f64]) -> Vec<f64> {
    let plane = geo.h * geo.w;
    let n = (geo.kh * geo.kw) as f64;
    let mut out = vec![0.0; geo.c * plane];
    for c in 0..geo.c {
        for oh in 0..geo.oh {
            for ow in 0..geo.ow {
                let q = g[(c * geo.oh + oh) * geo.ow + ow] / n;
                let dst = &mut out[c * plane..];
                taps(geo, oh, ow, &mut |at, _| dst[at] += q);
            }
        }
    }
    out
}
