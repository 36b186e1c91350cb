//! The matrix-product kernel the generated code calls for its large
//! products: `C = A B` (or `C += A B`) of strided operands, f64 or f32.
//!
//! Its arithmetic is the interpreter's: element `(i, j)` is
//! `(((c + a[i,0] b[0,j]) + a[i,1] b[1,j]) + ...)` in `k` order, `c` being
//! -0 (or the element's value, to resume a sum), every product rounded and
//! then added, with no fused multiply-add. So results are the same bits as
//! the naive loop's and the interpreter's (except for the payload of a
//! NaN). The well-kept crates `matrixmultiply` and `gemm` cannot give that
//! order: both sum each block of `k` into a fresh partial from zero and add
//! it to `C` (times `alpha`) afterwards, and use fused multiply-add where
//! the CPU has it.
//!
//! The blocking is the usual one (BLIS's): `B` is packed a block of
//! [`KC`] x [`NC`] at a time, `A` a block of [`MC`] x [`KC`], into panels
//! (`pack`, which reads through the strides, so a transposed operand is
//! packed as cheaply as another); a micro-kernel (`micro`) computes an
//! [`MR`] x `NR` tile of `C` in registers. The blocks of `k` run in order
//! and each resumes the tile the previous one stored, which continues the
//! same chain of additions. The tiles at an edge of a block (fewer rows or
//! columns) are computed in place by a tile kernel (`tile`) that reads the
//! same panels, with masked loads and stores. The packing space is a
//! buffer allocated once per thread, on the first call, so that calls
//! allocate nothing and several threads may call at once.
//!
//! A small product does not pack ([`Route::direct`]: `B`'s rows contiguous,
//! `k <= KC`, `m <= MC`, `B` small): the tile kernels then read `A` in
//! place through its strides and `B` from its rows, every tile over the
//! whole of `k`, which is the same chain of additions again.
//!
//! A large product may be computed in parts of its rows on several threads
//! (`split`), each part as the whole product would compute it. The same
//! threads take parts of a large loop of the generated code ([`runs`]).
//!
//! The code path (AVX-512F, AVX2 or portable) is chosen once, at run time
//! ([`Isa::host`]); [`gemm`] takes it as an argument, and the [`Route`],
//! so that the tests can force each one. The optimizer's Adam update is multiversioned the
//! same way ([`adam`]).

pub mod adam;
pub mod exp;
mod micro;
mod pack;
pub(crate) mod prefetch;
pub(crate) mod runs;
mod split;
mod sums;
pub use sums::summing_is_free;
#[cfg(test)]
mod tests;
mod tile;
pub mod transpose;

use std::cell::RefCell;
use std::fmt::Debug;
use std::ops::{Add, Mul};
use std::sync::OnceLock;

use self::micro::{Micro, PORTABLE_NR};
pub use self::split::set_threads;
pub(crate) use self::split::threads;
#[cfg(test)]
pub(crate) use self::split::SETTING_THREADS;
use self::split::{in_parts, parts, Product};
use self::tile::Tile;

/// The rows of a micro-kernel's tile (every code path).
pub(crate) const MR: usize = 6;

/// The depth of a block of `k`, the rows of a block of `A` and the
/// columns of a block of `B`: a block of `A` stays in the L2 cache, one of
/// `B` in the L3. `NC` is a multiple of every tile's width, `MC` of [`MR`].
const KC: usize = 256;
const MC: usize = 96;
const NC: usize = 1024;

/// The packing space, in bytes: a block of `A` and one of `B`, of f64.
const PACK_BYTES: usize = (MC * KC + KC * NC) * 8;

/// A code path of the kernel.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Isa {
    Avx512,
    Avx2,
    Portable,
}

impl Isa {
    /// The best path of this CPU, detected once.
    pub fn host() -> Isa {
        static HOST: OnceLock<Isa> = OnceLock::new();
        *HOST.get_or_init(|| {
            [Isa::Avx512, Isa::Avx2]
                .into_iter()
                .find(|isa| isa.available())
                .unwrap_or(Isa::Portable)
        })
    }

    /// Whether this CPU can run the path.
    pub fn available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx512 | Isa::Avx2 => false,
            Isa::Portable => true,
        }
    }
}

