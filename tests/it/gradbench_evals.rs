//! `gradc gradbench`'s evals with loops (`ode`, `lstm`) and after them,
//! replayed from `tests/gradbench/` as in `gradbench.rs`: each primal
//! output checked against the eval's definition written in Rust (here, or in
//! `reference.rs`), each gradient against central finite differences of that
//! definition (the JIT against the interpreter is checked there for every
//! recorded file).

use serde_json::Value;

use gradc::eval::Backend;

use crate::gradbench::{assert_close, central, evaluations, floats, respond};
use crate::reference::lstm;

/// `ode`'s final state: GradBench's C++ reference, step for step (RK4 to
/// t = 2 in `s` steps, y_0' = x_0, y_i' = x_i y_{i-1}).
fn ode(x: &[f64], s: usize) -> Vec<f64> {
    let n = x.len();
    let f = |y: &[f64]| -> Vec<f64> {
        (0..n)
            .map(|i| if i == 0 { x[0] } else { x[i] * y[i - 1] })
            .collect()
    };
    let h = 2.0 / s as f64;
    let mut y = vec![0.0; n];
    for _ in 0..s {
        let k1 = f(&y);
        let k2 = f(&(0..n).map(|i| y[i] + h * k1[i] / 2.0).collect::<Vec<_>>());
        let k3 = f(&(0..n).map(|i| y[i] + h * k2[i] / 2.0).collect::<Vec<_>>());
        let k4 = f(&(0..n).map(|i| y[i] + h * k3[i]).collect::<Vec<_>>());
        for i in 0..n {
            y[i] += h * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]) / 6.0;
        }
    }
    y
}

#[test]
fn ode_is_cmpads_runge_kutta_solution() {
    let evals = evaluations("ode.jsonl");
    assert!(evals.len() >= 6, "{} evaluations", evals.len());
    for (function, input, output) in evals {
        let x = floats(&input["x"]);
        let s = input["s"].as_u64().unwrap() as usize;
        let got = floats(&output);
        if function == "primal" {
            assert_close(&got, &ode(&x, s), 1e-12, "primal");
        } else {
            let last = |x: &[f64]| *ode(x, s).last().unwrap();
            assert_close(&got, &central(&last, &x), 1e-6, "gradient");
        }
    }
}

/// The output's shape is the input's: a vector for a vector.
#[test]
fn odes_outputs_are_vectors_of_xs_length() {
    for (_, input, output) in evaluations("ode.jsonl") {
        let len = input["x"].as_array().unwrap().len();
        assert_eq!(output.as_array().map(Vec::len), Some(len), "{output}");
        assert!(output.as_array().unwrap().iter().all(Value::is_f64));
    }
}

#[test]
fn lstm_is_adbenchs_diagonal_lstm() {
    let evals = evaluations("lstm.jsonl");
    assert!(evals.len() >= 6, "{} evaluations", evals.len());
    for (function, input, output) in evals {
        let rows = |name: &str| input[name].as_array().unwrap().len();
        let l = rows("main_params") / 2;
        let b = input["extra_params"][0].as_array().unwrap().len();
        let (main, extra) = (
            floats(&input["main_params"]),
            floats(&input["extra_params"]),
        );
        let (state, seq) = (floats(&input["state"]), floats(&input["sequence"]));
        // The objective at the parameters `p`: main's elements, then extra's.
        let at = |p: &[f64]| {
            let (m, e) = p.split_at(main.len());
            lstm(m, e, &state, &seq, l, b)
        };
        let flat: Vec<f64> = main.iter().chain(&extra).copied().collect();
        if function == "objective" {
            assert_close(
                &[output.as_f64().unwrap()],
                &[at(&flat)],
                1e-12,
                "objective",
            );
        } else {
            // One flat vector, main's gradient row by row then extra's.
            assert!(output.as_array().unwrap().iter().all(Value::is_f64));
            assert_close(&floats(&output), &central(&at, &flat), 1e-6, "jacobian");
        }
    }
}

