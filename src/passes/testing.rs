//! Test support for the passes: functions written as s-expressions, so a
//! rewrite is checked in one line, `check(run, "(add x 0)", "x")`, together
//! with the interpreter giving the same output before and after.
//!
//! Names: `a b c` are scalar parameters, `x y z` parameters of shape [3],
//! `m n` of shape [2, 3]. Numbers are scalar constants, `[1,2,3]` (no spaces)
//! a vector constant. Operations are the printer's mnemonics; `broadcast`
//! goes to [3].

use crate::ir::interp::run_outputs;
use crate::ir::printer::mnemonic;
use crate::ir::verify::verify;
use crate::ir::{
    Binary, ConstData, Function, Op, Output, Reduce, Role, SliceAxis, Slot, Unary, Value,
};
use crate::shape::{fmt_num, Shape, Tensor};
use crate::span::Span;

const UNARY: [Unary; 17] = Unary::ALL;

const BINARY: [Binary; 14] = Binary::ALL;

fn op_named(name: &str) -> Op {
    let others = [
        Op::Select,
        Op::MatMul,
        Op::Outer,
        Op::Transpose,
        Op::Sum,
        Op::ReduceMax,
        Op::Norm,
        Op::LogSumExp,
        Op::Softmax(0),
        Op::LogSoftmax(0),
        Op::Broadcast(Shape::vector(3)),
        Op::Pack,
        Op::Gather,
        Op::ScatterAdd,
    ];
    UNARY
        .into_iter()
        .map(Op::Unary)
        .chain(BINARY.into_iter().map(Op::Binary))
        .chain(others)
        .find(|op| mnemonic(op) == name)
        .unwrap_or_else(|| panic!("no operation {name}"))
}

fn param_shape(name: &str) -> Shape {
    match name {
        "a" | "b" | "c" => Shape::scalar(),
        "x" | "y" | "z" => Shape::vector(3),
        "m" | "n" => Shape::matrix(2, 3),
        _ => panic!("no parameter {name} in tests"),
    }
}

/// A function with the single output `output r` computed by `src`.
pub fn parse(src: &str) -> Function {
    let spaced = src.replace('(', " ( ").replace(')', " ) ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    let mut f = Function::default();
    let mut pos = 0;
    let r = expr(&mut f, &tokens, &mut pos);
    assert_eq!(pos, tokens.len(), "trailing tokens in {src}");
    f.outputs.push(Output {
        role: Role::Output,
        name: "r".to_string(),
        value: r,
    });
    f
}

fn expr(f: &mut Function, tokens: &[&str], pos: &mut usize) -> Value {
    let sp = Span::default();
    let tok = tokens[*pos];
    *pos += 1;
    if tok == "(" {
        let op = op_named(tokens[*pos]);
        *pos += 1;
        let mut args = Vec::new();
        while tokens[*pos] != ")" {
            args.push(expr(f, tokens, pos));
        }
        *pos += 1;
        f.push(op, args, sp)
    } else if let Ok(x) = tok.parse::<f64>() {
        f.push(Op::Const(ConstData(Tensor::scalar(x))), vec![], sp)
    } else if let Some(list) = tok.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        let data: Vec<f64> = list.split(',').map(|x| x.parse().unwrap()).collect();
        let t = Tensor::new(Shape::vector(data.len()), data);
        f.push(Op::Const(ConstData(t)), vec![], sp)
    } else {
        let i = match f.params.iter().position(|p| p.name == tok) {
            Some(i) => i,
            None => {
                f.params.push(Slot {
                    name: tok.to_string(),
                    shape: param_shape(tok),
                });
                f.params.len() - 1
            }
        };
        let v = f.push(Op::Param(i), vec![], sp);
        f.set_name(v, tok);
        v
    }
}

/// The expression tree that computes `v`, in the syntax of [`parse`].
pub fn sexpr(f: &Function, v: Value) -> String {
    let inst = f.inst(v);
    match &inst.op {
        Op::Param(i) => f.params[*i].name.clone(),
        Op::Const(c) if c.0.shape.is_scalar() => fmt_num(c.0.data[0]),
        Op::Const(c) => c.0.to_string(),
        _ => {
            let mut s = format!("({}", mnemonic(&inst.op));
            for &a in &inst.args {
                s.push(' ');
                s.push_str(&sexpr(f, a));
            }
            s.push(')');
            s
        }
    }
}