/// How a product is computed: packed (the blocking of the module's doc),
/// direct (no packing: `A` read in place, `B` from its rows), or the
/// choice of [`Route::direct`]. The generated code takes [`Route::Auto`];
/// the tests force the others.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Auto,
    Packed,
    Direct,
}

/// The widest `B` of any height a product is computed without packing
/// for, if `B` fits the L2 cache (up to 4 [`DIRECT_MAX_B`]): `gmm`'s
/// gradient `dQx @ x`, [K D, N] by [N, D], reads each element of `A` for
/// two tiles of `C` at most, so that copying it costs as much as the
/// arithmetic (2000 x 20 x 1000: 4.6 ms packed, 2.7 ms direct).
pub(crate) const DIRECT_MAX_N: usize = 32;

/// [`DIRECT_MAX_N`] on a path with tiles of twice the width
/// ([`Element::wide_tiles`]): `gmm`'s gradient at d = 64, 320 x 64 x 1000,
/// took 1.24 ms packed and 0.99 direct, two passes of wide tiles over `A`.
pub(crate) const DIRECT_MAX_N_WIDE: usize = 64;

/// The widest `B` a product is computed without packing for, however
/// long: no wider than a micro-kernel's tile, so that packing `A` buys it
/// nothing. `kmeans`' direction `W @ points`, [K, N] by [N, D] with D = 8
/// or 16: 1000 x 8 x 10000 took 23 ms packed, 7.2 ms direct; with
/// 100,000 points, 320 ms against 100.
pub(crate) const DIRECT_ANY_N: usize = 16;

/// The most rows of `A` a product is computed without packing for,
/// however wide `B` (of at most [`KC`] rows): two rows of tiles, so that
/// each element of `B` is read twice where packing would copy it once and
/// read the copy twice. `kmeans`' cost at k = 10, `C @ points.T`, 10 x
/// 100,000 x 16: 2.75 ms packed, 1.57 ms direct; 8 x 1024 x 128: 194 and
/// 75 µs; 12 x 5000 x 64: 496 and 354 µs.
pub(crate) const DIRECT_MAX_M: usize = 2 * MR;

/// The most elements of `B` a product computed without packing reads:
/// 16 Ki, 128 KiB of f64, which stay in the L2 cache (and for the widths of
/// the small models, mostly in the L1) while every row tile reads them.
pub(crate) const DIRECT_MAX_B: usize = 16 * 1024;

impl Route {
    /// Whether the product of these shape and `B`'s column stride is
    /// computed without packing, on a path with tiles of twice the width if
    /// `wide`.
    ///
    /// Only if `B`'s rows are contiguous (`csb == 1`): a tile reads a row
    /// of `B` as vectors. [`Route::Auto`] then takes the direct route when
    /// the product is one block (`k <= KC`, `m <= MC`) and `B` is small
    /// (at most [`DIRECT_MAX_B`] elements), or `A` is short (`k <= KC`,
    /// at most [`DIRECT_MAX_M`] rows), or when `B` is narrow: at most
    /// [`DIRECT_ANY_N`] columns, or at most [`DIRECT_MAX_N`]
    /// ([`DIRECT_MAX_N_WIDE`] if `wide`) fitting the L2 cache (beyond it,
    /// 1000 x 32 x 20,000 takes 66 ms packed and 93 direct). There packing
    /// gains nothing:
    /// it copies every element of `B` to read it `m / MR` times (at most
    /// 16), every element of `A` to read it `n / NR` times, all from
    /// caches that the copy does not make warmer, and its edge panels are
    /// padded to the whole tile; past these bounds the blocks' reuse and
    /// the panels' contiguity (no cache conflicts between rows of `B` far
    /// apart) are worth the copy. [`Route::Direct`] takes it whatever the
    /// shape (the tests), [`Route::Packed`] never.
    pub fn direct(self, (m, n, k): (usize, usize, usize), csb: usize, wide: bool) -> bool {
        let max_n = if wide {
            DIRECT_MAX_N_WIDE
        } else {
            DIRECT_MAX_N
        };
        csb == 1
            && match self {
                Route::Auto => {
                    (k <= KC && m <= MC && k * n <= DIRECT_MAX_B)
                        || (k <= KC && m <= DIRECT_MAX_M)
                        || n <= DIRECT_ANY_N
                        || (n <= max_n && k * n <= 4 * DIRECT_MAX_B)
                }
                Route::Packed => false,
                Route::Direct => true,
            }
    }
}

