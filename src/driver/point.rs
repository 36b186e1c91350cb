//! Where the values a command evaluates at come from: inputs given as
//! `NAME=VALUES` text (`--input x=1,2,3`), seeded random inputs, and the
//! parameters, initial or saved.

use std::path::Path;

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::diagnostic::Error;
use crate::shape::{parse_tensor, Shape, Tensor};
use crate::types::InputDecl;
use crate::Compiled;

/// Seed of the random inputs of [`Missing::Random`].
const INPUT_SEED: u64 = 0x5eed;

/// What inputs that are not given become.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Missing {
    Zeros,
    /// Seeded random values when no input at all is given (a gradient check
    /// at zeros would sit on the kinks of relu and abs); zeros otherwise.
    Random,
}

/// The parameters and inputs a command evaluates at.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub params: Vec<Tensor>,
    pub inputs: Vec<Tensor>,
    /// The inputs that were not given, by name.
    pub defaulted: Vec<String>,
    /// Whether those were drawn at random (else they are zeros).
    pub random: bool,
}

/// The initial parameters (seeded by `seed`, else the train block's seed)
/// and the inputs `given` as `NAME=VALUES`.
pub fn at(
    c: &Compiled,
    given: &[String],
    seed: Option<u64>,
    missing: Missing,
) -> Result<Point, Error> {
    let (mut inputs, defaulted) = parse_inputs(&c.typed.inputs, given)?;
    let random = !defaulted.is_empty() && missing == Missing::Random && given.is_empty();
    if random {
        inputs = random_inputs(c);
    }
    Ok(Point {
        params: c.initial_params(seed.unwrap_or_else(|| c.seed())),
        inputs,
        defaulted,
        random,
    })
}

/// Seeded random inputs for `c`: class indices in range where an input
/// feeds `one_hot`, else standard normal values.
pub fn random_inputs(c: &Compiled) -> Vec<Tensor> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(INPUT_SEED);
    crate::autodiff::check::random_inputs(&c.ir, &mut rng)
}

/// The parameters: from a safetensors file written by `gradc train --save`,
/// or the initial ones drawn with `seed`.
pub fn params(c: &Compiled, weights: Option<&Path>, seed: u64) -> Result<Vec<Tensor>, Error> {
    match weights {
        Some(path) => Ok(crate::runtime::checkpoint::load(path, &param_decls(c))?.params),
        None => Ok(c.initial_params(seed)),
    }
}

/// The parameters' names and shapes, in declaration order.
pub fn param_decls(c: &Compiled) -> Vec<(String, Shape)> {
    c.typed
        .params
        .iter()
        .map(|p| (p.name.clone(), p.shape.clone()))
        .collect()
}

/// One tensor per declared input from `NAME=VALUES` strings, values as
/// [`crate::shape::parse_numbers`] reads them (`1, 2; 3, 4`). An input given
/// twice is an error; one not given is zeros, and its name is in the second
/// list.
pub fn parse_inputs(
    decls: &[InputDecl],
    given: &[String],
) -> Result<(Vec<Tensor>, Vec<String>), Error> {
    let decls: Vec<(String, Shape)> = decls
        .iter()
        .map(|d| (d.name.clone(), d.shape.clone()))
        .collect();
    parse_named("--input", "input", &decls, given)
}

/// [`parse_inputs`] for any named tensors: `flag` (`--hvp`) names the
/// option in errors and `kind` (`param`) what the names are.
pub fn parse_named(
    flag: &str,
    kind: &str,
    decls: &[(String, Shape)],
    given: &[String],
) -> Result<(Vec<Tensor>, Vec<String>), Error> {
    let mut values: Vec<Option<Tensor>> = vec![None; decls.len()];
    for arg in given {
        let (name, text) = arg.split_once('=').ok_or_else(|| {
            Error::new(format!(
                "{flag} `{arg}`: expected NAME=VALUES, such as x=1,2,3"
            ))
        })?;
        let name = name.trim();
        let i = decls.iter().position(|(n, _)| n == name).ok_or_else(|| {
            let known: Vec<&str> = decls.iter().map(|(n, _)| n.as_str()).collect();
            Error::new(if known.is_empty() {
                format!("{flag} {name}: the program declares no {kind}s")
            } else {
                format!(
                    "{flag} {name}: the program has no {kind} `{name}` (its {kind}s: {})",
                    known.join(", ")
                )
            })
        })?;
        if values[i].is_some() {
            return Err(Error::new(format!("{flag} {name} is given twice")));
        }
        let value = parse_tensor(&decls[i].1, text)
            .map_err(|e| Error::new(format!("{flag} {name}: {}", e.describe(name))))?;
        values[i] = Some(value);
    }
    let mut defaulted = Vec::new();
    let tensors = decls
        .iter()
        .zip(values)
        .map(|((name, shape), v)| {
            v.unwrap_or_else(|| {
                defaulted.push(name.clone());
                Tensor::zeros(shape.clone())
            })
        })
        .collect();
    Ok((tensors, defaulted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::Span;

    fn decl(name: &str, dims: Vec<usize>) -> InputDecl {
        InputDecl {
            name: name.into(),
            shape: Shape(dims),
            span: Span::default(),
        }
    }

    #[test]
    fn matrices_take_rows_separated_by_semicolons() {
        let d = [decl("X", vec![2, 2]), decl("y", vec![])];
        let (t, defaulted) = parse_inputs(&d, &["y=1".into(), "X=1,2;3,4".into()]).unwrap();
        assert!(defaulted.is_empty());
        assert_eq!(t[0].data, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(t[1].data, vec![1.0]);
    }

    #[test]
    fn wrong_counts_and_names_are_explained() {
        let d = [decl("x", vec![2])];
        let e = parse_inputs(&d, &["x=1,2,3".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("shape [2]") && e.contains("3 were given"), "{e}");
        let e = parse_inputs(&d, &["z=1".into()]).unwrap_err().to_string();
        assert!(e.contains("no input `z`"), "{e}");
        let (t, defaulted) = parse_inputs(&d, &[]).unwrap();
        assert_eq!(
            (t[0].data.clone(), defaulted),
            (vec![0.0, 0.0], vec!["x".to_string()])
        );
        let e = parse_inputs(&d, &["x=1,2".into(), "x=3,4".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("given twice"), "{e}");
        let e = parse_inputs(&d, &["x=1,nan".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a finite number"), "{e}");
    }

    #[test]
    fn random_inputs_only_when_none_is_given() {
        let c = crate::compile("input x: [2]\nparam w: [2]\nloss dot(w, x)\n").unwrap();
        let p = at(&c, &[], None, Missing::Random).unwrap();
        assert!(p.random && p.inputs[0].data.iter().all(|&x| x != 0.0));
        assert_eq!(p.defaulted, ["x"]);
        let p = at(&c, &[], None, Missing::Zeros).unwrap();
        assert!(!p.random && p.inputs[0].data == [0.0, 0.0]);
    }
}
