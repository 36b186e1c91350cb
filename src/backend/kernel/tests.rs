//! The kernel against the naive loop, bit for bit, on every code path this
//! CPU has, each packed and direct: many shapes (every size 1..=40 of each dimension, and sizes
//! across the blocks), operands row-major, transposed and strided, data
//! with NaN, infinities and signed zeros, fresh and resumed sums.

use super::{
    in_parts, Element, Isa, Product, Route, DIRECT_ANY_N, DIRECT_MAX_M, DIRECT_MAX_N,
    DIRECT_MAX_N_WIDE, KC, MC, MR, NC,
};

/// The code paths to test: every one this CPU can run.
fn isas() -> Vec<Isa> {
    [Isa::Avx512, Isa::Avx2, Isa::Portable]
        .into_iter()
        .filter(|isa| isa.available())
        .collect()
}

/// The paths to test: every code path, with each route (`Route::Auto`
/// takes one of the two, and which one is tested on its own:
/// `the_small_products_with_b_in_rows_are_direct`).
fn paths() -> Vec<(Isa, Route)> {
    isas()
        .into_iter()
        .flat_map(|isa| [Route::Packed, Route::Direct].map(|r| (isa, r)))
        .collect()
}

/// A small deterministic generator: numbers in [-2, 2), with about one in
/// twelve a special value (NaN, +-inf, +-0) when `specials` is set.
struct Numbers(u64);

impl Numbers {
    fn next(&mut self, specials: bool) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let r = self.0 >> 11;
        if specials && r.is_multiple_of(12) {
            return [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0][(r / 12 % 5) as usize];
        }
        (r as f64 / (1u64 << 53) as f64) * 4.0 - 2.0
    }
}

/// Conversion of the test's f64 data to the element type.
trait Num: Element {
    fn of(x: f64) -> Self;
    fn bits(self) -> u64;
    fn is_nan(self) -> bool;
}

impl Num for f64 {
    fn of(x: f64) -> f64 {
        x
    }
    fn bits(self) -> u64 {
        self.to_bits()
    }
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
}

impl Num for f32 {
    fn of(x: f64) -> f32 {
        x as f32
    }
    fn bits(self) -> u64 {
        u64::from(self.to_bits())
    }
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
}

/// How an operand is laid out: row-major, transposed (column-major), or
/// row-major with rows further apart than their length.
#[derive(Copy, Clone, Debug)]
enum Lay {
    Rows,
    Columns,
    Padded,
}

impl Lay {
    /// The strides of an `r` x `c` matrix, and the length of its buffer.
    fn strides(self, r: usize, c: usize) -> ((usize, usize), usize) {
        match self {
            Lay::Rows => ((c, 1), r * c),
            Lay::Columns => ((1, r), r * c),
            Lay::Padded => ((c + 3, 1), r * (c + 3)),
        }
    }
}

/// One product checked on one path: the kernel against the naive loop, and
/// the padding between `C`'s rows left as it was.
fn check<T: Num>(
    path: (Isa, Route),
    shape: (usize, usize, usize),
    lays: (Lay, Lay),
    resume: bool,
    seed: u64,
) {
    check_in_parts::<T>(1, path, shape, lays, resume, seed);
}