/// The determinant by expansion by minors, as cmpad's recursion: along the
/// first row, column by column, signs alternating.
fn det_by_minors(a: &[f64], ell: usize, rows: &[usize], cols: &[usize]) -> f64 {
    if cols.len() == 1 {
        return a[rows[0] * ell + cols[0]];
    }
    let mut det = 0.0;
    for (j, &c) in cols.iter().enumerate() {
        let rest: Vec<usize> = cols.iter().copied().filter(|&x| x != c).collect();
        let term = a[rows[0] * ell + c] * det_by_minors(a, ell, &rows[1..], &rest);
        det = if j % 2 == 0 { det + term } else { det - term };
    }
    det
}

#[test]
fn det_is_the_determinant_by_minors() {
    let evals = evaluations("det.jsonl");
    assert!(evals.len() >= 8, "{} evaluations", evals.len());
    for (function, input, output) in evals {
        let ell = input["ell"].as_u64().unwrap() as usize;
        let all: Vec<usize> = (0..ell).collect();
        let det = |a: &[f64]| det_by_minors(a, ell, &all, &all);
        let a = floats(&input["A"]);
        if function == "primal" {
            // The same sums in the same order: the same bits.
            assert_eq!(
                output.as_f64().unwrap().to_bits(),
                det(&a).to_bits(),
                "{output}"
            );
        } else {
            assert_eq!(output.as_array().unwrap().len(), ell * ell);
            assert_close(&floats(&output), &central(&det, &a), 1e-6, "gradient");
        }
    }
}

/// The gradient of the determinant is the cofactor matrix: det(A) A^-T,
/// here for a 3 x 3 matrix against its adjugate written out.
#[test]
fn dets_gradient_is_the_cofactor_matrix() {
    let evals = evaluations("det.jsonl");
    let (_, input, output) = evals
        .iter()
        .find(|(f, i, _)| f == "gradient" && i["ell"] == 3)
        .unwrap();
    let a = floats(&input["A"]);
    let m = |r: usize, c: usize| a[r * 3 + c];
    let cofactor = |r: usize, c: usize| {
        let (r1, r2) = ((r + 1) % 3, (r + 2) % 3);
        let (c1, c2) = ((c + 1) % 3, (c + 2) % 3);
        m(r1, c1) * m(r2, c2) - m(r1, c2) * m(r2, c1)
    };
    let want: Vec<f64> = (0..9).map(|k| cofactor(k / 3, k % 3)).collect();
    assert_close(&floats(output), &want, 1e-12, "cofactor");
}

/// A matrix too large for the table of minors is refused with the reason.
#[test]
fn a_det_too_large_is_refused_with_the_reason() {
    let message = serde_json::json!({"id": 0, "kind": "evaluate", "module": "det",
        "function": "primal", "input": {"A": vec![0.5; 17 * 17], "ell": 17}});
    let responses = respond(&message.to_string(), Backend::Jit);
    assert_eq!(responses[0]["success"], false, "{}", responses[0]);
    let error = responses[0]["error"].as_str().unwrap();
    assert!(
        error.contains("`ell` is 17") && error.contains("16"),
        "{error}"
    );
}

/// `kmeans`' cost by its definition: each point's squared distance to its
/// nearest centroid (`c` and `p` rows of `d` numbers), summed.
fn kmeans_cost(c: &[f64], p: &[f64], d: usize) -> f64 {
    p.chunks(d)
        .map(|pi| {
            c.chunks(d)
                .map(|cj| {
                    cj.iter()
                        .zip(pi)
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum::<f64>()
                })
                .fold(f64::INFINITY, f64::min)
        })
        .sum()
}

/// The Newton direction written out: the gradient of a centroid's cost,
/// 2 sum (c - p) over its points, over the Hessian's diagonal, 2 times its
/// count of points; that is, the centroid minus its points' mean.
fn kmeans_dir(c: &[f64], p: &[f64], d: usize) -> Vec<f64> {
    let k = c.len() / d;
    let (mut sum, mut count) = (vec![0.0; c.len()], vec![0.0; k]);
    for pi in p.chunks(d) {
        let dist = |j: usize| -> f64 { (0..d).map(|e| (c[j * d + e] - pi[e]).powi(2)).sum() };
        let nearest = (0..k).min_by(|&a, &b| dist(a).total_cmp(&dist(b))).unwrap();
        count[nearest] += 1.0;
        (0..d).for_each(|e| sum[nearest * d + e] += pi[e]);
    }
    (0..c.len()).map(|i| c[i] - sum[i] / count[i / d]).collect()
}

