//! Sizes set from outside a program: `--dim D=N` (every command) and the
//! REPL's `:dim D=N`, parsed here once; and a file compiled with them.
//! Binding itself (flags, then data, then defaults) is the front end's:
//! [`crate::types::dims`].

use std::path::Path;

use crate::diagnostic::Error;
use crate::types::dims::{unknown_flags, DimFlags, DimOptions};
use crate::types::CheckOptions;
use crate::Compiled;

/// `D=8` or `D=8,H=4`: sizes by name, each a positive integer.
pub fn parse_dims(text: &str) -> Result<DimFlags, String> {
    text.split(',')
        .map(|part| {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not NAME=N: write a size as `D=64`"))?;
            let name = name.trim();
            let valid = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!("`{name}` is not the name of a size"));
            }
            match value.trim().parse::<usize>() {
                Ok(n) if n >= 1 => Ok((name.to_string(), n)),
                _ => Err(format!(
                    "the size `{name}` must be a positive integer, not `{}`",
                    value.trim()
                )),
            }
        })
        .collect()
}

/// Adds `more` to `flags`; a later value of a name replaces the earlier.
pub fn merge(flags: &mut DimFlags, more: &[(String, usize)]) {
    for (name, value) in more {
        match flags.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = *value,
            None => flags.push((name.clone(), *value)),
        }
    }
}

/// Reads and compiles a .grad file with sizes from `--dim`; a flag naming
/// no `dim` of the file is an error (with "did you mean").
pub fn load_with_dims(path: &Path, flags: &DimFlags) -> Result<Compiled, Error> {
    let source = super::read_source(path)?;
    if let Ok(ast) = crate::parse(&source.text) {
        let unknown = unknown_flags(&ast, flags);
        if !unknown.is_empty() {
            return Err(Error {
                reports: unknown
                    .into_iter()
                    .flat_map(|m| Error::new(m).reports)
                    .collect(),
            });
        }
    }
    crate::compile_source(&source, &check_options(path, flags))
}

/// The options `path` is checked with: sizes from `--dim`, data read
/// relative to the file.
pub fn check_options(path: &Path, flags: &DimFlags) -> CheckOptions {
    CheckOptions {
        dims: DimOptions {
            flags: flags.clone(),
            data_dir: Some(super::base_dir(path)),
        },
        ..CheckOptions::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_one_or_several_sizes() {
        assert_eq!(parse_dims("D=8"), Ok(vec![("D".to_string(), 8)]));
        assert_eq!(
            parse_dims("D=8, H = 4"),
            Ok(vec![("D".to_string(), 8), ("H".to_string(), 4)])
        );
        for bad in ["D", "D=0", "D=-1", "D=2.5", "=3", "1D=3"] {
            assert!(parse_dims(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_later_flag_replaces_an_earlier_one() {
        let mut flags = vec![("D".to_string(), 8)];
        merge(&mut flags, &[("H".to_string(), 2), ("D".to_string(), 3)]);
        assert_eq!(flags, vec![("D".to_string(), 3), ("H".to_string(), 2)]);
    }
}
