//! Matrix products joined to the run that reads them (see
//! [`super::fuse`]): a product whose only readers are in one later run over
//! its shape, written out by nothing, is computed there a block of columns
//! at a time into a buffer that stays in the cache, so that its numbers
//! never go to memory (`kmeans`' K x N distances). And sums along the last
//! axis joined to the product whose left operand they add up, which the
//! kernel reads once for both (`gmm`'s `dQx`).

use super::fuse::Member;
use super::kernel_product;
use crate::backend::kernel;
use crate::ir::{Function, Op, Reduce, Value, ValueMap};

/// The fewest numbers of a product that joins the run that reads it
/// ([`join_products`]), 1 MiB. The run's blocks go in parts on every core
/// the kernel would use (`translate::parts`), each part computing its own
/// blocks. Against the product written out and read back: `kmeans`'
/// primal at 100 x 10,000 and 1000 x 1000 distances 20 to 37% faster
/// (from 2^19 numbers), `gmm`'s at [K D, N] = 200 x 1000 to 1000 x 1000
/// 22 to 34% faster (from 2^17, through its reshape to [K, D, N]); at 2^16
/// no faster (`gmm` at d = 20, k = 5, `kmeans` at k = 100, n = 1000). (It
/// joined from 16 MiB when the blocks ran on one core, and was then 15 to
/// 25% slower at `kmeans`' sizes above.)
const JOINED_PRODUCT: usize = 1 << 17;

/// The numbers of a block of a product joined to its run (128 KiB), which
/// stays in the L2 cache while the run reads it.
const PRODUCT_BLOCK: usize = 1 << 14;

/// The columns of a block of an `m` x `n` product joined to its run: a
/// multiple of 8 that makes about [`PRODUCT_BLOCK`] numbers, at least 16
/// (the kernel computes blocks of 8 columns slowly: `gmm` at d = 20, k =
/// 100 and d = 32, k = 50, 2000 and 1600 rows, took 17 to 24% longer
/// joined than whole), at most `n`.
pub fn product_block(m: usize, n: usize) -> usize {
    (PRODUCT_BLOCK / m.max(1) / 8 * 8).max(16).min(n)
}

/// Joins each matrix product (a step of its own, of two matrices, large
/// enough for the kernel and at least [`JOINED_PRODUCT`] numbers) to the
/// later run that holds all its readers, when that run's first member has
/// its shape, the run writes no member of that size out, and it adds
/// nothing up in order (no `sum`, no shift, no parts): the product moves
/// to the run's front. Nothing between reads it, so the move keeps every
/// dependency; its arguments then live until the run. (A product written
/// out whole, or read whole, is left to the kernel, which splits a large
/// one over the threads.)
pub(super) fn join_products(f: &Function, steps: &mut Vec<Vec<Value>>, readers: &ValueMap<usize>) {
    let mut i = 0;
    while i < steps.len() {
        let &[v] = steps[i].as_slice() else {
            i += 1;
            continue;
        };
        // The product, or its only reader if that is a reshape that keeps
        // its rows (`gmm`'s [K D, N] product seen as [K, D, N]): a step of
        // its own (a view), joined with it.
        let reshape = (readers[v] == 1)
            .then(|| {
                (i + 1..steps.len())
                    .find(|&k| matches!(steps[k][..], [r] if reshaped_product(f, r, |u| u == v)))
            })
            .flatten();
        let read = reshape.map_or(v, |k| steps[k][0]);
        let joins = |run: &[Value]| {
            let reads: usize = run
                .iter()
                .map(|&w| f.inst(w).args.iter().filter(|&&a| a == read).count())
                .sum();
            let in_order = run.iter().any(|&w| {
                let m = Member::in_run(f, w, |u| run.contains(&u));
                matches!(
                    m,
                    Some(Member::Sum | Member::Pieces | Member::Lag | Member::Lead)
                )
            });
            // Nothing of the product's size leaves the run: a member
            // written out whole would cost what the blocks save.
            let size = f.shape(v).size();
            let kept = run.iter().all(|&w| {
                let inside: usize = run
                    .iter()
                    .map(|&u| f.inst(u).args.iter().filter(|&&a| a == w).count())
                    .sum();
                f.shape(w).size() != size || inside == readers[w]
            });
            let shape = f.shape(run[0]) == f.shape(read);
            run.len() > 1 && reads == readers[read] && !in_order && kept && shape
        };
        let target = joinable_product(f, v)
            .then(|| {
                (i + 1..steps.len())
                    .find(|&j| steps[j].iter().any(|w| f.inst(*w).args.contains(&read)))
            })
            .flatten()
            .filter(|&j| joins(&steps[j]));
        match (target, reshape) {
            (Some(j), None) => {
                steps.remove(i);
                steps[j - 1].insert(0, v);
            }
            (Some(j), Some(k)) => {
                steps[j].splice(0..0, [v, read]);
                steps.remove(k);
                steps.remove(i);
            }
            (None, _) => i += 1,
        }
    }
}

/// Whether `v` is a `reshape` of a matrix product (that `in_run` holds)
/// into a shape with the product's last axis: each row of the reshape is a
/// row of the product, so a run over the reshape's shape reads the
/// product's joined blocks a row at a time as it reads the product's.
pub fn reshaped_product(f: &Function, v: Value, in_run: impl Fn(Value) -> bool) -> bool {
    let inst = f.inst(v);
    let Op::Reshape(shape) = &inst.op else {
        return false;
    };
    let p = inst.args[0];
    let product = f.shape(p);
    f.inst(p).op == Op::MatMul
        && in_run(p)
        && product.rank() == 2
        && shape.rank() >= 2
        && shape.dims().last() == product.dims().last()
}

