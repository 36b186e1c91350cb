//! Tests of binding sizes: each source, their priority, and the errors.

use super::*;
use crate::syntax::parser::parse;

fn flags(list: &[(&str, usize)]) -> DimOptions {
    DimOptions {
        flags: list.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
        data_dir: None,
    }
}

/// The sizes of `src` bound with `opts`, sorted by name.
fn sizes(src: &str, opts: &DimOptions) -> Result<Vec<(String, usize)>, Vec<Diagnostic>> {
    let program = parse(src).unwrap_or_else(|e| panic!("{src}: {e:?}"));
    let mut v: Vec<_> = resolve(&program, opts)?.into_iter().collect();
    v.sort();
    Ok(v)
}

fn ok(src: &str, opts: &DimOptions) -> Vec<(String, usize)> {
    sizes(src, opts).unwrap_or_else(|d| panic!("{src}: {d:#?}"))
}

/// The messages of the errors, and the text under each one's span.
fn errs(src: &str, opts: &DimOptions) -> Vec<(String, String)> {
    let d = sizes(src, opts).expect_err(src);
    d.into_iter()
        .map(|d| (d.message, src[d.span.range()].to_string()))
        .collect()
}

fn pairs(list: &[(&str, usize)]) -> Vec<(String, usize)> {
    list.iter().map(|(n, v)| (n.to_string(), *v)).collect()
}

const CSV: &str = "dim D = 2\ninput x: [D]\ninput y\nloss sum(x) - y\n\
                   train { data = csv(\"d.csv\", x = 0..4, y = 4) }\n";

#[test]
fn a_default_binds_when_nothing_else_does() {
    assert_eq!(
        ok("dim D = 7\ndim H = 2\n", &flags(&[])),
        pairs(&[("D", 7), ("H", 2)])
    );
}

#[test]
fn the_data_wins_over_the_default_and_the_flag_over_both() {
    assert_eq!(ok(CSV, &flags(&[])), pairs(&[("D", 4)]));
    let with_list = CSV.replace("0..4", "[0, 1, 2]");
    assert_eq!(ok(&with_list, &flags(&[])), pairs(&[("D", 3)]));
    // A flag that agrees with the data is no conflict; one that does not is.
    assert_eq!(ok(CSV, &flags(&[("D", 4)])), pairs(&[("D", 4)]));
    let e = errs(CSV, &flags(&[("D", 5)]));
    assert_eq!(
        e,
        vec![(
            "the data gives `D` = 4, but `--dim D=5` sets it to 5".to_string(),
            "x = 0..4".to_string()
        )]
    );
    // Without data, the flag wins over the default.
    assert_eq!(ok("dim D = 7\n", &flags(&[("D", 3)])), pairs(&[("D", 3)]));
}

#[test]
fn two_dimensions_of_one_input_bind_from_an_array_header() {
    use crate::runtime::data::testing::{npy, TempDir};
    let dir = TempDir::new("dims-header");
    std::fs::write(dir.path("x.npy"), npy(&[5, 2, 3], &[0f64; 30])).unwrap();
    std::fs::write(dir.path("y.npy"), npy(&[5], &[0f64; 5])).unwrap();
    let src = "dim H\ndim W\ninput x: [H, W]\ninput y\nloss sum(x) - y\n\
               train { data = npy(x = \"x.npy\", y = \"y.npy\") }\n";
    let opts = DimOptions {
        flags: Vec::new(),
        data_dir: Some(dir.0.clone()),
    };
    assert_eq!(ok(src, &opts), pairs(&[("H", 2), ("W", 3)]));
    // Without the data's directory, nothing reads the header.
    assert_eq!(
        errs(src, &flags(&[])),
        vec![
            ("the size `H` is not bound".to_string(), "H".to_string()),
            ("the size `W` is not bound".to_string(), "W".to_string()),
        ]
    );
    let missing = src.replace("x.npy", "nothere.npy");
    let e = errs(&missing, &opts);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, "cannot read the shape of `nothere.npy`");
}

#[test]
fn a_shape_with_arithmetic_is_checked_against_the_data_not_solved() {
    let src = "dim D = 2\ninput x: [2 * D]\ninput y\nloss sum(x) - y\n\
               train { data = csv(\"d.csv\", x = 0..4, y = 4) }\n";
    assert_eq!(ok(src, &flags(&[])), pairs(&[("D", 2)]));
    let e = errs(src, &flags(&[("D", 3)]));
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(
        e[0].0,
        "the data gives `x` 4 columns, but its shape is [6] with `D` = 3 (from `--dim D=3`)"
    );
}

#[test]
fn a_size_bound_by_nothing_says_how_to_bind_it() {
    let e = errs("dim D\ndim H = 2\n", &flags(&[]));
    assert_eq!(
        e,
        vec![("the size `D` is not bound".to_string(), "D".to_string())]
    );
    let e = errs("dim D = 2.5\n", &flags(&[]));
    assert_eq!(e, vec![("bad size `2.5`".to_string(), "2.5".to_string())]);
}

#[test]
fn a_flag_naming_no_size_suggests_one() {
    let program = parse("dim Hidden = 3\ndim D = 2\n").unwrap();
    let f = |n: &str| vec![(n.to_string(), 1)];
    assert_eq!(
        unknown_flags(&program, &f("Hiden")),
        vec!["`--dim Hiden=...`: the program declares no size `Hiden` (did you mean `Hidden`?)"]
    );
    assert_eq!(
        unknown_flags(&program, &f("Q")),
        vec!["`--dim Q=...`: the program declares no size `Q` (its sizes: Hidden, D)"]
    );
    assert!(unknown_flags(&program, &f("D")).is_empty());
    let none = parse("param p\n").unwrap();
    assert_eq!(
        unknown_flags(&none, &f("D")),
        vec!["`--dim D=...`: the program declares no size `D` (it has no `dim` items)"]
    );
}

#[test]
fn size_expressions_evaluate_exactly() {
    let value = |text: &str| {
        let e = crate::syntax::parser::parse_expr(text).unwrap();
        eval_size(&e, &mut |n, s| match n {
            "D" => Ok(4),
            _ => Err(Diagnostic::error(s, "unknown")),
        })
        .map_err(|d| d.message)
    };
    assert_eq!(value("2 * D + 1"), Ok(9));
    assert_eq!(value("D / 2"), Ok(2));
    assert_eq!(value("(D - 1) * (D + 1)"), Ok(15));
    assert_eq!(value("D / 3"), Err("a size must be an integer".to_string()));
    assert_eq!(
        value("D - 4"),
        Err("a size must be a positive integer".to_string())
    );
    assert_eq!(value("E"), Err("unknown".to_string()));
    assert_eq!(
        value("D ^ 2"),
        Err("a size must be an integer expression".to_string())
    );
}
