//! Tests of parameter initialisers: checking, literals and sampling.

use super::*;
use crate::syntax::ast::ItemKind;
use crate::syntax::parser::parse;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// Checks the initialiser of the first item, a `param`.
fn check(src: &str) -> Result<(Init, Shape), Diagnostic> {
    let program = parse(src).unwrap();
    let ItemKind::Param { name, shape, init } = &program.items[0].kind else {
        panic!("not a param: {src}");
    };
    let declared = shape.as_ref().map(|s| {
        Shape(
            s.dims
                .iter()
                .map(|d| match &d.kind {
                    crate::syntax::ast::ExprKind::Number(n) => n.parse().unwrap(),
                    _ => panic!("a literal size"),
                })
                .collect(),
        )
    });
    check_init(init.as_ref(), declared.as_ref(), name.span)
}

fn ok(src: &str) -> (Init, Shape) {
    check(src).unwrap_or_else(|d| panic!("{src}: {d:?}"))
}

fn err(src: &str) -> Diagnostic {
    match check(src) {
        Ok(r) => panic!("{src}: expected an error, got {r:?}"),
        Err(d) => d,
    }
}

/// The source text under a span.
fn text(src: &str, span: Span) -> &str {
    &src[span.range()]
}

#[test]
fn no_initialiser_is_zeros() {
    assert_eq!(ok("param w: [2, 3]"), (Init::Zeros, Shape::matrix(2, 3)));
    assert_eq!(ok("param b"), (Init::Zeros, Shape::scalar()));
}

#[test]
fn numbers_fill_the_declared_shape() {
    assert_eq!(ok("param b = 0"), (Init::Fill(0.0), Shape::scalar()));
    assert_eq!(ok("param x = -3"), (Init::Fill(-3.0), Shape::scalar()));
    assert_eq!(
        ok("param v: [4] = 1.5e-3"),
        (Init::Fill(1.5e-3), Shape::vector(4))
    );
    assert_eq!(
        ok("param v: [2] = --2"),
        (Init::Fill(2.0), Shape::vector(2))
    );
}

#[test]
fn tensor_literals_give_their_own_shape() {
    let (init, shape) = ok("param w = [[1, -2], [3, 4.5]]");
    assert_eq!(shape, Shape::matrix(2, 2));
    assert_eq!(
        init,
        Init::Literal(Tensor::new(Shape::matrix(2, 2), vec![1.0, -2.0, 3.0, 4.5]))
    );
    let (init, shape) = ok("param w: [3] = [1, 2, 3]");
    assert_eq!(shape, Shape::vector(3));
    assert_eq!(init.to_string(), "[1, 2, 3]");
}

#[test]
fn literal_must_match_the_declared_shape() {
    let src = "param w: [2] = [1, 2, 3]";
    let d = err(src);
    assert_eq!(
        d.message,
        "initialiser has shape [3] but the parameter is declared [2]"
    );
    assert_eq!(text(src, d.span), "[1, 2, 3]");
    assert_eq!(text(src, d.labels[1].span), "w");
    assert_eq!(d.labels[1].message, "declared [2]");
}

#[test]
fn ragged_literals_are_refused() {
    let src = "param w = [[1, 2], [3]]";
    let d = err(src);
    assert_eq!(d.message, "ragged tensor literal");
    assert_eq!(text(src, d.span), "[3]");
    assert_eq!(d.labels[0].message, "element 2 has shape [1]");
    assert_eq!(d.labels[1].message, "element 1 has shape [2]");
    let d = err("param w = [1, [2]]");
    assert_eq!(d.message, "ragged tensor literal");
    assert_eq!(err("param w = []").message, "empty tensor literal");
}

#[test]
fn literal_elements_must_be_numbers() {
    let src = "param w = [1, x]";
    let d = err(src);
    assert_eq!(d.message, "expected a number in an initialiser");
    assert_eq!(text(src, d.span), "x");
}