/// Whether `v` is a product of two matrices that the kernel computes
/// (more than [`super::UNROLL`] terms a dot product, as the translator
/// decides), large enough to join its run, with a left operand small
/// enough to be read again for every block.
fn joinable_product(f: &Function, v: Value) -> bool {
    let inst = f.inst(v);
    if inst.op != Op::MatMul || inst.shape.rank() != 2 {
        return false;
    }
    let (a, b) = (f.shape(inst.args[0]), f.shape(inst.args[1]));
    let (&[_, k], &[_, n]) = (a.dims(), b.dims()) else {
        return false;
    };
    let m = a.dims()[0];
    let width = product_block(m, n);
    k > super::UNROLL
        && inst.shape.size() >= JOINED_PRODUCT
        && n > width
        && m * width <= JOINED_BLOCK
        && m * k <= JOINED_LEFT
}

/// The most numbers of a joined product's left operand, which every block
/// reads again (1 MiB, from the L2 cache): `gmm`'s [K D, D] at d = 64, k =
/// 25 (800 KiB) took 10% less time joined (in blocks of 16 columns; 30%
/// more in blocks of 8), at d = 64, k = 10 (320 KiB) 22% less.
const JOINED_LEFT: usize = 1 << 17;

/// The most numbers of a joined product's block (512 KiB): in the L2 cache,
/// and on the stack of a part of its run (`translate::parts`).
pub const JOINED_BLOCK: usize = 1 << 16;

/// The product and the sum of the step `[p, s]`, if `s` is a sum along the
/// last axis alone of the value that is (or is reshaped into) `p`'s left
/// operand, and the kernel computes `p` ([`kernel_product`]) with the sums
/// in lanes it computes anyway ([`free`]): each element of the sum is a
/// row of `A` added in order from -0, which the kernel adds with the
/// product.
pub fn summed_product(f: &Function, step: &[Value]) -> Option<(Value, Value)> {
    let &[p, s] = step else {
        return None;
    };
    let x = last_axis_sum(f, s)?;
    let &a = f.inst(p).args.first()?;
    // `A`'s rows are the summed ones: `x`, or `x` reshaped to rows of its
    // last axis.
    let (row, len) = (f.shape(a).dims().last(), f.shape(x).dims().last());
    let reshaped = matches!(f.inst(a).op, Op::Reshape(_)) && f.inst(a).args[0] == x;
    let operand = (a == x || reshaped) && row == len;
    (kernel_product(f, p) && operand && free(f, p)).then_some((p, s))
}

/// The value `s` adds up along its last axis alone, if it is such a sum
/// of a value of two axes or more.
fn last_axis_sum(f: &Function, s: Value) -> Option<Value> {
    let inst = f.inst(s);
    let Op::ReduceAxes(Reduce::Sum, axes) = &inst.op else {
        return None;
    };
    let x = inst.args[0];
    let rank = f.shape(x).rank();
    (rank > 1 && axes[..] == [rank - 1]).then_some(x)
}

/// Whether the kernel adds up the rows of `p`'s left operand for nothing
/// on this machine ([`kernel::summing_is_free`], for f64: a plan serves
/// f32 too, whose sums are right either way). Else the sum stays a step of
/// its own: the kernel would add the rows apart too, in the same four
/// chains as the generated loop.
fn free(f: &Function, p: Value) -> bool {
    let (a, b) = (f.shape(f.inst(p).args[0]), f.shape(f.inst(p).args[1]));
    let (&[m, k], &[_, n]) = (a.dims(), b.dims()) else {
        return false;
    };
    let path = (kernel::Isa::host(), kernel::Route::Auto);
    kernel::summing_is_free::<f64>(path, (m, n, k), 1)
}

/// Joins each sum along the last axis of a value (a step of its own) to
/// the product by the kernel of that value (its left operand, or reshaped
/// into it; a step of its own): see [`summed_product`]. A sum before the
/// product moves down to it if nothing between reads the sum; one after it
/// moves up (what it reads is ready: the product reads it too). The
/// separate sum read `gmm`'s 16 MB `dQx` at d = 20, k = 100 once more, in
/// chains of four rows.
pub(super) fn join_row_sums(f: &Function, steps: &mut Vec<Vec<Value>>) {
    let mut i = 0;
    while i < steps.len() {
        // Only a sum along the last axis looks for its product (a scan of
        // the steps).
        let &[s] = steps[i].as_slice() else {
            i += 1;
            continue;
        };
        if last_axis_sum(f, s).is_none() {
            i += 1;
            continue;
        }
        let product = steps.iter().position(|step| match step[..] {
            [p] => summed_product(f, &[p, s]).is_some(),
            _ => false,
        });
        let reads_s = |step: &Vec<Value>| step.iter().any(|&w| f.inst(w).args.contains(&s));
        match product {
            Some(j) if j < i || !steps[i + 1..j].iter().any(reads_s) => {
                steps[j].push(s);
                steps.remove(i);
            }
            _ => i += 1,
        }
    }
}
