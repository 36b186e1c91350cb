//! Tests of the train block's `dtype` setting.

use super::tests::{err, ok, with_xy};
use super::*;

#[test]
fn dtype_defaults_to_f64_and_takes_f32() {
    assert_eq!(ok(&with_xy("epochs = 1")).dtype, Dtype::F64);
    assert_eq!(ok(&with_xy("dtype = f64")).dtype, Dtype::F64);
    assert_eq!(
        ok(&with_xy("dtype = f32  optimizer = adam")).dtype,
        Dtype::F32
    );
    assert_eq!(
        ok("param x = 1\nloss x^2\ntrain { dtype = f32 }").dtype,
        Dtype::F32
    );
}

#[test]
fn an_unknown_dtype_is_located_with_a_suggestion() {
    let (d, at) = err(&with_xy("dtype = f3"));
    assert_eq!(d.message, "unknown dtype `f3`");
    assert_eq!(at, "f3");
    assert_eq!(d.hint.as_deref(), Some("did you mean `f32`?"));
    let (d, at) = err(&with_xy("dtype = bfloat16"));
    assert_eq!(d.message, "unknown dtype `bfloat16`");
    assert_eq!(at, "bfloat16");
    assert!(d.hint.unwrap().contains("`f64` (the default) or `f32`"));
    let (d, at) = err(&with_xy("dtype = 32"));
    assert_eq!(
        d.message,
        "`dtype` expects `f64` or `f32`, found the number 32"
    );
    assert_eq!(at, "32");
}

#[test]
fn f32_is_not_for_the_full_batch_methods() {
    let (d, at) = err(&with_xy("optimizer = lbfgs  dtype = f32"));
    assert_eq!(d.message, "`lbfgs` is a full-batch method and runs in f64");
    assert_eq!(at, "f32");
    assert!(d.hint.unwrap().contains("first-order"));
    // f64 is fine with them.
    assert_eq!(
        ok(&with_xy("optimizer = lbfgs  dtype = f64")).dtype,
        Dtype::F64
    );
}