/// [`check`] of the product computed in `parts` parts of its rows.
fn check_in_parts<T: Num>(
    parts: usize,
    (isa, route): (Isa, Route),
    (m, n, k): (usize, usize, usize),
    (la, lb): (Lay, Lay),
    resume: bool,
    seed: u64,
) {
    let mut g = Numbers(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let ((rsa, csa), alen) = la.strides(m, k);
    let ((rsb, csb), blen) = lb.strides(k, n);
    let a: Vec<T> = (0..alen).map(|_| T::of(g.next(true))).collect();
    let b: Vec<T> = (0..blen).map(|_| T::of(g.next(true))).collect();
    let rsc = n + 2;
    let c0: Vec<T> = (0..m * rsc).map(|_| T::of(g.next(true))).collect();
    let mut want = c0.clone();
    for i in 0..m {
        for j in 0..n {
            let mut s = if resume { c0[i * rsc + j] } else { T::NEG_ZERO };
            for p in 0..k {
                s = s + a[i * rsa + p * csa] * b[p * rsb + j * csb];
            }
            want[i * rsc + j] = s;
        }
    }
    // Half the products also add up the rows of `A`, in order from -0.
    let summing = (seed >> 1) & 1 == 0;
    let want_sums: Vec<T> = (0..m)
        .map(|i| (0..k).fold(T::NEG_ZERO, |s, p| s + a[i * rsa + p * csa]))
        .collect();
    let mut sums = vec![T::of(f64::NAN); m];
    let mut got = c0.clone();
    // SAFETY: the buffers hold the operands with these strides; the path
    // is available.
    unsafe {
        let p = Product {
            shape: (m, n, k),
            a: a.as_ptr(),
            sa: (rsa, csa),
            b: b.as_ptr(),
            sb: (rsb, csb),
            c: got.as_mut_ptr(),
            rsc,
            resume,
            sums: if summing {
                sums.as_mut_ptr()
            } else {
                std::ptr::null_mut()
            },
        };
        in_parts(parts, (isa, route), p);
    }
    if summing {
        for (i, (w, g)) in want_sums.iter().zip(&sums).enumerate() {
            let same = w.bits() == g.bits() || (w.is_nan() && g.is_nan());
            assert!(
                same,
                "{isa:?} {route:?} {m}x{n}x{k} in {parts} parts {la:?} {lb:?}: the sum of row {i} is {g:?}, the loop's {w:?}"
            );
        }
    } else {
        assert!(sums.iter().all(|s| s.is_nan()), "sums written unasked");
    }
    for (e, (w, g)) in want.iter().zip(&got).enumerate() {
        let same = w.bits() == g.bits() || (w.is_nan() && g.is_nan());
        assert!(
            same,
            "{isa:?} {route:?} {m}x{n}x{k} in {parts} parts {la:?} {lb:?} resume={resume}: element ({}, {}) is {g:?}, the loop's {w:?}",
            e / rsc,
            e % rsc
        );
    }
}

/// Every path, the layouts of each operand, fresh and resumed (those of
/// `B` in rows are the ones the direct route takes).
fn check_all<T: Num>(shape: (usize, usize, usize), seed: u64) {
    for path in paths() {
        for (s, lays) in [
            (Lay::Rows, Lay::Rows),
            (Lay::Columns, Lay::Columns),
            (Lay::Padded, Lay::Columns),
            (Lay::Rows, Lay::Padded),
            (Lay::Columns, Lay::Rows),
            (Lay::Padded, Lay::Padded),
        ]
        .into_iter()
        .enumerate()
        {
            check::<T>(path, shape, lays, s % 2 == 1, seed + s as u64);
        }
    }
}

#[test]
fn every_small_m_and_n_f64() {
    every_small_m_and_n::<f64>();
}

#[test]
fn every_small_m_and_n_f32() {
    every_small_m_and_n::<f32>();
}

/// Every `m` and `n` from 1 to 40 (each element type a test of its own, so
/// that the two run side by side).
fn every_small_m_and_n<T: Num>() {
    for m in 1..=40 {
        for n in 1..=40 {
            let k = [1, 3, 17][(m + n) % 3];
            check_all::<T>((m, n, k), (m * 100 + n) as u64);
        }
    }
}

#[test]
fn every_small_k() {
    for k in 1..=40 {
        for (m, n) in [(1, 1), (6, 16), (7, 33), (13, 8), (40, 40)] {
            check_all::<f64>((m, n, k), k as u64);
            check_all::<f32>((m, n, k), k as u64);
        }
    }
}

#[test]
fn shapes_across_the_blocks() {
    // Every dimension over its block (A's rows over MC, k over KC, B's
    // columns over NC), two at a time.
    for (i, shape) in [
        (MC + 7, 19, KC + 3),
        (5, NC + 5, KC + 3),
        (MC + 1, NC + 1, 3),
    ]
    .into_iter()
    .enumerate()
    {
        for path in paths() {
            check::<f64>(path, shape, (Lay::Rows, Lay::Columns), i == 1, i as u64);
            check::<f32>(path, shape, (Lay::Columns, Lay::Rows), i != 1, i as u64);
            check::<f64>(path, shape, (Lay::Padded, Lay::Padded), i != 1, i as u64);
        }
    }
}

#[test]
fn a_product_in_parts_of_its_rows_gives_the_same_bits() {
    // Parts of whole tiles and a last one of a few rows; more parts than
    // the rows have tiles; a product of one tile of rows, which is not
    // split. Each on both routes (which `Route::Auto` would take for the
    // whole product), fresh and resumed.
    for (i, (parts, shape)) in [
        (2, (4 * MR + 1, 19, KC + 3)),
        (3, (MC + 7, NC + 5, 9)),
        (8, (2 * MR + 1, 21, 5)),
        (2, (MR, 40, 7)),
    ]
    .into_iter()
    .enumerate()
    {
        for path in paths() {
            let seed = i as u64;
            check_in_parts::<f64>(parts, path, shape, (Lay::Rows, Lay::Rows), i % 2 == 0, seed);
            check_in_parts::<f32>(
                parts,
                path,
                shape,
                (Lay::Padded, Lay::Columns),
                i % 2 == 1,
                seed,
            );
        }
    }
}

#[test]
fn a_product_is_split_only_when_large_and_into_large_parts() {
    // `parts` reads the process's thread count, which other tests leave at
    // 1 (`gradc gradbench` sets it): set it here, then put it back.
    let _setting = super::SETTING_THREADS
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    super::set_threads(64);
    assert_eq!(super::parts((1000, 1000, 4)), 1);
    assert_eq!(super::parts((1000, 1000, 5)), 4);
    assert_eq!(super::parts((1000, 1000, 1000)), 64);
    super::set_threads(2);
    assert_eq!(super::parts((1000, 1000, 1000)), 2);
    super::set_threads(1);
    assert_eq!(super::parts((1000, 1000, 1000)), 1);
}

#[test]
fn the_parts_flush_subnormals_when_the_caller_does() {
    use crate::backend::subnormals::FlushSubnormals;
    // A of subnormals times B of ones: zeros when flushed (an operand
    // read as zero), the subnormals' sums otherwise.
    let (m, n, k) = (4 * MR + 1, 8, 5);
    let a = vec![1e-310f64; m * k];
    let b = vec![1.0f64; k * n];
    let product = |parts: usize| {
        let mut c = vec![f64::NAN; m * n];
        // SAFETY: the buffers hold the row-major operands.
        unsafe {
            let p = Product {
                shape: (m, n, k),
                a: a.as_ptr(),
                sa: (k, 1),
                b: b.as_ptr(),
                sb: (n, 1),
                c: c.as_mut_ptr(),
                rsc: n,
                resume: false,
                sums: std::ptr::null_mut(),
            };
            in_parts(parts, (Isa::host(), Route::Auto), p);
        }
        c
    };
    assert!(product(3).iter().all(|&x| x == 5e-310));
    if let Some(flush) = FlushSubnormals::on() {
        for parts in [1, 3] {
            let c = product(parts);
            assert!(c.iter().all(|x| x.to_bits() == 0), "{parts} parts: {c:?}");
        }
        drop(flush);
    }
}

#[test]
fn the_sums_of_a_rows_are_free_in_a_lane_computed_anyway() {
    use super::summing_is_free;
    let free = |isa, route, n| summing_is_free::<f64>((isa, route), (2000, n, 1000), 1);
    // AVX-512 tiles of 16, 24 and 32 lanes, direct.
    for (n, want) in [(20, true), (16, false), (32, false), (40, true), (2, true)] {
        assert_eq!(free(Isa::Avx512, Route::Direct, n), want, "{n}");
    }
    // AVX2's of 8; and packed tiles of 16.
    assert!(free(Isa::Avx2, Route::Direct, 20));
    assert!(!free(Isa::Avx2, Route::Direct, 16));
    assert!(free(Isa::Avx512, Route::Packed, 100));
    assert!(!free(Isa::Avx512, Route::Packed, 96));
}

#[test]
fn an_empty_sum_is_negative_zero_or_unchanged() {
    for isa in paths() {
        check::<f64>(isa, (3, 5, 0), (Lay::Rows, Lay::Rows), false, 1);
        check::<f64>(isa, (3, 5, 0), (Lay::Rows, Lay::Rows), true, 2);
        check::<f32>(isa, (0, 5, 4), (Lay::Rows, Lay::Rows), false, 3);
        // No columns: the rows' sums all the same.
        check::<f64>(isa, (3, 0, 4), (Lay::Rows, Lay::Rows), false, 4);
    }
}

#[test]
fn the_host_path_is_available() {
    assert!(Isa::host().available());
    assert!(isas().contains(&Isa::Portable));
}

#[test]
fn the_small_products_with_b_in_rows_are_direct() {
    // The backward products of the digits MLP's shards take it; the
    // forward ones (B transposed) and the large ones do not. Nor do the
    // products of a narrow B of any height that fits the L2 cache (`gmm`'s
    // gradient, 2000 x 20 x 1000), and those no wider than a tile, however
    // long (`kmeans`' direction, 1000 x 8 x 10,000); nor those of at most
    // two rows of tiles, however wide (`kmeans`' cost at k = 10, 10 x
    // 100,000 x 16).
    let narrow = [
        (MC + 1, 8, 8),
        (8, 8, KC + 1),
        (2000, 20, 1000),
        (5, DIRECT_MAX_N, 2048),
        (1000, DIRECT_ANY_N, 100_000),
        (DIRECT_MAX_M, 100_000, 16),
        (8, 1024, KC),
    ];
    for shape in [(16, 32, 10), (10, 32, 16), (32, 64, 16), (MC, 64, KC)]
        .into_iter()
        .chain(narrow)
    {
        for wide in [false, true] {
            assert!(Route::Auto.direct(shape, 1, wide), "{shape:?}");
            assert!(!Route::Auto.direct(shape, 64, wide), "{shape:?}");
            assert!(!Route::Packed.direct(shape, 1, wide), "{shape:?}");
        }
    }
    for shape in [
        (MC + 1, 64, 8),
        (8, DIRECT_MAX_N + 1, KC + 1),
        (8, DIRECT_ANY_N + 1, 2 * 2049),
        (DIRECT_MAX_M + 1, 1024, 128),
        (8, 1024, KC + 1),
        (256, 784, 128),
        (2000, DIRECT_MAX_N, 2049),
    ] {
        assert!(!Route::Auto.direct(shape, 1, false), "{shape:?}");
        assert!(Route::Direct.direct(shape, 1, false), "{shape:?}");
    }
    // With tiles of twice the width, up to 64 columns that fit the L2
    // cache (`gmm`'s gradient at d = 64).
    for shape in [(320, DIRECT_MAX_N_WIDE, 1000), (6400, 33, 1000)] {
        assert!(!Route::Auto.direct(shape, 1, false), "{shape:?}");
        assert!(Route::Auto.direct(shape, 1, true), "{shape:?}");
    }
    for shape in [
        (8, DIRECT_MAX_N_WIDE + 1, 1000),
        (8, DIRECT_MAX_N_WIDE, 1025),
        (DIRECT_MAX_M + 1, 1024, 128),
        (256, 784, 128),
    ] {
        assert!(!Route::Auto.direct(shape, 1, true), "{shape:?}");
    }
}
