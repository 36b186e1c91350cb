//! A large forward value computed from a product's result and a spread
//! (`gmm`'s `Qx`) is computed again by the backward run that reads it
//! ([`plan::recompute`]), so that neither run stores it: the same bits as
//! the interpreter's, one example at a time, in batches and in f32.

use super::*;
use crate::ir::Backward;

/// The gradient program of `gmm`'s shape of objective, `[4, 16, n]`
/// values: `Z = W @ x.T - c` (`c` spread along the points), the sum over
/// the points of a log-sum-exp of `-|Z|^2 / 2`. With `twice`, `Z` is the
/// difference of two products instead.
fn gradient(n: usize, twice: bool) -> Function {
    let (other, z) = if twice {
        ("V: [4, 16, 16]", "W @ x.T - V @ x.T")
    } else {
        ("c: [4, 16]", "W @ x.T - reshape(c, [4, 16, 1])")
    };
    let src = format!(
        "input x: [{n}, 16]\nparam W: [4, 16, 16]\nparam {other}\nlet Z = {z}\n\
         loss sum(logsumexp(-0.5 * sum(Z^2, axis = 1), axis = 0))\n"
    );
    let c = crate::compile(&src).expect("the program compiles");
    crate::gradient_program(&c.ir).expect("differentiates")
}

/// The `sub`s of shape `[4, 16, n]`: the forward one, and in the backward
/// pass its copy, if any.
fn subs(f: &Function, n: usize) -> (Vec<Value>, Vec<Value>) {
    let shape = Shape(vec![4, 16, n]);
    f.iter()
        .filter(|(_, i)| i.op == Op::Binary(Binary::Sub) && i.shape == shape)
        .map(|(v, _)| v)
        .partition(|&v| f.inst(v).backward.is_none())
}

#[test]
fn a_forward_value_is_computed_again_where_the_backward_pass_reads_it() {
    let g = gradient(1024, false);
    let h = plan::recompute::recompute(&g).expect("`Z` is recomputed");
    let (forward, copies) = subs(&h, 1024);
    let (&[z], &[copy]) = (&forward[..], &copies[..]) else {
        panic!("one `Z` and one copy: {forward:?} {copies:?}\n{h}");
    };
    // The forward readers read `Z`, the backward ones its copy.
    for (v, inst) in h.iter() {
        if inst.args.contains(&z) {
            assert_eq!(inst.backward, None, "%{} reads `Z`\n{h}", v.index());
        }
    }
    assert!(matches!(h.inst(copy).backward, Some(Backward::Step(_))));
    // Neither is stored: each is computed in the run that reads it.
    let layout = plan::layout::layout(&h);
    assert!(layout.internal[z], "`Z` is stored\n{h}");
    assert!(layout.internal[copy], "its copy is stored\n{h}");
    let reader = h
        .values()
        .find(|&v| h.inst(v).args.contains(&copy))
        .unwrap();
    let step = layout.steps.iter().find(|s| s.contains(&copy)).unwrap();
    assert!(step.contains(&reader), "{step:?}\n{h}");
    // The copy's spread is copied with it, not read from the forward run.
    let spread = h.inst(copy).args[1];
    assert!(
        step.contains(&spread) && layout.internal[spread],
        "{step:?}\n{h}"
    );
    // The program compiled (with the copy) computes the interpreter's bits.
    agree_on_values(&g);
    let params = tensors(&g, true, 3);
    agree_f32(&g, &params, &[tensors(&g, false, 5), tensors(&g, false, 7)]);
}

/// A value below the size worth it, or computed from two values of its
/// size (whose reads would cost more than its store), is stored.
#[test]
fn a_small_value_or_one_of_two_products_is_stored() {
    assert!(plan::recompute::recompute(&gradient(512, false)).is_none());
    let g = gradient(1024, true);
    assert!(plan::recompute::recompute(&g).is_none());
    agree_on_values(&g);
}