/// The tile kernels of three and four vectors a row, on a path that has
/// them ([`Element::wide_tiles`]).
pub struct WideTiles<T> {
    three: Tile<T>,
    four: Tile<T>,
}

impl<T> Clone for WideTiles<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for WideTiles<T> {}

/// A number the kernel multiplies: f64 or f32 (any bit pattern is a
/// valid one, which the packing space relies on).
pub trait Element:
    Copy + Debug + PartialEq + Add<Output = Self> + Mul<Output = Self> + 'static + private::Sealed
{
    const ZERO: Self;
    const NEG_ZERO: Self;
    const ONE: Self;

    /// The micro-kernel of a path for this type, and its tile's width.
    fn micro(isa: Isa) -> (Micro<Self>, usize);

    /// The tile kernel of a path for this type (of the micro-kernel's
    /// width).
    fn tile(isa: Isa) -> Tile<Self>;

    /// The tile kernels of one and a half and twice that width, on a path
    /// that has them.
    fn wide_tiles(isa: Isa) -> Option<WideTiles<Self>>;
}

mod private {
    pub trait Sealed {}
    impl Sealed for f64 {}
    impl Sealed for f32 {}
}

/// The `Element` impl of a type: its kernels per code path (of the same
/// name in `micro` and `tile`), and the micro-kernel's width on each (two
/// vectors).
macro_rules! element {
    ($t:ty, $avx512:ident, $three512:ident, $wide512:ident, $avx2:ident, $nr512:expr, $nr2:expr) => {
        impl Element for $t {
            const ZERO: $t = 0.0;
            const NEG_ZERO: $t = -0.0;
            const ONE: $t = 1.0;

            fn micro(isa: Isa) -> (Micro<$t>, usize) {
                match isa {
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => (micro::$avx512, $nr512),
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => (micro::$avx2, $nr2),
                    _ => (micro::portable::<$t>, PORTABLE_NR),
                }
            }

            fn tile(isa: Isa) -> Tile<$t> {
                match isa {
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => tile::$avx512,
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => tile::$avx2,
                    _ => tile::portable::<$t>,
                }
            }

            fn wide_tiles(isa: Isa) -> Option<WideTiles<$t>> {
                match isa {
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => Some(WideTiles {
                        three: tile::$three512,
                        four: tile::$wide512,
                    }),
                    _ => None,
                }
            }
        }
    };
}

element!(
    f64,
    avx512_f64,
    avx512_f64_three,
    avx512_f64_wide,
    avx2_f64,
    16,
    8
);
element!(
    f32,
    avx512_f32,
    avx512_f32_three,
    avx512_f32_wide,
    avx2_f32,
    32,
    16
);

/// A 64-byte line of the packing space (its alignment is the vectors').
#[derive(Copy, Clone)]
#[repr(C, align(64))]
struct Line([u8; 64]);

thread_local! {
    static PACK: RefCell<Vec<Line>> = const { RefCell::new(Vec::new()) };
}

/// This thread's packing space, allocated now rather than on its first
/// product: the threads of a pool reserve it when they start, so that no
/// step of a run allocates, whichever thread takes a shard first.
pub fn reserve() {
    with_pack::<f64, ()>(|_, _| ());
}

/// Runs `f` on this thread's packing space as numbers of type `T`: a block
/// of `A` ([`MC`] x [`KC`]) and one of `B` ([`KC`] x [`NC`]).
fn with_pack<T: Element, R>(f: impl FnOnce(&mut [T], &mut [T]) -> R) -> R {
    PACK.with_borrow_mut(|lines| {
        if lines.is_empty() {
            *lines = vec![Line([0; 64]); PACK_BYTES / 64];
        }
        let len = PACK_BYTES / size_of::<T>();
        // SAFETY: the lines are `len` numbers of `T` (f64 or f32: aligned
        // by the lines' 64 bytes, and any bytes are a valid number),
        // borrowed mutably for as long as the slice lives.
        let all = unsafe { std::slice::from_raw_parts_mut(lines.as_mut_ptr().cast::<T>(), len) };
        let (a, b) = all.split_at_mut(MC * KC);
        f(a, b)
    })
}