#[test]
fn named_initialisers_bare_or_called() {
    assert_eq!(ok("param w: [2] = zeros").0, Init::Zeros);
    assert_eq!(ok("param w: [2] = ones()").0, Init::Ones);
    assert_eq!(ok("param w: [2, 3] = glorot").0, Init::Glorot);
    assert_eq!(ok("param w: [2, 3] = he()").0, Init::He);
    assert_eq!(
        ok("param w: [2] = normal(0, 0.1)").0,
        Init::Normal {
            mean: 0.0,
            std: 0.1
        }
    );
    assert_eq!(
        ok("param w: [2] = normal").0,
        Init::Normal {
            mean: 0.0,
            std: 1.0
        }
    );
    assert_eq!(
        ok("param w: [2] = uniform(-1, 1)").0,
        Init::Uniform { lo: -1.0, hi: 1.0 }
    );
    assert_eq!(
        ok("param w: [2] = uniform()").0,
        Init::Uniform { lo: 0.0, hi: 1.0 }
    );
}

#[test]
fn display_reads_back() {
    assert_eq!(
        ok("param w: [2] = normal(0, 0.1)").0.to_string(),
        "normal(0, 0.1)"
    );
    assert_eq!(
        ok("param w: [2] = uniform(-1, 1)").0.to_string(),
        "uniform(-1, 1)"
    );
    assert_eq!(ok("param w = -0.5").0.to_string(), "-0.5");
    assert_eq!(Init::Glorot.to_string(), "glorot");
    assert_eq!(Init::He.to_string(), "he");
    assert_eq!(Init::Zeros.to_string(), "zeros");
}

#[test]
fn unknown_initialiser_lists_the_known_ones() {
    let src = "param w: [2] = xavier(1)";
    let d = err(src);
    assert_eq!(d.message, "unknown initialiser `xavier`");
    assert_eq!(text(src, d.span), "xavier");
    assert!(d.hint.as_deref().unwrap().contains("glorot"), "{d:?}");
    assert_eq!(err("param w = foo").message, "unknown initialiser `foo`");
}

#[test]
fn computed_initialisers_are_refused() {
    let src = "param w = 2 * 0.5";
    let d = err(src);
    assert_eq!(d.message, "an initialiser must be a constant");
    assert_eq!(text(src, d.span), "2 * 0.5");
}

#[test]
fn wrong_arity() {
    let src = "param w: [2] = normal(0.1)";
    let d = err(src);
    assert_eq!(
        d.message,
        "`normal` takes a mean and a standard deviation, but 1 was given"
    );
    assert_eq!(text(src, d.span), "normal(0.1");
    let d = err("param w: [2] = zeros(3)");
    assert_eq!(d.message, "`zeros` takes no arguments, but 1 was given");
    let d = err("param w: [2] = uniform(1, 2, 3)");
    assert_eq!(
        d.message,
        "`uniform` takes a lower and an upper bound, but 3 were given"
    );
}

#[test]
fn bad_arguments() {
    let src = "param w: [2] = normal(0, -1)";
    let d = err(src);
    assert_eq!(d.message, "standard deviation must not be negative");
    assert_eq!(text(src, d.span), "-1");
    let src = "param w: [2] = uniform(1, -1)";
    let d = err(src);
    assert_eq!(
        d.message,
        "the lower bound of `uniform` is above the upper bound"
    );
    assert_eq!(text(src, d.span), "1, -1");
    assert_eq!(d.hint.as_deref(), Some("write `uniform(-1, 1)`"));
    let d = err("param w: [2] = normal(0, s)");
    assert_eq!(d.message, "expected a number in an initialiser");
}

#[test]
fn huge_literals_are_refused() {
    let src = "param w = 1e999";
    let d = err(src);
    assert_eq!(d.message, "number literal too large");
    assert_eq!(text(src, d.span), "1e999");
    let src = "param w = [1, 2e400]";
    let d = err(src);
    assert_eq!(text(src, d.span), "2e400");
}

