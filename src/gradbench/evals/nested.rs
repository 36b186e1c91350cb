//! `saddle` and `particle`: nested derivatives in gradient descents
//! (programs `gradbench/saddle.grad` and `gradbench/particle.grad`). Each of
//! the four functions is an `output` of the program: the answer, then a
//! last element that is 1 when every loop of the program stopped by
//! GradBench's rule within its fixed number of steps, and 0 when one ran
//! out of steps, which is refused rather than answered.

use serde_json::Value;

use super::{numbers, Point};
use crate::gradbench::nested;
use crate::shape::{Shape, Tensor};

/// The functions: the argmin's mode, then the inner derivative's (`f`
/// forward, `r` reverse).
pub const MODES: &[&str] = &["ff", "fr", "rf", "rr"];

/// `saddle`: `start`, two numbers.
pub fn read_saddle(input: &Value) -> Result<Point, String> {
    let start = input
        .get("start")
        .ok_or_else(|| "the input has no `start`".to_string())?;
    let start = numbers(start, "start")?;
    if start.len() != 2 {
        return Err(format!("`start` has {} elements, not 2", start.len()));
    }
    Ok(Point {
        answers: None,
        dims: Vec::new(),
        values: vec![("start", Tensor::new(Shape::vector(2), start))],
    })
}

/// `particle`: `w`, a number.
pub fn read_particle(input: &Value) -> Result<Point, String> {
    let w = match input.get("w") {
        Some(v) => v
            .as_f64()
            .ok_or_else(|| format!("`w` must be a number, not {v}"))?,
        None => return Err("the input has no `w`".to_string()),
    };
    Ok(Point {
        answers: None,
        dims: Vec::new(),
        values: vec![("w0", Tensor::scalar(w))],
    })
}

/// The answer without its last element (a number when one remains), or
/// why there is none: a loop that did not stop by its rule.
pub fn converged(t: &Tensor, _: &Point) -> Result<Value, String> {
    let (&flag, answer) = t.data.split_last().expect("an answer and its flag");
    if flag != 1.0 {
        return Err(
            "a gradient descent or the integration did not stop by GradBench's rule within the program's fixed number of steps (its `dim`s STEPS and EULER): no answer rather than one that has not converged"
                .to_string(),
        );
    }
    Ok(match answer {
        [x] => serde_json::json!(x),
        _ => nested(&Tensor::new(Shape::vector(answer.len()), answer.to_vec())),
    })
}
