//! What a run checks and decides before its first step: the settings that
//! need data or one another, the training and validation rows, and whether
//! the initial or resumed parameters fit the program.

use crate::shape::{Shape, Tensor};
use crate::types::train::{Batch, TrainConfig};

use super::checkpoint::Checkpoint;
use super::data::{shuffle, Dataset};
use super::full_batch;
use super::train::stream_rng;
use super::{Error, Options};
use crate::dtype::Dtype;

/// Settings that need data, or one another (the train block's checker
/// catches these in the source; command-line overrides come here).
pub(super) fn check_settings(cfg: &TrainConfig, has_data: bool) -> Result<(), Error> {
    if !has_data {
        let needs_data = [
            ("batch", matches!(cfg.batch, Batch::Size(_))),
            ("validate", cfg.validate.is_some()),
            ("patience", cfg.patience.is_some()),
        ];
        if let Some((key, _)) = needs_data.iter().find(|(_, set)| *set) {
            return Err(Error::new(format!(
                "`{key}` needs data, but the model has no inputs"
            )));
        }
    }
    full_batch::check_settings(cfg)?;
    if cfg.patience.is_some() && cfg.validate.is_none() {
        return Err(Error::new(
            "`patience` needs a validation split (`validate`)",
        ));
    }
    if let Some(v) = cfg.validate {
        if !(v > 0.0 && v < 1.0) {
            return Err(Error::new(format!(
                "`validate` must be between 0 and 1, not {v}"
            )));
        }
    }
    Ok(())
}

/// The float type of the run: `--dtype`, else the train block's. f32 is
/// for the first-order optimizers: the full-batch methods' line searches
/// and linear solves stay in f64 (the block's checker says so at the
/// setting; an override comes here).
pub(super) fn dtype_of(cfg: &TrainConfig, opts: &Options) -> Result<Dtype, Error> {
    let dtype = opts.dtype.unwrap_or(cfg.dtype);
    if dtype == Dtype::F32 && cfg.optimizer.is_full_batch() {
        return Err(Error::new(format!(
            "`{}` is a full-batch method and runs in f64: f32 is for the first-order optimizers",
            cfg.optimizer.name()
        ))
        .hint("drop `--dtype f32`, or choose an optimizer such as `adam`"));
    }
    Ok(dtype)
}

/// The training and validation rows, each in file order.
pub(super) fn split(
    n: usize,
    cfg: &TrainConfig,
    data: Option<&Dataset>,
) -> Result<(Vec<usize>, Vec<usize>), Error> {
    let Some(frac) = cfg.validate.filter(|_| data.is_some()) else {
        return Ok(((0..n).collect(), Vec::new()));
    };
    if n < 2 {
        return Err(Error::new(format!(
            "a validation split needs at least 2 examples, and {} has {n}",
            data.map_or(String::new(), |d| d.path.display().to_string())
        )));
    }
    let k = ((frac * n as f64).round() as usize).clamp(1, n - 1);
    let mut perm: Vec<usize> = (0..n).collect();
    shuffle(&mut perm, &mut stream_rng(cfg.seed, 1));
    let mut val = perm[..k].to_vec();
    let mut train = perm[k..].to_vec();
    val.sort_unstable();
    train.sort_unstable();
    Ok((train, val))
}

/// The initial parameters given fit the program's declarations.
pub(super) fn check_initial(params: &[Tensor], decls: &[(String, Shape)]) -> Result<(), Error> {
    if params.len() == decls.len() && params.iter().zip(decls).all(|(t, (_, s))| &t.shape == s) {
        Ok(())
    } else {
        Err(Error::new(
            "the initial parameters do not match the program's shapes",
        ))
    }
}

/// A checkpoint's parameters fit the program's names and shapes.
pub(super) fn check_resume(ck: &Checkpoint, decls: &[(String, Shape)]) -> Result<(), Error> {
    let fits = ck.params.len() == decls.len()
        && ck
            .names
            .iter()
            .zip(&ck.params)
            .zip(decls)
            .all(|((n, t), (dn, ds))| n == dn && &t.shape == ds);
    if fits {
        Ok(())
    } else {
        Err(Error::new(
            "the checkpoint's parameters do not match the program's names and shapes",
        ))
    }
}
