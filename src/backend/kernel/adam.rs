//! Adam's update (AdamW's with a decay) compiled for the CPU's widest
//! vectors: the one loop of [`adam`], copied under `#[target_feature]` for
//! AVX-512F and AVX2 and chosen at run time ([`Isa::host`]). Each copy does
//! the same IEEE operations in the same order (Rust never fuses a multiply
//! and an add, and division and square root are correctly rounded at any
//! width), so every path gives the same bits; only the width of the
//! vectors differs (the portable copy has SSE2's two lanes).

use super::Isa;

/// Adam's constants for one step: the moments' rates, `eps`, the decay
/// (0 for none), the learning rate and the bias corrections
/// `1 - beta1^t` and `1 - beta2^t`.
#[derive(Copy, Clone, Debug)]
pub struct AdamStep {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub lr: f64,
    pub c1: f64,
    pub c2: f64,
}

/// One Adam step of the parameter `p` with gradient `g` and moments `m`
/// and `v` (all of one length), on the host's widest path.
pub fn adam(s: &AdamStep, p: &mut [f64], g: &[f64], m: &mut [f64], v: &mut [f64]) {
    adam_on(Isa::host(), s, p, g, m, v);
}

/// [`adam`] on the code path `isa` (the portable one if this CPU lacks
/// it), so that the tests can force each one.
pub fn adam_on(isa: Isa, s: &AdamStep, p: &mut [f64], g: &[f64], m: &mut [f64], v: &mut [f64]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if isa.available() => {
            // SAFETY: the CPU has AVX-512F, checked just above.
            unsafe { avx512(s, p, g, m, v) }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 if isa.available() => {
            // SAFETY: the CPU has AVX2, checked just above.
            unsafe { avx2(s, p, g, m, v) }
        }
        _ => portable(s, p, g, m, v),
    }
}

/// The loop every path compiles. The test of the decay does not change
/// within it and is hoisted out, so it vectorises.
#[inline(always)]
fn portable(s: &AdamStep, p: &mut [f64], g: &[f64], m: &mut [f64], v: &mut [f64]) {
    let AdamStep {
        beta1,
        beta2,
        eps,
        weight_decay,
        lr,
        c1,
        c2,
    } = *s;
    // `lr * weight_decay * p` as AdamW has always computed it; with 0 it
    // is skipped (`p - 0 * p` is not `p` for an infinite `p`).
    let decay = weight_decay != 0.0;
    // PyTorch's form of the step, `p - (lr / c1) * (m / (sqrt(v) /
    // sqrt(c2) + eps))`, with the division by `sqrt(c2)` a multiplication
    // by its inverse: one square root and one division per element, the
    // two operations that bound the loop (the CPU's divider takes them one
    // at a time), where `m / c1` and `v / c2` would take three divisions.
    let step = lr / c1;
    let scale = 1.0 / c2.sqrt();
    for (((p, g), m), v) in p.iter_mut().zip(g).zip(m).zip(v) {
        if decay {
            *p -= lr * weight_decay * *p;
        }
        *m = beta1 * *m + (1.0 - beta1) * g;
        *v = beta2 * *v + (1.0 - beta2) * g * g;
        *p -= step * (*m / (v.sqrt() * scale + eps));
    }
}

/// [`portable`] compiled for AVX-512F.
///
/// # Safety
///
/// The CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn avx512(s: &AdamStep, p: &mut [f64], g: &[f64], m: &mut [f64], v: &mut [f64]) {
    portable(s, p, g, m, v);
}

/// [`portable`] compiled for AVX2.
///
/// # Safety
///
/// The CPU has AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn avx2(s: &AdamStep, p: &mut [f64], g: &[f64], m: &mut [f64], v: &mut [f64]) {
    portable(s, p, g, m, v);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    /// Every path gives the portable loop's bits, on lengths that leave
    /// remainders of every vector width, with and without a decay, on
    /// moments and gradients of many magnitudes.
    #[test]
    fn every_path_gives_the_same_bits() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        for len in [0, 1, 3, 7, 8, 15, 17, 33, 2410] {
            for weight_decay in [0.0, 0.01] {
                let s = AdamStep {
                    beta1: 0.9,
                    beta2: 0.999,
                    eps: 1e-8,
                    weight_decay,
                    lr: 1e-3,
                    c1: 1.0 - 0.9f64.powi(3),
                    c2: 1.0 - 0.999f64.powi(3),
                };
                let mut draw = |scale: f64| -> Vec<f64> {
                    (0..len)
                        .map(|_| rng.random_range(-1.0..1.0) * scale)
                        .collect()
                };
                let (p, g, m) = (draw(3.0), draw(1e-2), draw(1e-3));
                let v: Vec<f64> = draw(1e-4).iter().map(|x| x.abs()).collect();
                let run = |isa: Isa| {
                    let (mut p, mut m, mut v) = (p.clone(), m.clone(), v.clone());
                    adam_on(isa, &s, &mut p, &g, &mut m, &mut v);
                    let bits = |x: &[f64]| x.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    (bits(&p), bits(&m), bits(&v))
                };
                let want = run(Isa::Portable);
                // The step moved every parameter (a test of the test).
                for (new, old) in want.0.iter().zip(&p) {
                    assert_ne!(*new, old.to_bits());
                }
                for isa in [Isa::Avx512, Isa::Avx2] {
                    assert_eq!(
                        run(isa),
                        want,
                        "{isa:?}, {len} numbers, decay {weight_decay}"
                    );
                }
            }
        }
    }
}