#[test]
fn kmeans_is_the_cost_to_the_nearest_centroid_and_its_newton_direction() {
    let evals = evaluations("kmeans.jsonl");
    assert!(evals.len() >= 8, "{} evaluations", evals.len());
    for (function, input, output) in evals {
        let d = input["points"][0].as_array().unwrap().len();
        let (c, p) = (floats(&input["centroids"]), floats(&input["points"]));
        let cost = |c: &[f64]| kmeans_cost(c, &p, d);
        if function == "cost" {
            assert_close(&[output.as_f64().unwrap()], &[cost(&c)], 1e-12, "cost");
            continue;
        }
        // Rows of d numbers, one a centroid.
        let rows = output.as_array().unwrap();
        assert_eq!(rows.len(), c.len() / d);
        assert!(rows.iter().all(|r| r.as_array().unwrap().len() == d));
        let got = floats(&output);
        assert_close(&got, &kmeans_dir(&c, &p, d), 1e-9, "dir");
        // The gradient over the Hessian's diagonal, both by central
        // differences of the cost (exact for a quadratic but for rounding).
        let h = 1e-3;
        let second = |i: usize| {
            let (mut up, mut down) = (c.to_vec(), c.to_vec());
            up[i] += h;
            down[i] -= h;
            (cost(&up) - 2.0 * cost(&c) + cost(&down)) / (h * h)
        };
        let want: Vec<f64> = central(&cost, &c)
            .iter()
            .enumerate()
            .map(|(i, g)| g / second(i))
            .collect();
        assert_close(&got, &want, 1e-6, "dir by differences");
    }
}

/// A centroid nearest to no point has no Newton direction (0 / 0): the
/// answer is a failure with the reason, not a null.
#[test]
fn a_kmeans_direction_that_is_not_finite_is_refused() {
    let message = serde_json::json!({"id": 0, "kind": "evaluate", "module": "kmeans",
        "function": "dir", "input": {"points": [[0.0, 0.0], [1.0, 1.0]],
        "centroids": [[0.0, 0.0], [9.0, 9.0]]}});
    let responses = respond(&message.to_string(), Backend::Jit);
    assert_eq!(responses[0]["success"], false, "{}", responses[0]);
    let error = responses[0]["error"].as_str().unwrap();
    assert!(error.contains("not finite"), "{error}");
}

/// ADBench's bundle-adjustment residual of one observation: `w` times the
/// projection of point `x` by camera `cam` (Rodrigues' rotation about the
/// camera's centre, perspective division, radial distortion, focal length
/// and principal point) minus the feature.
fn ba_residual(cam: &[f64], x: &[f64], w: f64, feat: &[f64]) -> [f64; 2] {
    let cross = |a: &[f64], b: &[f64]| {
        [
            a[1] * b[2] - a[2] * b[1],
            a[2] * b[0] - a[0] * b[2],
            a[0] * b[1] - a[1] * b[0],
        ]
    };
    let rot = &cam[0..3];
    let v: Vec<f64> = (0..3).map(|i| x[i] - cam[3 + i]).collect();
    let sq: f64 = rot.iter().map(|r| r * r).sum();
    let y: Vec<f64> = if sq != 0.0 {
        let theta = sq.sqrt();
        let k: Vec<f64> = rot.iter().map(|r| r / theta).collect();
        let kx = cross(&k, &v);
        let dot: f64 = (0..3).map(|i| k[i] * v[i]).sum();
        (0..3)
            .map(|i| v[i] * theta.cos() + kx[i] * theta.sin() + k[i] * dot * (1.0 - theta.cos()))
            .collect()
    } else {
        let rx = cross(rot, &v);
        (0..3).map(|i| v[i] + rx[i]).collect()
    };
    let p = [y[0] / y[2], y[1] / y[2]];
    let rsq = p[0] * p[0] + p[1] * p[1];
    let l = 1.0 + cam[9] * rsq + cam[10] * rsq * rsq;
    [0, 1].map(|i| w * (p[i] * l * cam[6] + cam[7 + i] - feat[i]))
}

