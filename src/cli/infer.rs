//! `gradc eval` over data and `gradc predict`: a trained program run on
//! every example of a data set, its loss and metrics or its outputs.

use std::path::{Path, PathBuf};

use super::compile;
use super::train::{evaluation_json, LoadBar};
use crate::diagnostic::Error;
use crate::driver::{self, point};
use crate::dtype::Dtype;
use crate::eval::Backend;
use crate::runtime::{self, shards::Threads};
use crate::shape::{fmt_num, Tensor};
use crate::types::dims::DimFlags;
use crate::Compiled;

/// `gradc predict`.
#[derive(clap::Args, Debug)]
pub struct PredictArgs {
    /// The .grad file.
    pub file: PathBuf,
    /// The parameters, a safetensors file written by `gradc train --save`.
    #[arg(long, value_name = "FILE")]
    pub weights: PathBuf,
    /// The examples: a CSV file read with the train block's column mapping
    /// (inputs the outputs do not use, such as a label, may be missing);
    /// without a file name, the train block's data.
    #[arg(long, value_name = "CSV", num_args = 0..=1)]
    pub data: Option<Option<PathBuf>>,
    /// What evaluates the program: the Cranelift JIT, or the reference interpreter.
    #[arg(long, value_enum, default_value_t = Backend::Jit)]
    pub backend: Backend,
    /// The float type to run the data in, overriding the train block's
    /// `dtype` (default f64; f32 needs the JIT).
    #[arg(long, value_enum)]
    pub dtype: Option<Dtype>,
}

/// `gradc eval FILE --weights W [--data [CSV]]`: the loss and metrics, the
/// mean over the data's examples. Without --data, over the train block's
/// data, as `gradc predict` does; at the --input point when inputs are
/// given, or when the program has inputs but the train block no data (a
/// note says so). Over data, in `dtype` on `threads` threads.
pub fn eval(
    file: &Path,
    c: &Compiled,
    at: &super::Point,
    (weights, data): (Option<&Path>, Option<Option<&Path>>),
    json: bool,
    (dtype, threads): (Option<Dtype>, usize),
) -> Result<(), Error> {
    let params = point::params(c, weights, at.seed.unwrap_or_else(|| c.seed()))?;
    let has_train_data = c.typed.train.as_ref().is_some_and(|t| t.data.is_some());
    let data = match data {
        Some(d) => Some(d),
        None if at.inputs.is_empty() && has_train_data => Some(None),
        None => {
            if at.inputs.is_empty() && !c.typed.inputs.is_empty() {
                eprintln!(
                    "note: the train block names no data and --data gives none: \
                     evaluating at one point"
                );
            }
            None
        }
    };
    let Some(data) = data else {
        let p = super::at_point(c, at, driver::Missing::Zeros)?;
        let outs = driver::evaluate(&c.ir, &c.source, at.backend, &params, &p.inputs)?;
        super::print_results(&c.ir.outputs, &outs, json);
        let values: Vec<&Tensor> = outs.iter().collect();
        super::warn(driver::non_finite(
            &c.ir, &c.source, &params, &p.inputs, &values,
        ));
        return Ok(());
    };
    let needed = vec![true; c.typed.inputs.len()];
    let mut bar = LoadBar::new(false);
    let ds = runtime::load_data(c, data, &driver::base_dir(file), &needed, &mut |l| {
        bar.update(l)
    });
    bar.finish();
    let ds = ds?;
    let dtype = dtype.unwrap_or_else(|| block_dtype(c));
    let threads = Threads::new(threads)?;
    let mode = at.backend.into();
    let e = runtime::infer::evaluate_on(c, &params, ds.as_ref(), mode, dtype, &threads)?;
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&evaluation_json(&e)).unwrap_or_default()
        );
    } else {
        outln!("loss {}", fmt_num(e.loss));
        for (m, v) in &e.metrics {
            outln!("metric {m} = {}", fmt_num(*v));
        }
        outln!("examples {}", e.examples);
    }
    let finite = e.loss.is_finite() && e.metrics.iter().all(|(_, v)| v.is_finite());
    if !finite {
        super::warn(runtime::infer::trace_evaluation(c, &params, ds.as_ref()));
    }
    Ok(())
}

/// The train block's `dtype` (f64 without a block).
fn block_dtype(c: &Compiled) -> Dtype {
    c.typed.train.as_ref().map_or(Dtype::F64, |t| t.dtype)
}

/// `gradc predict FILE --weights W [--data [CSV]]`: the outputs of every
/// example as CSV.
pub fn predict(args: PredictArgs, dims: &DimFlags) -> Result<(), Error> {
    let c = compile(&args.file, dims)?;
    let params = point::params(&c, Some(&args.weights), c.seed())?;
    let needed = runtime::infer::predict_inputs(&c);
    let data = args.data.flatten();
    let mut bar = LoadBar::new(false);
    let ds = runtime::load_data(
        &c,
        data.as_deref(),
        &driver::base_dir(&args.file),
        &needed,
        &mut |l| bar.update(l),
    );
    bar.finish();
    let ds = ds?;
    let dtype = args.dtype.unwrap_or_else(|| block_dtype(&c));
    let p = runtime::predict(&c, &params, ds.as_ref(), args.backend.into(), dtype)?;
    let mut out = String::new();
    out.push_str(
        &p.columns
            .iter()
            .map(|c| csv_cell(c))
            .collect::<Vec<_>>()
            .join(","),
    );
    out.push('\n');
    for row in &p.rows {
        let cells: Vec<String> = row.iter().map(|x| fmt_num(*x)).collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    // A reader that stops early (`| head`) is not an error.
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes());
    Ok(())
}

/// A header cell, quoted if it needs to be.
fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