/// Deterministic parameter values, none of them zero.
fn sample_params(f: &Function) -> Vec<Tensor> {
    f.params
        .iter()
        .enumerate()
        .map(|(p, slot)| {
            let data = (0..slot.shape.size())
                .map(|k| ((p * 7 + k * 3) % 11) as f64 / 4.0 - 1.2)
                .collect();
            Tensor::new(slot.shape.clone(), data)
        })
        .collect()
}

/// Asserts that outputs agree to rounding (NaN agrees with NaN).
#[track_caller]
pub fn assert_same_outputs(before: &Function, after: &Function) {
    let params = sample_params(before);
    let a = run_outputs(before, &params, &[]).expect("runs before");
    let b = run_outputs(after, &params, &[]).expect("runs after");
    assert_eq!(a.len(), b.len());
    for ((oa, ta), (ob, tb)) in a.iter().zip(&b) {
        assert_eq!(oa.role, ob.role);
        assert_eq!(ta.shape, tb.shape);
        for (x, y) in ta.data.iter().zip(&tb.data) {
            let same = (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-12 * x.abs().max(1.0);
            assert!(same, "{ta} before, {tb} after\n{before}\n{after}");
        }
    }
}

/// A `.grad` program `src` lowered (before simplification) and simplified.
pub fn lowered_and_simplified(src: &str) -> (Function, Function) {
    let source = crate::diagnostic::Source::new("test.grad", src);
    let c = crate::compile_source(&source, &Default::default()).expect("compiles");
    (c.raw, c.ir)
}

/// The number of loops of `f` (not counting those in loops' bodies).
pub fn loops(f: &Function) -> usize {
    f.insts()
        .iter()
        .filter(|i| matches!(i.op, Op::Loop(_)))
        .count()
}

/// Asserts that the outputs of `before` and `after` at `params` and
/// `inputs` have the same bits.
#[track_caller]
pub fn assert_same_bits_at(
    before: &Function,
    after: &Function,
    params: &[Tensor],
    inputs: &[Tensor],
) {
    let bits = |f: &Function| -> Vec<Vec<u64>> {
        run_outputs(f, params, inputs)
            .expect("runs")
            .into_iter()
            .map(|(_, t)| t.data.iter().map(|x| x.to_bits()).collect())
            .collect()
    };
    assert_eq!(bits(before), bits(after), "{after}");
}

/// Runs `pass` on `before` and checks the output's expression is `after`,
/// the result verifies, and it computes the same numbers.
#[track_caller]
pub fn check(pass: fn(&mut Function) -> bool, before: &str, after: &str) {
    let original = parse(before);
    let mut f = original.clone();
    pass(&mut f);
    if let Err(e) = verify(&f) {
        panic!("invalid IR after the pass: {e}\n{f}");
    }
    assert_eq!(
        sexpr(&f, f.outputs[0].value),
        after,
        "rewriting {before}\n{f}"
    );
    assert_same_outputs(&original, &f);
}

/// A small deterministic generator (xorshift), so tests need no seeds file.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> Option<&'a T> {
        (!xs.is_empty()).then(|| &xs[self.below(xs.len())])
    }
}