#[test]
fn ba_is_adbenchs_bundle_adjustment_with_its_sparse_jacobian() {
    let evals = evaluations("ba.jsonl");
    assert!(evals.len() >= 6, "{} evaluations", evals.len());
    for (function, input, output) in evals {
        let size = |name: &str| input[name].as_u64().unwrap() as usize;
        let (n, m, p) = (size("n"), size("m"), size("p"));
        let (cam, x, feat) = (
            floats(&input["cam"]),
            floats(&input["x"]),
            floats(&input["feat"]),
        );
        let w = input["w"].as_f64().unwrap();
        if function == "objective" {
            let r = output["reproj_error"]["elements"].clone();
            assert_close(
                &floats(&r),
                &ba_residual(&cam, &x, w, &feat),
                1e-12,
                "reproj_error",
            );
            assert_eq!(output["reproj_error"]["repeated"], p);
            let werr = output["w_err"]["element"].as_f64().unwrap();
            assert_close(&[werr], &[1.0 - w * w], 1e-15, "w_err");
            assert_eq!(output["w_err"]["repeated"], p);
            continue;
        }
        let ints = |name: &str| -> Vec<usize> {
            output[name]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect()
        };
        let (rows, cols, vals) = (ints("rows"), ints("cols"), floats(&output["vals"]));
        // Two rows of 15 an observation, then one a weight.
        let mut want_rows = vec![0];
        want_rows.extend((1..=2 * p).map(|r| 15 * r));
        want_rows.extend((1..=p).map(|r| 30 * p + r));
        assert_eq!(rows, want_rows);
        // The derivatives in the observation's camera, point and weight, by
        // central differences of the residual in those 15 numbers.
        let at = |v: &[f64], k: usize| ba_residual(&v[0..11], &v[11..14], v[14], &feat)[k];
        let mut v = cam.clone();
        v.extend(&x);
        v.push(w);
        for i in 0..p {
            let columns: Vec<usize> = (0..11)
                .map(|c| 11 * (i % n) + c)
                .chain((0..3).map(|c| 11 * n + 3 * (i % m) + c))
                .chain([11 * n + 3 * m + i])
                .collect();
            for k in 0..2 {
                let row = 2 * i + k;
                assert_eq!(cols[rows[row]..rows[row + 1]], columns[..], "row {row}");
                let got = &vals[rows[row]..rows[row + 1]];
                assert_close(got, &central(&|v| at(v, k), &v), 1e-6, "reprojection row");
            }
            let row = 2 * p + i;
            assert_eq!(cols[rows[row]..rows[row + 1]], [11 * n + 3 * m + i]);
            assert_close(
                &vals[rows[row]..rows[row + 1]],
                &[-2.0 * w],
                1e-12,
                "weight row",
            );
        }
    }
}

/// A camera of the wrong length is refused with the reason.
#[test]
fn a_ba_camera_of_the_wrong_length_is_refused() {
    let message = serde_json::json!({"id": 0, "kind": "evaluate", "module": "ba",
        "function": "objective", "input": {"n": 1, "m": 1, "p": 1, "cam": vec![0.1; 10],
        "x": [0.0, 0.0, 1.0], "w": 1.0, "feat": [0.0, 0.0]}});
    let responses = respond(&message.to_string(), Backend::Jit);
    assert_eq!(responses[0]["success"], false, "{}", responses[0]);
    let error = responses[0]["error"].as_str().unwrap();
    assert!(error.contains("`cam` has 10 elements, not 11"), "{error}");
}

type M4 = [[f64; 4]; 4];

