//! Products: `x @ 0` and `outer(x, 0)` are zeros (as [`super::algebra`]'s
//! zeros annihilate), a power of two comes out of a matrix product's
//! factor larger than the product, and a vector times a transposed matrix
//! needs no transpose. Called from `algebra`.

use super::algebra::is;
use super::{splat, splat_value};
use crate::ir::{Binary, Function, Op, Value};
use crate::shape::Shape;
use crate::span::Span;

/// The replacement of the product `op` (`@` or `outer`) of `a` and `b`,
/// of shape `s`, if a rule applies.
pub fn product(
    out: &mut Function,
    op: &Op,
    a: Value,
    b: Value,
    s: &Shape,
    span: Span,
) -> Option<Value> {
    if is(splat_value(out, a), 0.0) || is(splat_value(out, b), 0.0) {
        return Some(splat(out, 0.0, s, span));
    }
    if *op != Op::MatMul {
        return None;
    }
    scaled_product(out, a, b, s, span).or_else(|| transposed_product(out, a, b, span))
}

/// A matrix product of a factor scaled by a power of two, a factor larger
/// than the product, is the product scaled: `(x * 2) @ y -> (x @ y) * 2`,
/// one multiplication of the smaller result instead of the factor's,
/// written out (`kmeans`' gradient scales a [K, N] mask by 2 before its
/// product with the [N, D] points). Exact but where a product of elements
/// falls below the normal numbers or a scaled element overflows.
fn scaled_product(out: &mut Function, a: Value, b: Value, s: &Shape, span: Span) -> Option<Value> {
    let power_of_two = |v: Value| {
        let c = splat_value(out, v)?;
        let exact = c.is_normal() && c.to_bits() & ((1 << 52) - 1) == 0;
        exact.then_some(c)
    };
    let scaled = |v: Value| {
        let inst = out.inst(v);
        if inst.op != Op::Binary(Binary::Mul) {
            return None;
        }
        let (x, y) = (inst.args[0], inst.args[1]);
        let whole = |x: Value| out.shape(x) == out.shape(v) && out.shape(v).size() > s.size();
        match (power_of_two(x), power_of_two(y)) {
            (Some(c), _) if whole(y) => Some((y, c)),
            (_, Some(c)) if whole(x) => Some((x, c)),
            _ => None,
        }
    };
    let (a, b, c) = match (scaled(a), scaled(b)) {
        (Some((x, c)), _) => (x, b, c),
        (None, Some((y, c))) => (a, y, c),
        (None, None) => return None,
    };
    let product = out.push(Op::MatMul, vec![a, b], span);
    let k = splat(out, c, s, span);
    Some(out.push(Op::Binary(Binary::Mul), vec![product, k], span))
}

/// A vector times a transposed matrix needs no transpose:
/// `u @ M.T -> M @ u` and `M.T @ u -> u @ M`.
fn transposed_product(out: &mut Function, a: Value, b: Value, span: Span) -> Option<Value> {
    let (ra, rb) = (out.shape(a).rank(), out.shape(b).rank());
    let inner = |v: Value| match out.inst(v).op {
        Op::Transpose => Some(out.inst(v).args[0]),
        _ => None,
    };
    match (ra, rb) {
        (1, 2) => inner(b).map(|m| out.push(Op::MatMul, vec![m, a], span)),
        (2, 1) => inner(a).map(|m| out.push(Op::MatMul, vec![b, m], span)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::algebra::run;
    use super::super::testing::{check, parse};
    use crate::ir::Function;
    use crate::shape::{Shape, Tensor};

    /// A factor of a matrix product scaled by a power of two, larger than
    /// the product: the product scaled, the same bits; by another number,
    /// a factor no larger than the product (a vector's, an outer
    /// product's), as it is.
    #[test]
    fn a_power_of_two_leaves_a_larger_factor_of_a_product() {
        let product = |a: &str, b: &str| format!("(matmul {a} (transpose {b}))");
        let sq = "(mul m m)";
        let scaled = |f: &str| format!("(mul {f} 2)");
        check(
            run,
            &product(&scaled("m"), "m"),
            &format!("(mul {} (broadcast 2))", product("m", "m")),
        );
        check(
            run,
            &format!("(matmul {sq} (mul 0.25 (transpose n)))"),
            &format!("(mul {} (broadcast 0.25))", product(sq, "n")),
        );
        for kept in [
            product("(mul m 3)", "m"),
            "(matmul (transpose m) (mul n 2))".to_string(),
            "(outer (mul x -4) y)".to_string(),
        ] {
            check(run, &kept, &kept);
        }
        let mut f = parse(&product(&scaled("m"), "n"));
        let before = f.clone();
        assert!(run(&mut f));
        let params = [
            Tensor::new(Shape::matrix(2, 3), vec![0.1, -1e300, 3.3, 7e-5, 1.7, -2.9]),
            Tensor::new(Shape::matrix(2, 3), vec![1e-3, 0.3, -5.5, 1e-300, 2.5, 0.7]),
        ];
        let bits = |f: &Function| {
            let out = crate::ir::interp::run_outputs(f, &params, &[]).unwrap();
            out[0]
                .1
                .data
                .iter()
                .map(|x| x.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&before), bits(&f));
    }
}
