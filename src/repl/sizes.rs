//! The session's sizes (`dim D`): what binds them (`--dim`, `:dim`, the
//! train block's data), and `:dim D=8`, which sets sizes and checks the
//! session's definitions again.

use std::collections::HashSet;

use crate::driver;
use crate::repl::error::compile;
use crate::repl::session::{Error, Session};
use crate::repl::source::{Assembled, Origin};
use crate::types::dims::{DimFlags, DimOptions};

impl Session {
    /// What binds the session's sizes: `--dim` and `:dim`, and the train
    /// block's directory for array headers.
    pub(super) fn dim_options(&self) -> DimOptions {
        DimOptions {
            flags: self.opts.dims.clone(),
            data_dir: Some(self.train_dir().unwrap_or_default()),
        }
    }

    /// The sizes of the session's `dim`s, as bound now.
    pub fn sizes(&self) -> Vec<(String, usize)> {
        let assembled = Assembled::new(&self.entries, true);
        let origin = Origin::typed("");
        compile(&assembled, &self.dim_options(), &origin, |_| String::new())
            .map(|c| c.typed.sizes)
            .unwrap_or_default()
    }

    /// The sizes set by `--dim` and `:dim`.
    pub fn dim_flags(&self) -> &DimFlags {
        &self.opts.dims
    }

    /// `:dim D=8`: sets sizes and checks the session's definitions again
    /// with them (params whose shape changes start again from their
    /// initialisers). On an error, nothing changes. Gives the sizes the
    /// session's `dim`s now have.
    pub fn set_dims(&mut self, flags: &[(String, usize)]) -> Result<Vec<(String, usize)>, Error> {
        let before = self.opts.dims.clone();
        driver::dims::merge(&mut self.opts.dims, flags);
        let assembled = Assembled::new(&self.entries, true);
        let origin = Origin::typed("");
        match compile(&assembled, &self.dim_options(), &origin, |k| {
            format!("in `{}`, defined earlier", k.describe())
        }) {
            Ok(c) => {
                self.adopt(&c, &HashSet::new());
                Ok(c.typed.sizes.clone())
            }
            Err(e) => {
                self.opts.dims = before;
                Err(e)
            }
        }
    }
}