fn mul4(a: &M4, b: &M4) -> M4 {
    let mut c = [[0.0; 4]; 4];
    for i in 0..4 {
        for j in 0..4 {
            c[i][j] = (0..4).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    c
}

fn mul3(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut c = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            c[i][j] = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    c
}

/// ADBench's hand-tracking errors (its C++ definition) of an `ht` input at
/// the pose `theta` and, when `us` is not empty, the complicated variant.
fn ht_errors(input: &Value, theta: &[f64], us: &[f64]) -> Vec<f64> {
    let model = &input["data"]["model"];
    let m4 = |v: &Value| -> M4 {
        let f = floats(v);
        std::array::from_fn(|i| std::array::from_fn(|j| f[4 * i + j]))
    };
    let list = |v: &Value| v.as_array().unwrap().clone();
    let bones = model["bone_count"].as_u64().unwrap() as usize;
    // The pose: global rotation, scale, translation, then each bone's angles.
    let mut pose = vec![[0.0; 3]; bones + 3];
    pose[0].copy_from_slice(&theta[0..3]);
    pose[1] = [1.0; 3];
    pose[2].copy_from_slice(&theta[3..6]);
    let (mut t, mut row) = (6, 5);
    for _finger in 0..5 {
        for i in 0..3 {
            pose[row][0] = theta[t];
            t += 1;
            if i == 0 {
                pose[row][1] = theta[t];
                t += 1;
            }
            row += 1;
        }
        row += 1;
    }
    let parents: Vec<i64> = list(&model["parents"])
        .iter()
        .map(|p| p.as_i64().unwrap())
        .collect();
    let (rels, ibas) = (
        list(&model["base_relatives"]),
        list(&model["inverse_base_absolutes"]),
    );
    let mut absolutes: Vec<M4> = Vec::new();
    for b in 0..bones {
        let [tx, tz, ty] = pose[b + 3];
        let rx = [
            [1.0, 0.0, 0.0],
            [0.0, tx.cos(), -tx.sin()],
            [0.0, tx.sin(), tx.cos()],
        ];
        let ry = [
            [ty.cos(), 0.0, ty.sin()],
            [0.0, 1.0, 0.0],
            [-ty.sin(), 0.0, ty.cos()],
        ];
        let rz = [
            [tz.cos(), -tz.sin(), 0.0],
            [tz.sin(), tz.cos(), 0.0],
            [0.0, 0.0, 1.0],
        ];
        let r = mul3(&mul3(&rz, &ry), &rx);
        let mut tr = [[0.0; 4]; 4];
        tr[3][3] = 1.0;
        (0..3).for_each(|i| tr[i][..3].copy_from_slice(&r[i]));
        let rel = mul4(&m4(&rels[b]), &tr);
        let abs = match parents[b] {
            -1 => rel,
            p => mul4(&absolutes[p as usize], &rel),
        };
        absolutes.push(abs);
    }
    let transforms: Vec<M4> = (0..bones)
        .map(|b| mul4(&absolutes[b], &m4(&ibas[b])))
        .collect();
    let mirror = if model["is_mirrored"].as_bool().unwrap() {
        -1.0
    } else {
        1.0
    };
    let aa = pose[0];
    let n = aa.iter().map(|a| a * a).sum::<f64>().sqrt();
    let r0 = if n < 1e-4 {
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    } else {
        let [x, y, z] = aa.map(|a| a / n);
        let (s, c) = (n.sin(), n.cos());
        [
            [
                x * x + (1.0 - x * x) * c,
                x * y * (1.0 - c) - z * s,
                x * z * (1.0 - c) + y * s,
            ],
            [
                x * y * (1.0 - c) + z * s,
                y * y + (1.0 - y * y) * c,
                y * z * (1.0 - c) - x * s,
            ],
            [
                x * z * (1.0 - c) - y * s,
                z * y * (1.0 - c) + x * s,
                z * z + (1.0 - z * z) * c,
            ],
        ]
    };
    let weights = list(&model["weights"]);
    let vertices: Vec<[f64; 3]> = list(&model["base_positions"])
        .iter()
        .zip(&weights)
        .map(|(p, w)| {
            let (p, w) = (floats(p), floats(w));
            let mut skinned = [0.0; 3];
            for (b, tr) in transforms.iter().enumerate() {
                for (j, s) in skinned.iter_mut().enumerate() {
                    *s += (0..4).map(|k| tr[j][k] * p[k]).sum::<f64>() * w[b];
                }
            }
            skinned[0] *= mirror;
            std::array::from_fn(|i| {
                (0..3)
                    .map(|j| r0[i][j] * pose[1][j] * skinned[j])
                    .sum::<f64>()
                    + pose[2][i]
            })
        })
        .collect();
    let triangles = list(&model["triangles"]);
    let corr = list(&input["data"]["correspondences"]);
    let points = list(&input["data"]["points"]);
    let mut err = Vec::new();
    for (i, (c, p)) in corr.iter().zip(&points).enumerate() {
        let c = c.as_u64().unwrap() as usize;
        let hand: [f64; 3] = if us.is_empty() {
            vertices[c]
        } else {
            let t: Vec<usize> = floats(&triangles[c]).iter().map(|&v| v as usize).collect();
            let (u0, u1) = (us[2 * i], us[2 * i + 1]);
            std::array::from_fn(|j| {
                u0 * vertices[t[0]][j]
                    + u1 * vertices[t[1]][j]
                    + (1.0 - u0 - u1) * vertices[t[2]][j]
            })
        };
        err.extend((0..3).map(|j| floats(p)[j] - hand[j]));
    }
    err
}

#[test]
fn ht_is_adbenchs_hand_tracking_in_both_variants() {
    let evals = evaluations("ht.jsonl");
    assert!(evals.len() >= 8, "{} evaluations", evals.len());
    let mut variants = [false, false];
    for (function, input, output) in evals {
        let (theta, us) = (floats(&input["theta"]), floats(&input["us"]));
        let complicated = !us.is_empty();
        variants[complicated as usize] = true;
        let want = ht_errors(&input, &theta, &us);
        if function == "objective" {
            assert_close(&floats(&output), &want, 1e-12, "objective");
            continue;
        }
        // A row an error: d/dus of its point (complicated only), d/dtheta.
        let rows = output.as_array().unwrap();
        assert_eq!(rows.len(), want.len());
        let width = if complicated { 28 } else { 26 };
        assert!(rows.iter().all(|r| r.as_array().unwrap().len() == width));
        let errs = |k: usize| {
            let (us, input) = (us.clone(), input.clone());
            move |v: &[f64]| -> f64 {
                let (du, dt) = v.split_at(us.len());
                ht_errors(&input, dt, du)[k]
            }
        };
        let x: Vec<f64> = us.iter().chain(&theta).copied().collect();
        for (k, row) in rows.iter().enumerate() {
            let all = central(&errs(k), &x);
            let (du, dt) = all.split_at(us.len());
            let mut want_row = Vec::new();
            if complicated {
                want_row.extend_from_slice(&du[2 * (k / 3)..2 * (k / 3) + 2]);
                // The other points' us do not move this error.
                assert!(du
                    .iter()
                    .enumerate()
                    .all(|(c, d)| c / 2 == k / 3 || *d == 0.0));
            }
            want_row.extend_from_slice(dt);
            assert_close(&floats(row), &want_row, 1e-6, "jacobian row");
        }
    }
    assert_eq!(variants, [true, true], "both variants recorded");
}

/// A model that is not ADBench's hand of 22 bones is refused with the
/// reason.
#[test]
fn an_ht_model_of_another_bone_count_is_refused() {
    let text =
        std::fs::read_to_string(crate::common::root().join("tests/gradbench/ht.jsonl")).unwrap();
    let mut message: Value = serde_json::from_str(text.lines().nth(2).unwrap()).unwrap();
    message["input"]["data"]["model"]["bone_count"] = 21.into();
    let responses = respond(&message.to_string(), Backend::Jit);
    assert_eq!(responses[0]["success"], false, "{}", responses[0]);
    let error = responses[0]["error"].as_str().unwrap();
    assert!(error.contains("22 bones"), "{error}");
}