/// `C = A B` (or `C += A B` if `resume`), `A` being `m` x `k`, `B` `k` x `n`
/// and `C` `m` x `n`, on the code path `isa`, packed or not as `route`
/// decides, every element summed in `k` order (see the module's doc). Element `(i, p)` of `A` is at
/// `a + i * rsa + p * csa`, `(p, j)` of `B` at `b + p * rsb + j * csb`,
/// `(i, j)` of `C` at `c + i * rsc + j`.
///
/// If `sums` is not null, the sum along each row of `A` too, `A(i, 0) +
/// ... + A(i, k - 1)` added in order from -0 (the bits of a `sum` along
/// the last axis), into `sums[i]` (see `kernel/sums.rs`).
///
/// # Safety
///
/// Every element of `A` and `B` is readable, every element of `C` readable
/// and writable, `C` overlaps neither; `sums` is null or holds `m`
/// writable numbers, overlapping none of them; `isa` is
/// [`Isa::available`].
#[expect(clippy::too_many_arguments, reason = "the operands of a product")]
pub unsafe fn gemm<T: Element>(
    (isa, route): (Isa, Route),
    (m, n, k): (usize, usize, usize),
    a: *const T,
    (rsa, csa): (usize, usize),
    b: *const T,
    (rsb, csb): (usize, usize),
    (c, rsc): (*mut T, usize),
    resume: bool,
    sums: *mut T,
) {
    let p = Product {
        shape: (m, n, k),
        a,
        sa: (rsa, csa),
        b,
        sb: (rsb, csb),
        c,
        rsc,
        resume,
        sums,
    };
    // SAFETY: the caller's contract.
    unsafe { in_parts(parts((m, n, k)), (isa, route), p) };
}

/// Whether `route` computes the product of this shape and `B`'s column
/// stride without packing on the path `isa` ([`Route::direct`], with the
/// path's wide tiles if it has them).
fn direct_on<T: Element>(isa: Isa, route: Route, shape: (usize, usize, usize), csb: usize) -> bool {
    route.direct(shape, csb, T::wide_tiles(isa).is_some())
}

/// [`gemm`] on the calling thread, with `k > 0` and `C` not empty.
///
/// # Safety
///
/// As [`gemm`].
unsafe fn serial<T: Element>((isa, route): (Isa, Route), p: Product<T>) {
    let Product {
        shape: (m, n, k),
        a,
        sa: (rsa, csa),
        b,
        sb: (rsb, csb),
        c,
        rsc,
        resume,
        sums,
    } = p;
    debug_assert!(sums.is_null(), "the sums are added before");
    let (micro, nr) = T::micro(isa);
    let tile = T::tile(isa);
    if direct_on::<T>(isa, route, (m, n, k), csb) {
        let tiles = (tile, T::wide_tiles(isa));
        // SAFETY: the caller's contract, `B`'s rows being contiguous.
        unsafe { direct(tiles, nr, (m, n, k), a, (rsa, csa), b, rsb, c, rsc, resume) };
        return;
    }
    with_pack::<T, ()>(|pa, pb| {
        for jc in (0..n).step_by(NC) {
            let nc = NC.min(n - jc);
            for pc in (0..k).step_by(KC) {
                let kc = KC.min(k - pc);
                // SAFETY: the block is inside `B`, the space holds it.
                unsafe { pack::pack_b(pb, b.add(pc * rsb + jc * csb), (rsb, csb), kc, nc, nr) };
                for ic in (0..m).step_by(MC) {
                    let mc = MC.min(m - ic);
                    // SAFETY: the block is inside `A`, the space holds it.
                    unsafe { pack::pack_a(pa, a.add(ic * rsa + pc * csa), (rsa, csa), mc, kc) };
                    let block = Block {
                        micro,
                        tile,
                        nr,
                        kc,
                        load: resume || pc > 0,
                    };
                    // SAFETY: the tiles of this block are inside `C`.
                    unsafe { block.run(pa, pb, c.add(ic * rsc + jc), rsc, (mc, nc)) };
                }
            }
        }
    });
}

