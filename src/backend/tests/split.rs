//! A function of one example built in parts and compiled on several threads
//! (`workers`, `translate::single`), and a loop's body in pieces
//! (`translate::body_parts`): the same bits as whole, whatever the parts;
//! a fault in a later part, or piece, is the interpreter's; a build that
//! fails leaves no thread waiting.

use std::sync::mpsc;
use std::time::Duration;

use cranelift_codegen::ir::{self as cl, InstBuilder, UserFuncName};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::Module;

use super::*;
use crate::backend::workers::Built;
use crate::types::dims::DimOptions;
use crate::types::CheckOptions;

/// A program's name, its source and its sizes.
type Program = (&'static str, &'static str, &'static [(&'static str, usize)]);

/// GradBench's programs at small sizes, their gradient programs in parts of
/// about `insts` Cranelift instructions: several parts each, and the bits
/// of the whole function and of the interpreter, on both the sequential
/// path (one thread) and two threads.
#[test]
fn gradbench_programs_in_parts_compute_the_same_bits() {
    let programs: [Program; 4] = [
        (
            "gmm",
            include_str!("../../../gradbench/gmm.grad"),
            &[("N", 6), ("D", 3), ("K", 2)],
        ),
        (
            "lstm",
            include_str!("../../../gradbench/lstm.grad"),
            &[("L", 2), ("B", 3), ("C", 4)],
        ),
        (
            "det",
            include_str!("../../../gradbench/det.grad"),
            &[("L", 4), ("P", 16)],
        ),
        (
            "ode",
            include_str!("../../../gradbench/ode.grad"),
            &[("N", 5), ("S", 3)],
        ),
    ];
    for (name, src, dims) in programs {
        let opts = CheckOptions {
            dims: DimOptions {
                flags: dims.iter().map(|&(d, n)| (d.to_string(), n)).collect(),
                data_dir: None,
            },
            ..CheckOptions::default()
        };
        let compiled = crate::compile_with(src, &opts).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let g = compiled.gradient().unwrap();
        // Ordinary numbers (odd salts leave out the special values).
        let params = tensors(&g, true, 101);
        let inputs = tensors(&g, false, 201);
        let want = interp::run_outputs(&g, &params, &inputs).expect("the interpreter runs");
        let whole = jit::compile_with(&g, Split::WHOLE).unwrap();
        assert_eq!(whole.parts(), 1, "{name}");
        same_outputs(&g, &want, &whole.run(&params, &inputs).unwrap());
        for split in [
            Split {
                insts: 100,
                threads: 1,
            },
            Split {
                insts: 100,
                threads: 2,
            },
            EVERY_STEP,
        ] {
            let jit = jit::compile_with(&g, split).unwrap();
            let functions = jit.parts() + jit.pieces();
            assert!(functions >= 3, "{name}: {functions} parts and pieces");
            same_outputs(&g, &want, &jit.run(&params, &inputs).unwrap());
        }
    }
}

/// A class index out of range in a later part than a scalar and an output
/// it reads: the interpreter's fault, at the instruction; in range, the
/// interpreter's bits.
#[test]
fn a_fault_in_a_later_part_is_the_interpreters() {
    let (mut f, p, x) = function(&[Shape::vector(3)], &[Shape::scalar()]);
    let s = push(&mut f, Op::Sum, &[p[0]]);
    let e = push(&mut f, Op::Unary(Unary::Exp), &[p[0]]);
    output(&mut f, e);
    let o = push(&mut f, Op::OneHot(3), &[x[0]]);
    let b = push(&mut f, Op::Broadcast(Shape::vector(3)), &[s]);
    let y = push(&mut f, Op::Binary(Binary::Mul), &[o, b]);
    output(&mut f, y);
    let jit = jit::compile_with(&f, EVERY_STEP).unwrap();
    assert!(jit.parts() >= 3, "{} parts", jit.parts());
    let params = [Tensor::new(Shape::vector(3), vec![0.5, -1.0, 2.0])];
    for class in [0.0, 2.0, 3.0, -1.0, 1.5] {
        let inputs = [Tensor::scalar(class)];
        match interp::run_outputs(&f, &params, &inputs) {
            Ok(want) => same_outputs(&f, &want, &jit.run(&params, &inputs).unwrap()),
            Err(want) => {
                assert!(matches!(want, RunError::Fault { at, .. } if at == o));
                assert_eq!(jit.run(&params, &inputs).unwrap_err(), want, "{class}");
            }
        }
    }
}

