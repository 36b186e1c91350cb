//! `--input x=1,2,3` values from the command line: parsed and checked against
//! the program's `input` declarations.

use crate::shape::{parse_tensor, Tensor};
use crate::types::InputDecl;

/// Builds one tensor per declared input from `name=values` strings. Values are
/// separated by commas, and the rows of a matrix by `;`. An input given twice
/// is an error; one not given is zeros, and its name is in the second list.
pub fn parse_inputs(
    decls: &[InputDecl],
    given: &[String],
) -> Result<(Vec<Tensor>, Vec<String>), String> {
    let mut values: Vec<Option<Tensor>> = vec![None; decls.len()];
    for arg in given {
        let (name, text) = arg
            .split_once('=')
            .ok_or_else(|| format!("--input `{arg}`: expected NAME=VALUES, such as x=1,2,3"))?;
        let name = name.trim();
        let i = decls.iter().position(|d| d.name == name).ok_or_else(|| {
            let known: Vec<&str> = decls.iter().map(|d| d.name.as_str()).collect();
            if known.is_empty() {
                format!("--input {name}: the program declares no inputs")
            } else {
                format!(
                    "--input {name}: the program has no input `{name}` (its inputs: {})",
                    known.join(", ")
                )
            }
        })?;
        if values[i].is_some() {
            return Err(format!("--input {name} is given twice"));
        }
        let value = parse_tensor(&decls[i].shape, text)
            .map_err(|e| format!("--input {name}: {}", e.describe(name)))?;
        values[i] = Some(value);
    }
    let mut defaulted = Vec::new();
    let tensors = decls
        .iter()
        .zip(values)
        .map(|(d, v)| {
            v.unwrap_or_else(|| {
                defaulted.push(d.name.clone());
                Tensor::zeros(d.shape.clone())
            })
        })
        .collect();
    Ok((tensors, defaulted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::Shape;
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
        let e = parse_inputs(&d, &["x=1,2,3".into()]).unwrap_err();
        assert!(e.contains("shape [2]") && e.contains("3 were given"), "{e}");
        let e = parse_inputs(&d, &["z=1".into()]).unwrap_err();
        assert!(e.contains("no input `z`"), "{e}");
        let (t, defaulted) = parse_inputs(&d, &[]).unwrap();
        assert_eq!(
            (t[0].data.clone(), defaulted),
            (vec![0.0, 0.0], vec!["x".to_string()])
        );
        let e = parse_inputs(&d, &["x=1,2".into(), "x=3,4".into()]).unwrap_err();
        assert!(e.contains("given twice"), "{e}");
        let e = parse_inputs(&d, &["x=1,nan".into()]).unwrap_err();
        assert!(e.contains("not a finite number"), "{e}");
    }
}
