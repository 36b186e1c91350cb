//! Operation and floating-point operation counts of a function, for
//! `gradc grad --stats` and the cheap-gradient tests.

use crate::ir::{Function, Op, Reduce};

/// Counts of one function.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Instructions that compute (parameters, inputs and constants excluded).
    pub ops: usize,
    /// Floating-point operations: one per output element of an elementwise
    /// operation (a transcendental function counts as one), `2 m k n` for a
    /// product of `[m, k]` by `[k, n]`, one per element read by a reduction.
    pub flops: u64,
    /// Numbers loops keep for the backward pass (their saved values, and
    /// those of one step of a loop's body).
    pub saved: u64,
}

/// The counts of `f`.
pub fn stats(f: &Function) -> Stats {
    let mut s = Stats::default();
    for inst in &f.insts {
        let out = inst.shape.size() as u64;
        let arg = |k: usize| f.shape(inst.args[k]).size() as u64;
        let flops = match &inst.op {
            Op::Param(_) | Op::Input(_) | Op::Const(_) => continue,
            Op::Unary(_) | Op::Binary(_) | Op::Select | Op::OneHot(_) => out,
            Op::MatMul => {
                // Every form: 2 x (elements of a) x (columns of b, or 1).
                let n = f.shape(inst.args[1]).dims().get(1).copied().unwrap_or(1) as u64;
                2 * arg(0) * n
            }
            Op::Outer => out,
            Op::Sum | Op::ReduceMax | Op::Norm | Op::ArgMax(_) => arg(0),
            Op::ReduceAxes(Reduce::Sum | Reduce::Max | Reduce::Norm, _) => arg(0),
            // exp, sum, log: three passes.
            Op::LogSumExp
            | Op::ReduceAxes(Reduce::LogSumExp, _)
            | Op::Softmax(_)
            | Op::LogSoftmax(_) => 3 * arg(0),
            // Data movement only.
            Op::Transpose
            | Op::Broadcast(_)
            | Op::BroadcastAxes(..)
            | Op::Slice(_)
            | Op::Unslice(..)
            | Op::Pack
            | Op::Index
            | Op::IndexSet
            | Op::Gather
            | Op::Reshape(_)
            | Op::Permute(_)
            | Op::Concat => 0,
            // One addition per element of the row.
            Op::IndexAdd | Op::ScatterAdd => arg(1),
            Op::Window(w) => {
                let shapes: Vec<_> = inst.args.iter().map(|&a| f.shape(a)).collect();
                w.geometry(&shapes).map_or(0, |geo| w.flops(&geo))
            }
            // The body's, once per step.
            Op::Loop(l) => {
                // What the loop keeps across its steps, and what one step
                // keeps while it runs (its loops' values: reused by the
                // next step).
                let body = stats(&l.body);
                s.saved += l.saved() as u64 + body.saved;
                l.trips as u64 * body.flops
            }
        };
        s.ops += 1;
        s.flops += flops;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::Shape;
    use crate::span::Span;

    #[test]
    fn matmul_counts_multiply_adds() {
        let mut f = Function::new(
            vec![crate::ir::Slot {
                name: "W".into(),
                shape: Shape::matrix(4, 3),
            }],
            vec![crate::ir::Slot {
                name: "x".into(),
                shape: Shape::vector(3),
            }],
        );
        let w = f.push(Op::Param(0), vec![], Span::default());
        let x = f.push(Op::Input(0), vec![], Span::default());
        let y = f.push(Op::MatMul, vec![w, x], Span::default());
        f.push(Op::Sum, vec![y], Span::default());
        assert_eq!(
            stats(&f),
            Stats {
                ops: 2,
                flops: 24 + 4,
                saved: 0,
            }
        );
    }
}