/// A random function of `n` instructions over the parameters `a`, `b`
/// (scalars), `x`, `y` ([3]) and `m` ([2, 3]), with constants that trigger
/// the rewrites (0, 1, -1, 2), and three outputs.
pub fn random_function(rng: &mut Rng, n: usize) -> Function {
    let mut f = parse("a");
    f.outputs.clear();
    for name in ["b", "x", "y", "m"] {
        f.params.push(Slot {
            name: name.to_string(),
            shape: param_shape(name),
        });
        let v = f.push(Op::Param(f.params.len() - 1), vec![], Span::default());
        f.set_name(v, name);
    }
    let sp = Span::default();
    let consts = [0.0, 1.0, -1.0, 2.0, 0.5];
    while f.len() < n {
        let all: Vec<Value> = f.values().collect();
        let of = |f: &Function, pred: &dyn Fn(&Shape) -> bool| -> Vec<Value> {
            all.iter().copied().filter(|&v| pred(f.shape(v))).collect()
        };
        let scalars = of(&f, &|s| s.is_scalar());
        let vectors = of(&f, &|s| s.rank() == 1);
        let v3 = of(&f, &|s| s.dims() == [3]);
        let mats = of(&f, &|s| s.rank() == 2);
        let x = *rng.pick(&all).unwrap();
        let (op, args) = match rng.below(13) {
            0 => {
                let c = consts[rng.below(consts.len())];
                (Op::Const(ConstData(Tensor::scalar(c))), vec![])
            }
            1 | 2 => (Op::Unary(UNARY[rng.below(UNARY.len())]), vec![x]),
            3..=5 => {
                let same = of(&f, &|s| s == f.shape(x) || s.is_scalar());
                let y = *rng.pick(&same).unwrap();
                let (x, y) = if rng.below(2) == 0 { (x, y) } else { (y, x) };
                (Op::Binary(BINARY[rng.below(BINARY.len())]), vec![x, y])
            }
            6 => {
                let c = *rng.pick(&scalars).unwrap();
                let same = of(&f, &|s| s == f.shape(x) || s.is_scalar());
                let y = *rng.pick(&same).unwrap();
                (Op::Select, vec![c, x, y])
            }
            7 if f.shape(x).rank() == 2 => {
                // Along one axis, both, or none, and back along them.
                let kinds = [Reduce::Sum, Reduce::Max, Reduce::Norm, Reduce::LogSumExp];
                let axes = [vec![0], vec![1], vec![0, 1], vec![]][rng.below(4)].clone();
                if rng.below(3) == 0 {
                    (Op::ArgMax(rng.below(2)), vec![x])
                } else if rng.below(2) == 0 {
                    let y = f.push(Op::ReduceAxes(Reduce::Sum, axes.clone()), vec![x], sp);
                    (Op::BroadcastAxes(axes, f.shape(x).clone()), vec![y])
                } else {
                    (Op::ReduceAxes(kinds[rng.below(4)], axes), vec![x])
                }
            }
            7 => {
                let red = [Op::Sum, Op::ReduceMax, Op::Norm, Op::LogSumExp];
                (red[rng.below(4)].clone(), vec![x])
            }
            8 => {
                let s = *rng.pick(&scalars).unwrap();
                (Op::Broadcast(Shape::vector(3)), vec![s])
            }
            9 => match (rng.pick(&mats), rng.pick(&v3)) {
                (Some(&m), Some(&v)) if rng.below(2) == 0 => (Op::MatMul, vec![m, v]),
                (Some(&m), _) => (Op::Transpose, vec![m]),
                _ => continue,
            },
            10 => match rng.pick(&v3) {
                Some(&v) if rng.below(2) == 0 => (Op::Slice(vec![SliceAxis::Range(1, 3)]), vec![v]),
                Some(&v) => (
                    Op::Unslice(vec![SliceAxis::At(1)], Shape::vector(3)),
                    vec![*rng.pick(&scalars).unwrap_or(&v)],
                ),
                None => continue,
            },
            11 => match rng.pick(&mats) {
                Some(&m) if rng.below(2) == 0 => (Op::Softmax(rng.below(2)), vec![m]),
                Some(&m) => (Op::LogSoftmax(rng.below(2)), vec![m]),
                None => continue,
            },
            _ => match rng.pick(&vectors) {
                Some(&v) if rng.below(2) == 0 => (Op::Softmax(0), vec![v]),
                Some(&v) => (Op::LogSoftmax(0), vec![v]),
                None => continue,
            },
        };
        let shapes: Vec<&Shape> = args.iter().map(|&a| f.shape(a)).collect();
        if crate::ir::verify::result_shape(&f, &op, &shapes).is_ok() {
            f.push(op, args, sp);
        }
    }
    let last = f.value(f.len() - 1).unwrap();
    let some = f.value(rng.below(f.len())).unwrap();
    let before_last = f.value(f.len() - 2).unwrap();
    for (k, v) in [last, some, before_last].into_iter().enumerate() {
        f.outputs.push(Output {
            role: Role::Output,
            name: format!("o{k}"),
            value: v,
        });
    }
    f
}

/// Whether every value the interpreter computes for `f` is finite.
pub fn all_finite(f: &Function) -> bool {
    match crate::ir::interp::run(f, &sample_params(f), &[]) {
        Ok(values) => values.iter().all(|t| t.data.iter().all(|x| x.is_finite())),
        Err(_) => false,
    }
}
