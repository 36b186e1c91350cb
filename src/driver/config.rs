//! A train block with overrides: what `gradc train --epochs ... --data ...`
//! runs. Each override replaces the block's setting; optimizers and
//! schedules are checked as if written in a train block.

use std::path::PathBuf;

use crate::diagnostic::{Error, Source};
use crate::shape::Shape;
use crate::types::train::{Batch, TrainConfig};
use crate::Compiled;

/// Settings that replace the train block's; `None` keeps the block's.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    pub epochs: Option<u64>,
    pub steps: Option<u64>,
    /// A number of examples, or `full`.
    pub batch: Option<String>,
    /// The learning rate of the block's optimizer, or of `optimizer`.
    pub lr: Option<f64>,
    /// As in a train block: `adam`, `momentum(lr = 0.1, beta = 0.8)`.
    pub optimizer: Option<String>,
    /// As in a train block: `cosine`, `step(every = 100)`.
    pub schedule: Option<String>,
    pub seed: Option<u64>,
    /// Keep the examples in file order.
    pub no_shuffle: bool,
    pub validate: Option<f64>,
    pub patience: Option<u64>,
    pub loss_tol: Option<f64>,
    pub grad_tol: Option<f64>,
    pub rel_tol: Option<f64>,
    /// A CSV file (relative to the current directory) read with the block's
    /// column mapping instead of the block's file.
    pub data: Option<PathBuf>,
}

/// The program's train block (or the defaults) with `o`'s overrides.
pub fn train_config(c: &Compiled, o: &Overrides) -> Result<TrainConfig, Error> {
    let mut cfg = c.typed.train.clone().unwrap_or_default();
    if let Some(text) = &o.optimizer {
        cfg.optimizer = setting(c, "optimizer", text)?.optimizer;
    }
    if let Some(text) = &o.schedule {
        cfg.schedule = setting(c, "schedule", text)?.schedule;
    }
    if let Some(lr) = o.lr {
        if !(lr > 0.0 && lr.is_finite()) {
            return Err(Error::new(format!(
                "--lr must be a positive number, not {lr}"
            )));
        }
        if cfg.optimizer.is_full_batch() {
            return Err(Error::new(format!(
                "--lr: `{}` has no learning rate (its line search or damping sets the step)",
                cfg.optimizer.name()
            )));
        }
        cfg.optimizer = crate::runtime::optim::with_lr(&cfg.optimizer, lr);
    }
    if let Some(b) = &o.batch {
        cfg.batch = match b.trim() {
            "full" => Batch::Full,
            n => match n.parse::<usize>() {
                Ok(n) if n >= 1 => Batch::Size(n),
                _ => {
                    return Err(Error::new(format!(
                        "--batch must be a whole number of at least 1, or `full`; not `{b}`"
                    )))
                }
            },
        };
    }
    // A limit given as an override replaces both of the block's.
    if o.epochs.is_some() || o.steps.is_some() {
        cfg.epochs = o.epochs;
        cfg.steps = o.steps;
    }
    if let Some(s) = o.seed {
        cfg.seed = s;
    }
    if o.no_shuffle {
        cfg.shuffle = false;
    }
    if o.validate.is_some() {
        cfg.validate = o.validate;
    }
    if o.patience.is_some() {
        cfg.patience = o.patience;
    }
    if o.loss_tol.is_some() {
        cfg.loss_tol = o.loss_tol;
    }
    if o.grad_tol.is_some() {
        cfg.grad_tol = o.grad_tol;
    }
    if o.rel_tol.is_some() {
        cfg.rel_tol = o.rel_tol;
    }
    if let Some(path) = &o.data {
        let inputs = inputs_of(c);
        if inputs.is_empty() {
            return Err(Error::new(
                "--data: the program has no inputs, so it reads no data",
            ));
        }
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        let source =
            crate::runtime::data::command_line_source(cfg.data.as_ref(), &inputs, &absolute);
        cfg.data = Some(source);
    }
    Ok(cfg)
}

fn inputs_of(c: &Compiled) -> Vec<(String, Shape)> {
    c.typed
        .inputs
        .iter()
        .map(|i| (i.name.clone(), i.shape.clone()))
        .collect()
}

/// An override checked as if it were written in a train block: `--optimizer
/// 'adam(lr = 0.01)'` is `train { optimizer = adam(lr = 0.01) }`, a source
/// named `--optimizer` that errors point into.
fn setting(c: &Compiled, key: &str, text: &str) -> Result<TrainConfig, Error> {
    let source = Source::new(format!("--{key}"), format!("train {{ {key} = {text} }}\n"));
    let ast = crate::parse(&source.text).map_err(|d| Error::in_source(&source, d))?;
    let mut diags = Vec::new();
    for item in &ast.items {
        if let crate::syntax::ast::ItemKind::Train { settings } = &item.kind {
            let cfg =
                crate::types::train::check_train(settings, item.span, &inputs_of(c), &mut diags);
            if diags.is_empty() {
                return Ok(cfg);
            }
        }
    }
    Err(Error::in_source(&source, diags))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::train::Optimizer;

    #[test]
    fn overrides_replace_the_block() {
        let c = crate::compile(
            "param x = 1\nloss x^2\ntrain { optimizer = sgd(lr = 0.5)  epochs = 3  steps = 9 }\n",
        )
        .unwrap();
        let o = Overrides {
            optimizer: Some("momentum(beta = 0.5)".into()),
            lr: Some(0.25),
            steps: Some(2),
            ..Overrides::default()
        };
        let cfg = train_config(&c, &o).unwrap();
        assert_eq!(
            cfg.optimizer,
            Optimizer::Momentum {
                lr: 0.25,
                beta: 0.5
            }
        );
        assert_eq!((cfg.epochs, cfg.steps), (None, Some(2)));
        let e = train_config(
            &c,
            &Overrides {
                optimizer: Some("adam(lr = -1)".into()),
                ..Overrides::default()
            },
        )
        .unwrap_err();
        assert!(
            e.render(false).starts_with("--optimizer:1:"),
            "{}",
            e.render(false)
        );
        let e = train_config(
            &c,
            &Overrides {
                data: Some("d.csv".into()),
                ..Overrides::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("no inputs"), "{e}");
    }
}