/// A loop whose body reads a captured scalar, carries a vector and a
/// scalar and fails at a step whose class is out of range, then a
/// comprehension (a loop of stacked rows) reading both results: with the
/// bodies in pieces of one step each, and of about 100 instructions, the
/// interpreter's bits or its fault, at the loop, for the forward function
/// and the gradient.
#[test]
fn a_loops_body_in_pieces_computes_the_same_bits_and_faults() {
    let src = "dim N
param w: [N]
input x: [N]
input c
let s = sum(x * x)
let (h, t) = loop (a, t) = (w, 0) for i in 0..3 {
  let y = tanh(a * s + x)
  let z = exp(y) / sum(exp(y))
  (a + z * one_hot(c + i, N), t + sum(z * a) * s)
}
let cols = [h * (k + t) + sum(h[0:2]) * k for k in 0..3]
output last = h
output total = t
output columns = cols
loss sum(h) + t + sum(cols)
";
    let n = 5;
    let opts = CheckOptions {
        dims: DimOptions {
            flags: vec![("N".to_string(), n)],
            data_dir: None,
        },
        ..CheckOptions::default()
    };
    let compiled = crate::compile_with(src, &opts).unwrap();
    let gradient = compiled.gradient().unwrap();
    let params = [Tensor::new(
        Shape::vector(n),
        vec![0.5, -1.0, 2.0, 0.25, -0.75],
    )];
    let x = Tensor::new(Shape::vector(n), vec![0.3, -0.2, 0.1, 0.7, -0.4]);
    for f in [&compiled.ir, &gradient] {
        // (Each split, and the fewest pieces it makes.)
        for (split, least) in [
            (EVERY_STEP, 2),
            (
                Split {
                    insts: 100,
                    threads: 1,
                },
                1,
            ),
        ] {
            let jit = jit::compile_with(f, split).unwrap();
            assert!(jit.pieces() >= least, "{} pieces", jit.pieces());
            // In range at every step up to class n - 3; then out of range
            // at the last step (n - 2), the second (n - 1) or the first (-1,
            // and 0.5, not a whole number).
            for class in [0.0, 1.0, 2.0, 3.0, 4.0, -1.0, 0.5] {
                let mut inputs = vec![x.clone(), Tensor::scalar(class)];
                inputs.truncate(f.inputs.len());
                match interp::run_outputs(f, &params, &inputs) {
                    Ok(want) => same_outputs(f, &want, &jit.run(&params, &inputs).unwrap()),
                    Err(want) => {
                        assert!(matches!(want, RunError::Fault { .. }), "{want:?}");
                        assert_eq!(jit.run(&params, &inputs).unwrap_err(), want, "{class}");
                    }
                }
            }
        }
    }
}

/// A function that returns 0, of the entry's signature.
fn empty_part(code: &mut jit::Code) -> cl::Function {
    let sig = abi::entry_signature(code.module());
    let config = code.module().target_config();
    let mut func = cl::Function::with_name_signature(UserFuncName::default(), sig);
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut func, &mut fctx);
    translate::enter(&mut b);
    let zero = b.ins().iconst(cl::types::I64, 0);
    b.ins().return_(&[zero]);
    b.seal_all_blocks();
    b.finalize(config);
    func
}

/// A build that fails, or panics, after handing over a part that has a
/// successor (so a helper waits for it): the failure, or the panic, comes
/// back, and no helper is left waiting for the parts that will not come.
#[test]
fn a_build_that_fails_leaves_no_helper_waiting() {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let mut code = jit::Code::new().unwrap();
        let isa = code.isa();
        let split = Split {
            insts: 1,
            threads: 2,
        };
        let first = empty_part(&mut code);
        let failed = workers::compiled(split, &*isa, |emit| {
            emit(Built::Part(first, true));
            Err("no second part".to_string())
        });
        let second = empty_part(&mut code);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            workers::compiled(split, &*isa, |emit| {
                emit(Built::Part(second, true));
                panic!("no second part");
            })
        }));
        done.send((failed.err(), panicked.is_err())).unwrap();
    });
    let (failed, panicked) = finished
        .recv_timeout(Duration::from_secs(60))
        .expect("the builds come back");
    assert_eq!(failed.as_deref(), Some("no second part"));
    assert!(panicked);
}
