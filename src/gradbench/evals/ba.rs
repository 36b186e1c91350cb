//! `ba`: GradBench's input (one camera, point, weight and feature, each
//! repeated: `n` cameras, `m` points, `p` observations, observation i seeing
//! point i mod m with camera i mod n, as ADBench's generator) read into the
//! program's values, and its answers: the errors as GradBench abbreviates
//! them (the first observation's, and how often they repeat), the Jacobian
//! as ADBench's sparse matrix (compressed rows: `rows` the start of each
//! row in `cols` and `vals`).

use serde_json::{json, Value};

use super::{count, number, sized, vector, Point};
use crate::shape::{Shape, Tensor};

/// A camera's numbers: rotation, centre, focal length, principal point,
/// radial distortion.
pub const CAMERA: usize = 11;

/// The numbers each observation's block holds: its two residuals' 15
/// derivatives (camera, point, weight), then its weight error's.
const BLOCK: usize = 2 * (CAMERA + 3 + 1) + 1;

pub fn read(input: &Value) -> Result<Point, String> {
    let (n, m, p) = (count(input, "n")?, count(input, "m")?, count(input, "p")?);
    let cam = sized(vector(input, "cam")?, CAMERA, "cam")?;
    let x = sized(vector(input, "x")?, 3, "x")?;
    let feat = sized(vector(input, "feat")?, 2, "feat")?;
    let w = number(input, "w")?;
    let repeat = |one: &[f64], times: usize| one.repeat(times);
    let index = |of: usize| (0..p).map(|i| (i % of) as f64).collect();
    Ok(Point {
        answers: None,
        dims: vec![("N".into(), n), ("M".into(), m), ("P".into(), p)],
        values: vec![
            (
                "cams",
                Tensor::new(Shape::matrix(n, CAMERA), repeat(&cam, n)),
            ),
            ("X", Tensor::new(Shape::matrix(m, 3), repeat(&x, m))),
            ("w", Tensor::new(Shape::vector(p), vec![w; p])),
            ("feats", Tensor::new(Shape::matrix(p, 2), repeat(&feat, p))),
            ("cam_of", Tensor::new(Shape::vector(p), index(n))),
            ("point_of", Tensor::new(Shape::vector(p), index(m))),
        ],
    })
}

/// The sizes `(n, m, p)` of a point.
fn sizes(point: &Point) -> (usize, usize, usize) {
    let size = |name: &str| {
        point
            .dims
            .iter()
            .find(|(d, _)| d == name)
            .map_or(0, |(_, v)| *v)
    };
    (size("N"), size("M"), size("P"))
}

/// The errors (`err`: the 2p reprojection errors, then the p weight
/// errors) as GradBench answers them: the first observation's, repeated.
pub fn objective(err: &Tensor, point: &Point) -> Result<Value, String> {
    let (_, _, p) = sizes(point);
    Ok(json!({
        "reproj_error": { "elements": [err.data[0], err.data[1]], "repeated": p },
        "w_err": { "element": err.data[2 * p], "repeated": p },
    }))
}

/// The Jacobian (`jac`: each observation's block) as ADBench's sparse
/// matrix: rows 2i and 2i + 1 observation i's residuals (its camera's 11
/// columns, its point's 3, its weight's), then row 2p + i its weight error
/// (its weight's column); the columns the cameras', the points', the
/// weights'.
pub fn jacobian(jac: &Tensor, point: &Point) -> Result<Value, String> {
    let (n, m, p) = sizes(point);
    let (points, weights) = (CAMERA * n, CAMERA * n + 3 * m);
    let mut rows = vec![0usize];
    let mut cols = Vec::with_capacity(p * BLOCK);
    let mut vals = Vec::with_capacity(p * BLOCK);
    for (i, block) in jac.data.chunks(BLOCK).enumerate() {
        let (camera, pt) = (i % n, i % m);
        for residual in block[..BLOCK - 1].chunks(CAMERA + 4) {
            cols.extend((0..CAMERA).map(|k| CAMERA * camera + k));
            cols.extend((0..3).map(|k| points + 3 * pt + k));
            cols.push(weights + i);
            vals.extend_from_slice(residual);
            rows.push(cols.len());
        }
    }
    for (i, block) in jac.data.chunks(BLOCK).enumerate() {
        cols.push(weights + i);
        vals.push(block[BLOCK - 1]);
        rows.push(cols.len());
    }
    Ok(json!({ "rows": rows, "cols": cols, "vals": vals }))
}
