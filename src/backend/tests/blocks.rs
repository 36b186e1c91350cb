//! A matrix product whose only readers are in a later run over its shape
//! joins that run (`kmeans`' distances): the run goes over blocks of
//! columns, each computed by the kernel into a buffer of one block. The
//! same bits as the interpreter, whatever the blocks: a tail block, one
//! column of a member stored, a maximum and a sum along the rows.

use super::*;

/// `kmeans`' distances: `d = broadcast(|c|^2) + broadcast(|p|^2) - 2 C @
/// P`, then their maximum and their sum along the rows, and if `after`
/// twice the maximum spread over the rows (a run after), for `C` `m` x `k`
/// and `P` `k` x `n`.
pub(super) fn distances(m: usize, n: usize, k: usize, after: bool) -> (Function, Value) {
    let (mut f, p, x) = function(
        &[Shape::matrix(m, k), Shape::vector(m)],
        &[Shape::matrix(k, n), Shape::vector(n)],
    );
    let product = push(&mut f, Op::MatMul, &[p[0], x[0]]);
    let shape = Shape::matrix(m, n);
    let rows = push(&mut f, Op::BroadcastAxes(vec![1], shape.clone()), &[p[1]]);
    let cols = push(&mut f, Op::BroadcastAxes(vec![0], shape), &[x[1]]);
    let both = push(&mut f, Op::Binary(Binary::Add), &[rows, cols]);
    let two = push(&mut f, Op::Const(ConstData(Tensor::scalar(2.0))), &[]);
    let twice = push(&mut f, Op::Binary(Binary::Mul), &[two, product]);
    let d = push(&mut f, Op::Binary(Binary::Sub), &[both, twice]);
    let nearest = push(
        &mut f,
        Op::ReduceAxes(crate::ir::Reduce::Max, vec![0]),
        &[d],
    );
    let counts = push(
        &mut f,
        Op::ReduceAxes(crate::ir::Reduce::Sum, vec![0]),
        &[d],
    );
    output(&mut f, nearest);
    output(&mut f, counts);
    if after {
        // A value of the product's shape in a run after, which must not
        // take the block's slot for one of its own size.
        let spread = Op::BroadcastAxes(vec![0], Shape::matrix(m, n));
        let nearest = push(&mut f, spread, &[nearest]);
        let later = push(&mut f, Op::Binary(Binary::Mul), &[nearest, two]);
        output(&mut f, later);
    }
    (f, product)
}

#[test]
fn a_product_joins_its_run_and_is_computed_a_block_at_a_time() {
    // Blocks of 48 columns with a tail of 4; of 16 (the fewest) with a
    // tail of 6, and a run after.
    let cases = [(300, 7012, 6, false), (1000, 150, 5, true)];
    for (m, n, k, after) in cases {
        let (f, product) = distances(m, n, k, after);
        let layout = plan::layout::layout(&f);
        let run = layout.steps.iter().find(|s| s.contains(&product)).unwrap();
        assert_eq!(run[0], product, "{:?}", layout.steps);
        assert!(run.len() > 4, "{:?}", layout.steps);
        let slot = plan::products::product_block(m, n) * m;
        assert!(slot < m * n, "a block, not the whole product");
        // (Values of 2 million and 150,000 elements: one set, and a batch
        // of one.)
        let params = tensors(&f, true, 4);
        agree(&f, &params, &tensors(&f, false, 6));
        if after {
            agree_batched(&f, &params, &[tensors(&f, false, 8)]);
        }
    }
}

/// A product read outside the run, or by a run that sums in order or
/// writes a member of its size out, or too small to leave the cache, or
/// whose left operand is too large to read again for each block, or whose
/// blocks would be too large, stays a step of its own.
#[test]
fn a_product_read_elsewhere_or_small_stays_alone() {
    let (mut f, product) = distances(300, 7012, 6, false);
    output(&mut f, product);
    let (mut e, written) = distances(300, 7012, 6, false);
    let d = e.inst(e.outputs[0].value).args[0];
    output(&mut e, d);
    let (mut g, summed) = distances(300, 7012, 6, false);
    let d = g.outputs[0].value;
    let arg = g.inst(d).args[0];
    let total = push(&mut g, Op::Sum, &[arg]);
    output(&mut g, total);
    let (h, small) = distances(300, 400, 8, false);
    // A left operand of 1000 x 140, read again for every block; one of
    // 5000 rows, whose blocks of 16 columns would outgrow the cache.
    let (w, wide) = distances(1000, 1000, 140, false);
    let (t, tall) = distances(5000, 100, 8, false);
    let cases = [
        (&f, product),
        (&e, written),
        (&g, summed),
        (&h, small),
        (&w, wide),
        (&t, tall),
    ];
    for (f, v) in cases {
        let layout = plan::layout::layout(f);
        assert!(layout.steps.contains(&vec![v]), "{:?}", layout.steps);
    }
    // The run that writes the distances out, after the product alone.
    agree(&e, &tensors(&e, true, 1), &tensors(&e, false, 2));
}
