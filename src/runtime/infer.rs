//! Trained parameters applied to data: the mean loss and metrics over a data
//! set (`gradc eval --data`), and every example's `output`s (`gradc
//! predict`).

use super::shards::Threads;
use std::path::Path;

use crate::dtype::Dtype;
use crate::ir::nonfinite::Origin;
use crate::ir::{Output, Role};
use crate::shape::Tensor;
use crate::Compiled;

use super::data::{self, Dataset};
use super::engine::Engine;
use super::engine::{eval_program, predict_program, trace_rows, Mode};
use super::train::inputs_of;
use super::{Error, Evaluation};

/// The data a command runs on. `file` (from the command line, relative to
/// the current directory) is read as [`data::command_line_source`] says;
/// without `file`, the train block's `data`, relative to `base_dir`. Only
/// inputs with `needed[k]` are read. `Ok(None)` for a program without
/// inputs. `progress` is told how far loading is.
pub fn load_data(
    c: &Compiled,
    file: Option<&Path>,
    base_dir: &Path,
    needed: &[bool],
    progress: data::Progress<'_>,
) -> Result<Option<Dataset>, Error> {
    let inputs = inputs_of(c);
    let cfg = c.typed.train.clone().unwrap_or_default();
    match file {
        Some(path) => {
            if inputs.is_empty() {
                return Err(Error::new("the program has no inputs, so it reads no data"));
            }
            let source = data::command_line_source(cfg.data.as_ref(), &inputs, path);
            let req = data::Request {
                dir: Path::new(""),
                source: &source,
                inputs: &inputs,
                needed,
                program: &c.source,
            };
            data::load(&req, progress).map(Some)
        }
        None => match cfg
            .training_data(&inputs)
            .map_err(|d| Error::in_source(&c.source, vec![d]))?
        {
            None => Ok(None),
            Some(source) => {
                let req = data::Request {
                    dir: base_dir,
                    source,
                    inputs: &inputs,
                    needed,
                    program: &c.source,
                };
                data::load(&req, progress).map(Some)
            }
        },
    }
}

/// The loss and metrics of `params` over every example of `data` (or, for a
/// program without inputs, at `params` alone).
pub fn evaluate(
    c: &Compiled,
    params: &[Tensor],
    data: Option<&Dataset>,
    mode: Mode,
    dtype: Dtype,
) -> Result<Evaluation, Error> {
    evaluate_on(c, params, data, mode, dtype, &Threads::default())
}

/// [`evaluate`], the shards of the data on `threads` (the same numbers).
pub fn evaluate_on(
    c: &Compiled,
    params: &[Tensor],
    data: Option<&Dataset>,
    mode: Mode,
    dtype: Dtype,
    threads: &Threads,
) -> Result<Evaluation, Error> {
    let mut ev = Engine::with(&eval_program(c), mode, dtype, threads.clone())?;
    let rows: Vec<usize> = (0..data.map_or(1, Dataset::len)).collect();
    ev.run(params, data, &rows)
        .map_err(|e| e.to_error(&c.source, data))?;
    Ok(Evaluation {
        loss: ev.loss(),
        metrics: ev
            .metric_names()
            .into_iter()
            .zip(ev.metrics().iter().copied())
            .collect(),
        examples: if data.is_some() { rows.len() } else { 1 },
    })
}

/// Where a non-finite loss or metric of [`evaluate`] comes from: the first
/// example (in data order) with one, traced to its origin, as a warning.
pub fn trace_evaluation(c: &Compiled, params: &[Tensor], data: Option<&Dataset>) -> Option<Error> {
    let f = eval_program(c);
    let rows: Vec<usize> = (0..data.map_or(0, Dataset::len)).collect();
    let watched = |o: &Output| matches!(o.role, Role::Loss | Role::Metric);
    let e = trace_rows(
        &f,
        &c.source,
        params,
        data,
        &rows,
        watched,
        Origin::headline,
    )?;
    Some(e.warning())
}

/// Which inputs the program's `output`s read: the only ones prediction needs
/// in its data.
pub fn predict_inputs(c: &Compiled) -> Vec<bool> {
    predict_program(c).1
}

/// The `output`s of a program for every example, flattened.
#[derive(Clone, Debug, PartialEq)]
pub struct Predictions {
    /// One name per value of a row: `p`, or `probabilities[0]`, ... for a
    /// vector, `W[0][1]` for a matrix.
    pub columns: Vec<String>,
    pub rows: Vec<Vec<f64>>,
}

/// The outputs of `c` at `params` for every example of `data` (one row for
/// a program without inputs).
pub fn predict(
    c: &Compiled,
    params: &[Tensor],
    data: Option<&Dataset>,
    mode: Mode,
    dtype: Dtype,
) -> Result<Predictions, Error> {
    let (f, _) = predict_program(c);
    if f.outputs.is_empty() {
        return Err(Error::new(
            "the program has no `output` to predict: declare one, e.g. `output p = sigmoid(z)`",
        ));
    }
    let mut columns = Vec::new();
    for o in &f.outputs {
        let shape = f.shape(o.value);
        match shape.dims() {
            [] => columns.push(o.name.clone()),
            _ => {
                for i in 0..shape.size() {
                    let mut rest = i;
                    let mut index = String::new();
                    for s in shape.strides() {
                        index.push_str(&format!("[{}]", rest / s));
                        rest %= s;
                    }
                    columns.push(format!("{}{index}", o.name));
                }
            }
        }
    }
    let mut engine = Engine::with(&f, mode, dtype, Threads::default())?;
    let n = data.map_or(1, Dataset::len);
    let mut rows = Vec::with_capacity(n);
    for r in 0..n {
        engine
            .example(params, data, data.map(|_| r))
            .map_err(|e| e.to_error(&c.source, data))?;
        let mut row = Vec::with_capacity(columns.len());
        for k in 0..f.outputs.len() {
            row.extend_from_slice(engine.output(k));
        }
        rows.push(row);
    }
    Ok(Predictions { columns, rows })
}