/// The product without packing: every tile of `C` (an [`MR`] x `nr` one,
/// or a smaller one at an edge) by the tile kernel, over the whole of `k`,
/// reading `A` through its strides and `B` (`(p, j)` at `b + p * rsb + j`)
/// from its rows; in the packed route's order, so that a column of tiles
/// of `B` stays in the cache while the tiles of `A` go by. Where the path
/// has tile kernels of three and four vectors (`nr` is two), more than
/// `nr` columns left are their tiles, the narrower one if it holds them:
/// `A` is read once for them, not twice (`gmm`'s gradient `dQx @ x`, 2000
/// x 20 x 1000, reads 16 MB of `A`).
///
/// # Safety
///
/// As [`gemm`], `B`'s columns being contiguous; the tile kernels' features
/// are present, `tile` is `nr` wide (two vectors) and `wide`'s tiles
/// three and four vectors.
#[expect(clippy::too_many_arguments, reason = "the operands of a product")]
unsafe fn direct<T: Element>(
    (tile, wide): (Tile<T>, Option<WideTiles<T>>),
    nr: usize,
    (m, n, k): (usize, usize, usize),
    a: *const T,
    (rsa, csa): (usize, usize),
    b: *const T,
    rsb: usize,
    c: *mut T,
    rsc: usize,
    resume: bool,
) {
    let mut jr = 0;
    while jr < n {
        let width = tile_width(n - jr, nr, wide.is_some());
        let tile = match wide {
            Some(wide) if width == 2 * nr => wide.four,
            Some(wide) if width > nr => wide.three,
            _ => tile,
        };
        let cols = width.min(n - jr);
        for ir in (0..m).step_by(MR) {
            let rows = MR.min(m - ir);
            // SAFETY: the tile's rows and columns are in `A`, `B` and `C`.
            unsafe {
                tile(
                    rows,
                    cols,
                    k,
                    a.add(ir * rsa),
                    (rsa, csa),
                    b.add(jr),
                    rsb,
                    c.add(ir * rsc + jr),
                    rsc,
                    resume,
                );
            }
        }
        jr += cols;
    }
}

/// The width of the tile [`direct`] computes `left` columns with: two
/// vectors (`nr`), or where it has them ([`Element::wide_tiles`]) three or
/// four, the narrowest that holds them.
pub(super) fn tile_width(left: usize, nr: usize, wide: bool) -> usize {
    match wide {
        true if 2 * left > 3 * nr => 2 * nr,
        true if left > nr => 3 * nr / 2,
        _ => nr,
    }
}

/// The micro-kernel's work on one packed block of `A` and one of `B`.
struct Block<T> {
    micro: Micro<T>,
    /// The kernel of the edge tiles, reading the same panels.
    tile: Tile<T>,
    nr: usize,
    kc: usize,
    /// Whether the tiles resume the values in `C` (else they start at -0).
    load: bool,
}

impl<T: Element> Block<T> {
    /// Every tile of the `mc` x `nc` block of `C` at `c` (rows `rsc`
    /// apart), in place: a whole one by the micro-kernel, one at an edge by
    /// the tile kernel (of its rows and columns only) on the same panels.
    ///
    /// # Safety
    ///
    /// The block is inside `C`; `pa` and `pb` hold the packed blocks; the
    /// micro-kernel's features are present.
    unsafe fn run(&self, pa: &[T], pb: &[T], c: *mut T, rsc: usize, (mc, nc): (usize, usize)) {
        let (kc, nr) = (self.kc, self.nr);
        for jr in (0..nc).step_by(nr) {
            let cols = nr.min(nc - jr);
            let bp = pb[jr * kc..].as_ptr();
            for ir in (0..mc).step_by(MR) {
                let rows = MR.min(mc - ir);
                let ap = pa[ir * kc..].as_ptr();
                // SAFETY: the tile's elements inside the block are in `C`;
                // the packed panels hold `kc` steps of the tile.
                unsafe {
                    let ct = c.add(ir * rsc + jr);
                    if rows == MR && cols == nr {
                        (self.micro)(kc, ap, bp, ct, rsc, self.load);
                    } else {
                        let panel_a = (1, MR);
                        (self.tile)(rows, cols, kc, ap, panel_a, bp, nr, ct, rsc, self.load);
                    }
                }
            }
        }
    }
}

