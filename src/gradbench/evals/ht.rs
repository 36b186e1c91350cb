//! `ht`: GradBench's input (the pose `theta`, the hand model and the data
//! under `data`, and `us`, empty in the simple variant) read into the
//! program's values. Its Jacobian, a row an error, is the program's `J`
//! (each error's derivatives in its point's two `us`, then in the 26
//! numbers of the pose) in the complicated variant, `J_pose` (the pose's
//! alone) in the simple one.
//!
//! The program computes the complicated variant; the simple one is that
//! variant with each point on a triangle of three times its vertex, at
//! us = (1, 0), which gives that vertex exactly, its Jacobian the
//! program's `J_pose` (the pose's columns alone).

use serde_json::Value;

use super::{count, Point};
use crate::shape::{Shape, Tensor};

/// The pose's numbers: ADBench's layout, for its hand of 22 bones.
const POSE: usize = 26;
const BONES: usize = 22;

pub fn read(input: &Value) -> Result<Point, String> {
    let data = field(input, "data")?;
    let model = field(data, "model")?;
    let b = count(model, "bone_count")?;
    if b != BONES {
        return Err(format!(
            "`bone_count` is {b}: the pose's 26 numbers are laid out for ADBench's hand of {BONES} bones"
        ));
    }
    let theta = tensor(field(input, "theta")?, "theta", &[POSE])?;
    let (v, _) = rows(model, "base_positions")?;
    let (k, _) = rows(data, "points")?;
    let corr = tensor(field(data, "correspondences")?, "correspondences", &[k])?;
    let us = field(input, "us")?;
    let simple = us.as_array().is_some_and(Vec::is_empty);
    let (triangles, corr, us) = if simple {
        // Each point on its vertex's degenerate triangle, at its first corner.
        let tri = corr.data.iter().flat_map(|&c| [c; 3]).collect();
        let ones = (0..k).flat_map(|_| [1.0, 0.0]).collect();
        (
            Tensor::new(Shape::matrix(k, 3), tri),
            Tensor::new(Shape::vector(k), (0..k).map(|i| i as f64).collect()),
            Tensor::new(Shape::matrix(k, 2), ones),
        )
    } else {
        let (t, _) = rows(model, "triangles")?;
        (
            tensor(field(model, "triangles")?, "triangles", &[t, 3])?,
            corr,
            tensor(us, "us", &[k, 2])?,
        )
    };
    let mirrored = field(model, "is_mirrored")?
        .as_bool()
        .ok_or("`is_mirrored` must be true or false")?;
    let t = triangles.shape.dims()[0];
    let m = |name: &str, shape: &[usize]| tensor(field(model, name)?, name, shape);
    Ok(Point {
        // The simple variant's Jacobian without the `us` columns.
        answers: simple.then_some("J_pose"),
        dims: vec![
            ("B".into(), b),
            ("V".into(), v),
            ("T".into(), t),
            ("K".into(), k),
        ],
        values: vec![
            ("theta", theta),
            ("us", us),
            ("base_relatives", m("base_relatives", &[b, 4, 4])?),
            (
                "inverse_base_absolutes",
                m("inverse_base_absolutes", &[b, 4, 4])?,
            ),
            ("base_positions", m("base_positions", &[v, 4])?),
            ("weights", m("weights", &[v, b])?),
            ("parents", m("parents", &[b])?),
            ("mirror", Tensor::scalar(if mirrored { -1.0 } else { 1.0 })),
            ("points", tensor(field(data, "points")?, "points", &[k, 3])?),
            ("correspondences", corr),
            ("triangles", triangles),
            ("simple", Tensor::scalar(if simple { 1.0 } else { 0.0 })),
        ],
    })
}

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a Value, String> {
    v.get(name)
        .ok_or_else(|| format!("the input has no `{name}`"))
}

/// The number of rows of an array of rows, and the length of the first.
fn rows(v: &Value, name: &str) -> Result<(usize, usize), String> {
    let items = field(v, name)?
        .as_array()
        .ok_or_else(|| format!("`{name}` must be an array"))?;
    let first = items.first().and_then(Value::as_array).map_or(0, Vec::len);
    if items.is_empty() {
        return Err(format!("`{name}` is empty"));
    }
    Ok((items.len(), first))
}

/// Nested arrays of numbers of exactly `shape`, row-major.
fn tensor(v: &Value, name: &str, shape: &[usize]) -> Result<Tensor, String> {
    fn walk(v: &Value, name: &str, shape: &[usize], out: &mut Vec<f64>) -> Result<(), String> {
        match shape.split_first() {
            None => {
                out.push(
                    v.as_f64()
                        .ok_or_else(|| format!("`{name}` must be a number, not {v}"))?,
                );
                Ok(())
            }
            Some((&n, rest)) => {
                let items = v
                    .as_array()
                    .ok_or_else(|| format!("`{name}` must be an array"))?;
                if items.len() != n {
                    return Err(format!("`{name}` has {} elements, not {n}", items.len()));
                }
                for (i, item) in items.iter().enumerate() {
                    walk(item, &format!("{name}[{i}]"), rest, out)?;
                }
                Ok(())
            }
        }
    }
    let mut data = Vec::new();
    walk(v, name, shape, &mut data)?;
    Ok(Tensor::new(Shape(shape.to_vec()), data))
}
