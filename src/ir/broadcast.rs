//! NumPy's broadcasting, made explicit in the IR: the shape operands of
//! different shapes combine to (trailing axes aligned, a length-1 axis
//! stretched, missing leading axes added), and an operand brought to that
//! shape by a `reshape` (away the stretched length-1 axes) and a
//! `broadcast_axes` (repeated along the stretched and the missing axes).
//! The IR's elementwise operations still take equal shapes or a scalar;
//! only the front end's lowering broadcasts.

use crate::ir::{Function, Op, Value};
use crate::shape::Shape;
use crate::span::Span;

/// Two lengths on one axis that neither are equal nor include a 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The axis counted from the end: 1 is the last.
    pub from_end: usize,
    /// The two lengths there, in the operands' order.
    pub lengths: (usize, usize),
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (a, b) = self.lengths;
        write!(
            f,
            "lengths {a} and {b} on axis -{} do not broadcast",
            self.from_end
        )
    }
}

/// The dimensions `a` and `b` broadcast to, or the first axis from the end
/// where they conflict.
pub fn dims(a: &[usize], b: &[usize]) -> Result<Vec<usize>, Conflict> {
    let rank = a.len().max(b.len());
    let at = |d: &[usize], k: usize| {
        if k <= d.len() {
            d[d.len() - k]
        } else {
            1
        }
    };
    let mut out = vec![0; rank];
    for k in 1..=rank {
        let (x, y) = (at(a, k), at(b, k));
        out[rank - k] = match (x, y) {
            _ if x == y => x,
            (1, _) => y,
            (_, 1) => x,
            _ => {
                return Err(Conflict {
                    from_end: k,
                    lengths: (x, y),
                })
            }
        };
    }
    Ok(out)
}

/// The shape `a` and `b` broadcast to.
pub fn shapes(a: &Shape, b: &Shape) -> Result<Shape, Conflict> {
    dims(a.dims(), b.dims()).map(Shape)
}

/// The axes of `into` along which a value of shape `from` is repeated (the
/// missing leading ones and the stretched length-1 ones), and the shape it
/// is reshaped to first (`from` without its stretched axes). `from` must
/// broadcast to `into`.
pub fn plan(from: &Shape, into: &Shape) -> (Vec<usize>, Shape) {
    let lead = into.rank() - from.rank();
    let mut axes: Vec<usize> = (0..lead).collect();
    let mut kept = Vec::new();
    for (k, (&f, &t)) in from.dims().iter().zip(&into.dims()[lead..]).enumerate() {
        if f == t {
            kept.push(f);
        } else {
            debug_assert_eq!(f, 1, "{from} does not broadcast to {into}");
            axes.push(lead + k);
        }
    }
    (axes, Shape(kept))
}

/// `v` repeated to the shape `into` (to which its shape broadcasts); `v`
/// itself when it already has that shape.
pub fn to(f: &mut Function, v: Value, into: &Shape, span: Span) -> Value {
    let from = f.shape(v).clone();
    if &from == into {
        return v;
    }
    let (axes, kept) = plan(&from, into);
    let v = if kept == from {
        v
    } else {
        f.push(Op::Reshape(kept), vec![v], span)
    };
    f.push(Op::BroadcastAxes(axes, into.clone()), vec![v], span)
}

/// Elementwise operands brought to one shape: every tensor that is not a
/// scalar is broadcast to the shape they all combine to; scalars stay
/// scalars (the IR's elementwise operations take them as they are).
pub fn operands(f: &mut Function, vs: &[Value], span: Span) -> Vec<Value> {
    let mut common = Shape::scalar();
    for &v in vs {
        common = shapes(&common, f.shape(v)).expect("checked broadcastable operands");
    }
    vs.iter()
        .map(|&v| {
            if f.shape(v).is_scalar() {
                v
            } else {
                to(f, v, &common, span)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_rules() {
        let ok = |a: &[usize], b: &[usize]| dims(a, b).unwrap();
        assert_eq!(ok(&[2, 1, 4], &[4]), vec![2, 1, 4]);
        assert_eq!(ok(&[2, 1, 4], &[3, 1]), vec![2, 3, 4]);
        assert_eq!(ok(&[1], &[5, 2]), vec![5, 2]);
        assert_eq!(ok(&[], &[3]), vec![3]);
        assert_eq!(ok(&[3, 1], &[1, 3]), vec![3, 3]);
        assert_eq!(
            dims(&[2, 1, 4], &[3]),
            Err(Conflict {
                from_end: 1,
                lengths: (4, 3)
            })
        );
        assert_eq!(
            dims(&[2, 3], &[4, 5, 3]),
            Err(Conflict {
                from_end: 2,
                lengths: (2, 5)
            })
        );
    }

    #[test]
    fn plan_reshapes_away_stretched_axes() {
        let (axes, kept) = plan(&Shape(vec![3, 1]), &Shape(vec![2, 3, 4]));
        assert_eq!(axes, vec![0, 2]);
        assert_eq!(kept, Shape(vec![3]));
        let (axes, kept) = plan(&Shape(vec![1, 4]), &Shape(vec![1, 4]));
        assert!(axes.is_empty());
        assert_eq!(kept, Shape(vec![1, 4]));
    }
}