/// The kernel as the generated code calls it, one entry point per element
/// type (`extern "C"` functions cannot be generic): the arguments of
/// [`gemm`] flattened, `resume` 0 or 1, on the host's path.
macro_rules! entry {
    ($name:ident, $t:ty) => {
        /// [`gemm`] on the host's path, for the generated code.
        ///
        /// # Safety
        ///
        /// As [`gemm`]; the generated code passes buffers checked against
        /// their shapes before it runs.
        pub(crate) unsafe extern "C" fn $name(
            m: usize,
            n: usize,
            k: usize,
            a: *const $t,
            rsa: usize,
            csa: usize,
            b: *const $t,
            rsb: usize,
            csb: usize,
            c: *mut $t,
            rsc: usize,
            resume: usize,
            sums: *mut $t,
        ) {
            // SAFETY: the caller's contract; the host's path is available.
            unsafe {
                gemm(
                    (Isa::host(), Route::Auto),
                    (m, n, k),
                    a,
                    (rsa, csa),
                    b,
                    (rsb, csb),
                    (c, rsc),
                    resume != 0,
                    sums,
                );
            }
        }
    };
}

entry!(gemm_f64, f64);
entry!(gemm_f32, f32);

/// The symbols the kernels are registered and imported under, with their
/// addresses (for `JITBuilder::symbol`); both take the thirteen
/// pointer-sized arguments of [`gemm_f64`] and return nothing.
pub(crate) const GEMM_F64: &str = "gradc_gemm_f64";
pub(crate) const GEMM_F32: &str = "gradc_gemm_f32";

/// The symbols of the transposes ([`transpose`]), which take a source,
/// its rows and columns, and a destination, and return nothing.
pub(crate) const TRANSPOSE_F64: &str = "gradc_transpose_f64";
pub(crate) const TRANSPOSE_F32: &str = "gradc_transpose_f32";

/// The kernels' symbols and addresses.
pub(crate) fn symbols() -> [(&'static str, *const u8); 12] {
    type Entry<T> = unsafe extern "C" fn(
        usize,
        usize,
        usize,
        *const T,
        usize,
        usize,
        *const T,
        usize,
        usize,
        *mut T,
        usize,
        usize,
        *mut T,
    );
    type Transpose<T> = unsafe extern "C" fn(*const T, usize, usize, *mut T);
    #[allow(improper_ctypes_definitions)]
    type Pair = unsafe extern "C" fn(std::arch::x86_64::__m128d) -> std::arch::x86_64::__m128d;
    type Eight = unsafe extern "C" fn(*mut f64);
    // The eight-wide kernels: AVX-512F's where the CPU has it (the same
    // bits as AVX2's, in half the instructions).
    let avx512 = std::arch::is_x86_feature_detected!("avx512f");
    let eight = |avx2: Eight, avx512f: Eight| (if avx512 { avx512f } else { avx2 }) as *const u8;
    [
        (GEMM_F64, gemm_f64 as Entry<f64> as *const u8),
        (GEMM_F32, gemm_f32 as Entry<f32> as *const u8),
        (
            TRANSPOSE_F64,
            transpose::transpose_f64 as Transpose<f64> as *const u8,
        ),
        (
            TRANSPOSE_F32,
            transpose::transpose_f32 as Transpose<f32> as *const u8,
        ),
        (exp::EXP2, exp::exp2 as Pair as *const u8),
        (exp::SIGMOID2, exp::sigmoid2 as Pair as *const u8),
        (exp::TANH2, exp::tanh2 as Pair as *const u8),
        (exp::EXP8, eight(exp::exp8, exp::exp8_avx512)),
        (exp::SIGMOID8, eight(exp::sigmoid8, exp::sigmoid8_avx512)),
        (exp::TANH8, eight(exp::tanh8, exp::tanh8_avx512)),
        (
            prefetch::PREFETCH,
            prefetch::prefetch as extern "C" fn(*const u8, usize) as *const u8,
        ),
        (
            runs::IN_PARTS,
            runs::in_parts as unsafe extern "C" fn(runs::Part, _, _, _, _, _, _, _) as *const u8,
        ),
    ]
}
