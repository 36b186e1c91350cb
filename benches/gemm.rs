//! The product kernel alone (`backend::kernel::gemm`, f64, the host's
//! path, the route the generated code takes), at the shapes of `gmm`'s
//! products at d = 64, k = 5, n = 1000: the forward `Qs @ x.T` and the
//! gradient's `dQx @ x`; the gradient's at d = 20 and 32, k = 100, also
//! with the sums of `A`'s rows (`summing`: at d = 20 in a lane the tiles
//! compute anyway, at d = 32 added apart); `kmeans`' direction's product
//! at k = 1000, n = 10,000, d = 8, and its cost's at k = 10, n = 100,000,
//! d = 16 (ten rows: direct, and packed to compare). The gradient's `A` is
//! also timed with one element in 50 subnormal, as `gmm`'s `dQx` has
//! 2-3.5% of them at d = 64, with IEEE arithmetic and with subnormals
//! flushed to zero (`backend::subnormals`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use gradc::backend::kernel::{gemm, Isa, Route};
use gradc::backend::subnormals::FlushSubnormals;

/// A product: its name, `(m, n, k)`, and the strides of `A` and `B`; `C`
/// is `m x n`, row-major.
type Product = (
    &'static str,
    (usize, usize, usize),
    (usize, usize),
    (usize, usize),
);

const FORWARD: Product = ("gmm_forward", (320, 1000, 64), (64, 1), (1, 64));
const GRADIENT: Product = ("gmm_gradient", (320, 64, 1000), (1000, 1), (64, 1));
/// The gradient's at d = 20, k = 100: `B` 20 columns wide.
const NARROW: Product = ("gmm_gradient_d20", (2000, 20, 1000), (1000, 1), (20, 1));
/// The gradient's at d = 32, k = 100: `B` 32 columns wide.
const NARROW32: Product = ("gmm_gradient_d32", (3200, 32, 1000), (1000, 1), (32, 1));
/// `kmeans`' cost at k = 10, n = 100,000, d = 16: `C @ points.T`, two
/// rows of tiles.
const KMEANS_COST: Product = ("kmeans_cost", (10, 100_000, 16), (16, 1), (100_000, 1));
/// `kmeans`' direction at k = 1000, n = 10,000, d = 8: `W @ points`.
const KMEANS: Product = ("kmeans_direction", (1000, 8, 10000), (10000, 1), (8, 1));

/// Times `product` with `A` from `a_of(i)`, under `flush` when it is on.
fn time(c: &mut Criterion, label: &str, product: Product, a_of: fn(usize) -> f64, flush: bool) {
    time_summing(c, label, product, a_of, flush, false);
}

/// [`time`], with the sums of `A`'s rows too if `summing`.
fn time_summing(
    c: &mut Criterion,
    label: &str,
    product: Product,
    a_of: fn(usize) -> f64,
    flush: bool,
    summing: bool,
) {
    time_on(c, label, product, (a_of, flush, summing), Route::Auto);
}

/// [`time_summing`] on `route`.
fn time_on(
    c: &mut Criterion,
    label: &str,
    product: Product,
    (a_of, flush, summing): (fn(usize) -> f64, bool, bool),
    route: Route,
) {
    let (name, (m, n, k), sa, sb) = product;
    let a: Vec<f64> = (0..m * k).map(a_of).collect();
    let b: Vec<f64> = (0..k * n).map(|i| (i % 5) as f64 * 0.5 - 1.0).collect();
    let mut out = vec![0.0; m * n];
    let mut sums = vec![0.0; m];
    let sums = if summing {
        sums.as_mut_ptr()
    } else {
        std::ptr::null_mut()
    };
    c.bench_function(&format!("gemm/{name}/{label}"), |bench| {
        let _flush = flush.then(FlushSubnormals::on);
        bench.iter(|| {
            // SAFETY: `a`, `b` and `out` hold the shapes' elements at these
            // strides, `sums` is null or holds `m` numbers, and neither
            // overlaps the others.
            unsafe {
                gemm(
                    (Isa::host(), route),
                    (m, n, k),
                    black_box(a.as_ptr()),
                    sa,
                    b.as_ptr(),
                    sb,
                    (out.as_mut_ptr(), n),
                    false,
                    sums,
                )
            }
        })
    });
}

fn normal(i: usize) -> f64 {
    (i % 7) as f64 * 0.25 - 0.5
}

fn two_percent_subnormal(i: usize) -> f64 {
    if i.is_multiple_of(50) {
        1e-310
    } else {
        normal(i)
    }
}

fn products(c: &mut Criterion) {
    time(c, "normal", FORWARD, normal, false);
    time(c, "normal", GRADIENT, normal, false);
    time(c, "normal", NARROW, normal, false);
    time_summing(c, "summing", NARROW, normal, false, true);
    time(c, "normal", NARROW32, normal, false);
    time_summing(c, "summing", NARROW32, normal, false, true);
    time(c, "normal", KMEANS, normal, false);
    time(c, "normal", KMEANS_COST, normal, false);
    time_on(
        c,
        "packed",
        KMEANS_COST,
        (normal, false, false),
        Route::Packed,
    );
    time(c, "2%_subnormal", GRADIENT, two_percent_subnormal, false);
    if FlushSubnormals::SUPPORTED {
        time(
            c,
            "2%_subnormal_flushed",
            GRADIENT,
            two_percent_subnormal,
            true,
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .without_plots()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = products
}
criterion_main!(benches);