#[test]
fn parse_number_and_count() {
    let s = Span::new(0, 1);
    assert_eq!(parse_number("-2.5e1", s).unwrap(), -25.0);
    assert_eq!(
        parse_number("nan", s).unwrap_err().message,
        "invalid number literal `nan`"
    );
    assert_eq!(
        parse_number("inf", s).unwrap_err().message,
        "invalid number literal `inf`"
    );
    assert_eq!(parse_count("1e3", s, "`epochs`").unwrap(), 1000);
    assert_eq!(
        parse_count("18446744073709551615", s, "`seed`").unwrap(),
        u64::MAX
    );
    assert_eq!(
        parse_count("2.5", s, "`epochs`").unwrap_err().message,
        "`epochs` must be a whole number"
    );
    assert_eq!(
        parse_count("-1", s, "`epochs`").unwrap_err().message,
        "`epochs` must not be negative"
    );
    assert_eq!(
        parse_count("1e300", s, "`epochs`").unwrap_err().message,
        "`epochs` is too large"
    );
}

#[test]
fn fans_follow_the_out_in_layout() {
    assert_eq!(fans(&Shape::scalar()), (1, 1));
    assert_eq!(fans(&Shape::vector(5)), (5, 5));
    assert_eq!(fans(&Shape::matrix(4, 3)), (3, 4));
    assert_eq!(fans(&Shape(vec![4, 3, 2])), (6, 8));
}

fn rng(seed: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

#[test]
fn sampling_is_deterministic_for_a_seed() {
    let shape = Shape::matrix(3, 4);
    for init in [
        Init::Normal {
            mean: 0.0,
            std: 0.1,
        },
        Init::Uniform { lo: -1.0, hi: 1.0 },
        Init::Glorot,
        Init::He,
    ] {
        let a = init.sample(&shape, &mut rng(7));
        let b = init.sample(&shape, &mut rng(7));
        let c = init.sample(&shape, &mut rng(8));
        assert_eq!(a, b, "{init}");
        assert_ne!(a, c, "{init}");
        assert_eq!(a.shape, shape);
    }
}

#[test]
fn constants_sample_to_themselves() {
    let s = Shape::vector(3);
    assert_eq!(Init::Zeros.sample(&s, &mut rng(0)).data, vec![0.0; 3]);
    assert_eq!(Init::Ones.sample(&s, &mut rng(0)).data, vec![1.0; 3]);
    assert_eq!(Init::Fill(-2.0).sample(&s, &mut rng(0)).data, vec![-2.0; 3]);
    let t = Tensor::new(s.clone(), vec![1.0, 2.0, 3.0]);
    assert_eq!(Init::Literal(t.clone()).sample(&s, &mut rng(0)), t);
}

fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

#[test]
fn distributions_have_the_stated_moments() {
    let big = Shape::matrix(100, 200);
    let t = Init::Normal {
        mean: 1.0,
        std: 0.5,
    }
    .sample(&big, &mut rng(1));
    let (m, s) = mean_std(&t.data);
    assert!((m - 1.0).abs() < 0.02 && (s - 0.5).abs() < 0.02, "{m} {s}");

    let t = Init::Uniform { lo: 2.0, hi: 3.0 }.sample(&big, &mut rng(2));
    assert!(t.data.iter().all(|&x| (2.0..3.0).contains(&x)));
    let (m, _) = mean_std(&t.data);
    assert!((m - 2.5).abs() < 0.01, "{m}");

    // fan_in 200, fan_out 100: a = sqrt(6 / 300).
    let a = (6.0f64 / 300.0).sqrt();
    let t = Init::Glorot.sample(&big, &mut rng(3));
    assert!(t.data.iter().all(|&x| x.abs() <= a));
    let max = t.data.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    assert!(max > 0.99 * a, "{max} {a}");

    let t = Init::He.sample(&big, &mut rng(4));
    let (m, s) = mean_std(&t.data);
    let expected = (2.0f64 / 200.0).sqrt();
    assert!(
        m.abs() < 0.01 && (s - expected).abs() < 0.01 * 2.0,
        "{m} {s}"
    );
}
