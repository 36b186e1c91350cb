//! The front end never panics: whatever the input, `compile` gives a program
//! or diagnostics whose spans lie within the source, and those render. When a
//! program compiles, its IR verifies and the interpreter runs it without a
//! panic (it may still return an error, e.g. for a class index out of range).
//!
//! Property tests feed it random bytes, random token sequences and random
//! grammatical programs; fixed tests feed it pathological nesting. For the
//! programs that compile, the simplified IR must also agree with the raw IR
//! (see [`agree`]).
//!
//! Not covered yet: a long chain of user functions, each calling the one
//! above (`fn f1(x) = f0(x) + 1` ... `f400`), overflows the checker's stack,
//! which would abort this whole binary.

use proptest::prelude::*;
use proptest::sample::select;

use gradc::diagnostic::{render_all, Diagnostic};
use gradc::ir::interp::run_outputs;
use gradc::ir::verify::verify;
use gradc::shape::Tensor;

use crate::common::ELEMENTWISE;

/// Spans within the source, on character boundaries, and rendering works.
fn check_diagnostics(src: &str, diags: &[Diagnostic]) {
    assert!(!diags.is_empty(), "an error without a diagnostic");
    for d in diags {
        for s in std::iter::once(d.span).chain(d.labels.iter().map(|l| l.span)) {
            assert!(
                s.lo <= s.hi && s.hi as usize <= src.len(),
                "span {s} outside the source (length {}) in {d:?}",
                src.len()
            );
            assert!(
                src.is_char_boundary(s.lo as usize) && src.is_char_boundary(s.hi as usize),
                "span {s} splits a character in {d:?}"
            );
        }
    }
    let text = render_all(diags, "fuzz.grad", src, false);
    assert!(text.contains("fuzz.grad:"), "{text}");
}

/// Compiles `src`; on success verifies both IRs and runs the interpreter on
/// inputs drawn from `values`. Returns whether it compiled.
fn front_end(src: &str, values: &[f64]) -> bool {
    match gradc::compile(src) {
        Err(diags) => {
            check_diagnostics(src, &diags);
            false
        }
        Ok(c) => {
            if let Err(e) = verify(&c.raw) {
                panic!("raw IR does not verify: {e}\n{src}\n{}", c.raw);
            }
            if let Err(e) = verify(&c.ir) {
                panic!("optimised IR does not verify: {e}\n{src}\n{}", c.ir);
            }
            let params = c.initial_params(c.seed());
            let mut k = 0;
            let inputs: Vec<Tensor> =
                c.ir.inputs
                    .iter()
                    .map(|s| {
                        let data = (0..s.shape.size())
                            .map(|_| {
                                k += 1;
                                values.get(k % values.len().max(1)).copied().unwrap_or(0.0)
                            })
                            .collect();
                        Tensor::new(s.shape.clone(), data)
                    })
                    .collect();
            let raw = run_outputs(&c.raw, &params, &inputs);
            let opt = run_outputs(&c.ir, &params, &inputs);
            if let (Ok(_), Err(e)) = (&raw, &opt) {
                panic!("only the optimised IR fails: {e}\n{src}\n{}", c.ir);
            }
            // A NaN or an infinity anywhere in the raw run may become a
            // number in the simplified one (`0 * x` is 0 by design), and a
            // comparison of it can change a finite output: the outputs are
            // compared only when every raw value is finite.
            let finite = gradc::ir::interp::run(&c.raw, &params, &inputs)
                .is_ok_and(|vs| vs.iter().all(|t| t.data.iter().all(|x| x.is_finite())));
            if let (Ok(r), Ok(o), true) = (&raw, &opt, finite) {
                for ((out, rt), (_, ot)) in r.iter().zip(o) {
                    let same = rt.data.iter().zip(&ot.data).all(|(&a, &b)| agree(a, b));
                    assert!(
                        same,
                        "output {} differs: raw {rt}, optimised {ot}\n{src}\ninputs {inputs:?}\n{}",
                        out.name, c.ir
                    );
                }
            }
            true
        }
    }
}

/// The simplified IR computes what the raw IR does, up to rounding (on a
/// run whose every value is finite).
fn agree(raw: f64, opt: f64) -> bool {
    raw == opt || (raw - opt).abs() <= 1e-9 * raw.abs().max(opt.abs()).max(1e-3)
}

/// Compiles text that may not be UTF-8.
fn bytes_front_end(bytes: &[u8]) {
    match gradc::source_text(bytes) {
        Ok(src) => {
            front_end(src, &[0.5]);
        }
        Err(d) => {
            // Rendered against the text with each bad byte replaced by one
            // `?`, which keeps every offset.
            let mut text = String::new();
            for chunk in bytes.utf8_chunks() {
                text.push_str(chunk.valid());
                text.extend(chunk.invalid().iter().map(|_| '?'));
            }
            check_diagnostics(&text, &[d]);
        }
    }
}

const TOKENS: &[&str] = &[
    "param",
    "input",
    "dim",
    "let",
    "fn",
    "loss",
    "metric",
    "output",
    "train",
    "if",
    "then",
    "else",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ";",
    ":",
    "=",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "^",
    "@",
    ".",
    "..",
    ".T",
    "x",
    "y",
    "w",
    "W",
    "b",
    "f",
    "z",
    "exp",
    "log",
    "sum",
    "mean",
    "max",
    "softmax",
    "one_hot",
    "cross_entropy",
    "huber",
    "where",
    "dot",
    "zeros",
    "normal",
    "glorot",
    "sgd",
    "adam",
    "lr",
    "steps",
    "epochs",
    "data",
    "csv",
    "batch",
    "full",
    "0",
    "1",
    "2",
    "3",
    "0.5",
    "1e3",
    "1e999",
    "-1",
    "\"d.csv\"",
    "# note\n",
    "\n",
    "é",
    "$",
];

/// Declarations the grammatical programs refer to: a scalar, vectors of two
/// lengths and matrices of both orientations.
const PRELUDE: &str = "param p = 0.5\nparam w: [2] = normal(0, 1)\nparam M: [2, 3] = glorot\n\
                       input s\ninput u: [3]\ninput v: [3]\ninput N: [3, 2]\n";

fn leaf(names: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(names).prop_map(String::from),
        1 => select(&["0", "1", "2", "0.5", "3", "1e3", "-1"][..]).prop_map(String::from),
    ]
}

/// Random expressions over `names`; every compound is parenthesised, so the
/// text always parses, though it may well not check.
fn expr(names: &'static [&'static str]) -> impl Strategy<Value = String> {
    const BINOPS: &[&str] = &["+", "-", "*", "/", "^", "@", "==", "<", ">="];
    const REDUCE: &[&str] = &[
        "sum",
        "mean",
        "max",
        "min",
        "norm",
        "logsumexp",
        "softmax",
        "log_softmax",
        "transpose",
    ];
    const BINARY: &[&str] = &[
        "max",
        "min",
        "pow",
        "dot",
        "outer",
        "mse",
        "bce",
        "bce_logits",
        "cross_entropy",
        "huber",
    ];
    // Calls with keyword arguments, right and wrong: `{0}` and `{1}` are
    // replaced by expressions.
    const KEYWORD: &[&str] = &[
        "huber({0}, {1}, delta = {1})",
        "huber(target = {0}, prediction = {1})",
        "huber({0}, delta = {1})",
        "huber({0}, {1}, delt = 1)",
        "huber({0}, delta = 1, {1})",
        "clip({0}, hi = {1})",
        "clip({0}, lo = {1}, lo = {1})",
        "leaky_relu({0}, slope = {1})",
        "elu(x = {0}, alpha = {1})",
        "one_hot({0}, classes = {1})",
        "one_hot(class = {0}, classes = 2)",
        "where(condition = {0}, if_true = {1}, if_false = {0})",
        "f({0}, b = {1})",
        "f(b = {0}, a = {1})",
        "f({0}, a = {1})",
        "exp(y = {0})",
    ];
    const INDEX: &[&str] = &[
        "0", "-1", "1", "1:", ":2", ":", "0, :", ":, 1", "-2:-1", "3",
    ];
    leaf(names).prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (inner.clone(), select(BINOPS), inner.clone())
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            inner.clone().prop_map(|a| format!("(-{a})")),
            (select(ELEMENTWISE), inner.clone()).prop_map(|(f, a)| format!("{f}({a})")),
            (select(REDUCE), inner.clone()).prop_map(|(f, a)| format!("{f}({a})")),
            (select(BINARY), inner.clone(), inner.clone())
                .prop_map(|(f, a, b)| format!("{f}({a}, {b})")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(a, b, c)| format!("where({a}, {b}, {c})")),
            inner.clone().prop_map(|a| format!("one_hot({a}, 3)")),
            (select(KEYWORD), inner.clone(), inner.clone())
                .prop_map(|(f, a, b)| f.replace("{0}", &a).replace("{1}", &b)),
            inner.clone().prop_map(|a| format!("{a}.T")),
            (inner.clone(), select(INDEX)).prop_map(|(a, ix)| format!("{a}[{ix}]")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(c, a, b)| format!("(if {c} > 0 then {a} else {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("[{a}, {b}]")),
        ]
    })
}

/// A program: the prelude, a two-argument function, lets, a loss, an output.
fn program() -> impl Strategy<Value = String> {
    const GLOBALS: &[&str] = &["p", "w", "M", "s", "u", "v", "N"];
    const IN_FN: &[&str] = &["a", "b", "a", "b", "p", "s"];
    const LATER: &[&str] = &["p", "w", "M", "s", "u", "v", "N", "z", "z"];
    (
        expr(IN_FN),
        expr(GLOBALS),
        expr(LATER),
        expr(LATER),
        any::<bool>(),
    )
        .prop_map(|(body, z, l, o, wrap)| {
            let loss = if wrap { format!("sum({l})") } else { l };
            format!(
                "{PRELUDE}fn f(a, b) = {body}\nlet z = {z}\nlet y = f(z, s)\n\
                 loss {loss}\noutput o = {o}\n"
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        bytes_front_end(&bytes);
    }

    #[test]
    fn random_printable_text(src in "[ -~\n\t]{0,200}") {
        front_end(&src, &[0.5]);
    }

    #[test]
    fn random_token_sequences(tokens in proptest::collection::vec(select(TOKENS), 0..60)) {
        front_end(&tokens.join(" "), &[1.0, -0.5, 2.0]);
    }

    #[test]
    fn random_grammatical_programs(
        src in program(),
        values in proptest::collection::vec(-3.0f64..3.0, 1..8),
    ) {
        prop_assert!(gradc::parse(&src).is_ok(), "does not parse:\n{}", src);
        front_end(&src, &values);
    }

    #[test]
    fn random_well_shaped_programs(
        choices in proptest::collection::vec(any::<u32>(), 64..256),
        values in proptest::collection::vec(-3.0f64..3.0, 1..8),
    ) {
        let src = well_shaped(choices);
        prop_assert!(gradc::parse(&src).is_ok(), "does not parse:\n{}", src);
        front_end(&src, &values);
    }
}

/// A shape of the well-shaped generator.
#[derive(Copy, Clone, Debug, PartialEq)]
enum Sh {
    S,
    V2,
    V3,
    M23,
    M32,
}

const SHAPES: [Sh; 5] = [Sh::S, Sh::V2, Sh::V3, Sh::M23, Sh::M32];

/// Builds expressions of a requested shape from a list of random choices, so
/// that most programs check (and a few, by design, do not).
struct Gen {
    choices: Vec<u32>,
    pos: usize,
    /// Whether `z`, `y1` and `y2` are defined yet.
    lets: bool,
}

impl Gen {
    fn pick(&mut self, n: usize) -> usize {
        let c = self.choices[self.pos % self.choices.len()] as usize;
        self.pos += 1;
        // Mix in the position so that a short, repeating list still varies.
        (c ^ self.pos.wrapping_mul(0x9e37)) % n
    }

    fn one<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.pick(items.len())]
    }

    fn leaf(&mut self, sh: Sh) -> String {
        let names: &[&str] = match (sh, self.lets) {
            (Sh::S, true) => &["p", "s", "y2", "1", "0.5", "2", "-1", "0"],
            (Sh::S, false) => &["p", "s", "1", "0.5", "2", "-1", "0"],
            (Sh::V3, true) => &["u", "v", "z", "y1"],
            (Sh::V3, false) => &["u", "v"],
            (sh, _) => match sh {
                Sh::V2 => &["w"],
                Sh::M23 => &["M"],
                _ => &["N"],
            },
        };
        self.one(names).to_string()
    }

    fn expr(&mut self, sh: Sh, depth: u32) -> String {
        if depth == 0 || self.pick(5) == 0 {
            return self.leaf(sh);
        }
        let d = depth - 1;
        // Now and then a part of the wrong shape, for the checker's errors.
        if self.pick(100) == 0 {
            let other = SHAPES[self.pick(5)];
            return self.expr(other, d);
        }
        let scalar_or_same = |g: &mut Gen| if g.pick(3) == 0 { Sh::S } else { sh };
        match self.pick(12) {
            0 => {
                let op = self.one(&["+", "-", "*", "/", "^", "==", "<", ">="]);
                let other = scalar_or_same(self);
                format!("({} {op} {})", self.expr(sh, d), self.expr(other, d))
            }
            1 => {
                let f = self.one(ELEMENTWISE);
                let x = self.expr(sh, d);
                match self.pick(3) {
                    0 if f == "clip" => format!("clip({x}, -1, hi = {})", self.expr(Sh::S, d)),
                    0 if f == "leaky_relu" => format!("leaky_relu({x}, slope = 0.2)"),
                    0 if f == "elu" => format!("elu(alpha = {}, x = {x})", self.expr(Sh::S, d)),
                    _ => format!("{f}({x})"),
                }
            }
            2 => format!("(-{})", self.expr(sh, d)),
            3 => {
                let f = self.one(&["max", "min", "pow"]);
                let other = scalar_or_same(self);
                format!("{f}({}, {})", self.expr(sh, d), self.expr(other, d))
            }
            4 => {
                let c = scalar_or_same(self);
                let e = scalar_or_same(self);
                format!(
                    "(if {} > 0 then {} else {})",
                    self.expr(c, d),
                    self.expr(sh, d),
                    self.expr(e, d)
                )
            }
            5 => format!(
                "where({}, {}, {})",
                self.expr(sh, d),
                self.expr(sh, d),
                self.expr(Sh::S, d)
            ),
            _ => self.specific(sh, d),
        }
    }

    /// The operations that change shape.
    fn specific(&mut self, sh: Sh, d: u32) -> String {
        let class = |g: &mut Gen| g.one(&["0", "1", "2"]).to_string();
        match sh {
            Sh::S => match self.pick(9) {
                0 => {
                    let f = self.one(&["sum", "mean", "max", "min", "norm", "logsumexp"]);
                    let any = SHAPES[self.pick(5)];
                    format!("{f}({})", self.expr(any, d))
                }
                1 => format!("dot({}, {})", self.expr(Sh::V3, d), self.expr(Sh::V3, d)),
                2 => format!("({} @ {})", self.expr(Sh::V2, d), self.expr(Sh::V2, d)),
                3 => {
                    let f = self.one(&["mse", "bce", "bce_logits", "huber"]);
                    let any = SHAPES[self.pick(5)];
                    format!("{f}({}, {})", self.expr(any, d), self.expr(any, d))
                }
                4 => format!(
                    "huber({}, {}, {})",
                    self.expr(Sh::V3, d),
                    self.expr(Sh::S, d),
                    self.one(&["0.5", "2"])
                ),
                5 => format!("cross_entropy({}, {})", self.expr(Sh::V3, d), class(self)),
                6 => format!("{}[{}]", self.expr(Sh::V3, d), self.one(&["0", "-1", "2"])),
                7 => format!("{}[1, -1]", self.expr(Sh::M23, d)),
                _ => format!("{}[-1][0]", self.expr(Sh::M32, d)),
            },
            Sh::V2 => match self.pick(6) {
                0 => format!("({} @ {})", self.expr(Sh::M23, d), self.expr(Sh::V3, d)),
                1 => format!("({} @ {})", self.expr(Sh::V3, d), self.expr(Sh::M32, d)),
                2 => format!("{}[1:]", self.expr(Sh::V3, d)),
                3 => format!("{}[:, 2]", self.expr(Sh::M23, d)),
                4 => format!("[{}, {}]", self.expr(Sh::S, d), self.expr(Sh::S, d)),
                _ => {
                    let f = self.one(&["softmax", "log_softmax"]);
                    format!("{f}({})", self.expr(Sh::V2, d))
                }
            },
            Sh::V3 => match self.pick(7) {
                0 => format!("({} @ {})", self.expr(Sh::M32, d), self.expr(Sh::V2, d)),
                1 => format!("({} @ {})", self.expr(Sh::V2, d), self.expr(Sh::M23, d)),
                2 => format!("{}[-2]", self.expr(Sh::M23, d)),
                3 => format!("{}.T[0, :]", self.expr(Sh::M32, d)),
                4 => format!("one_hot({}, 3)", class(self)),
                5 => format!(
                    "[{}, {}, {}]",
                    self.expr(Sh::S, d),
                    self.expr(Sh::S, d),
                    self.expr(Sh::S, d)
                ),
                _ => {
                    let f = self.one(&["softmax", "log_softmax"]);
                    format!("{f}({})", self.expr(Sh::V3, d))
                }
            },
            Sh::M23 => match self.pick(4) {
                0 => format!("{}.T", self.expr(Sh::M32, d)),
                1 => format!("transpose({})", self.expr(Sh::M32, d)),
                2 => format!("outer({}, {})", self.expr(Sh::V2, d), self.expr(Sh::V3, d)),
                _ => format!("[{}, {}]", self.expr(Sh::V3, d), self.expr(Sh::V3, d)),
            },
            Sh::M32 => match self.pick(3) {
                0 => format!("{}.T", self.expr(Sh::M23, d)),
                1 => format!("outer({}, {})", self.expr(Sh::V3, d), self.expr(Sh::V2, d)),
                _ => format!("({} @ [[1, 0], [0, -1]])", self.expr(Sh::M32, d)),
            },
        }
    }

    /// A shape-polymorphic function body: elementwise in `a` and `b`.
    fn body(&mut self, depth: u32) -> String {
        if depth == 0 || self.pick(4) == 0 {
            return self.one(&["a", "b", "a", "b", "p", "1"]).to_string();
        }
        let d = depth - 1;
        match self.pick(4) {
            0 => {
                let op = self.one(&["+", "-", "*", "/", "^", ">"]);
                format!("({} {op} {})", self.body(d), self.body(d))
            }
            1 => {
                let f = self.one(&["exp", "tanh", "sigmoid", "relu", "abs", "softplus"]);
                format!("{f}({})", self.body(d))
            }
            2 => format!("max({}, {})", self.body(d), self.body(d)),
            _ => format!(
                "(if {} > 0 then {} else {})",
                self.body(d),
                self.body(d),
                self.body(d)
            ),
        }
    }

    fn program(&mut self) -> String {
        let body = self.body(3);
        let z = self.expr(Sh::V3, 3);
        self.lets = true;
        let loss = self.expr(Sh::S, 4);
        let metric = self.expr(Sh::S, 2);
        let out_shape = SHAPES[self.pick(5)];
        let out = self.expr(out_shape, 3);
        format!(
            "{PRELUDE}fn f(a, b) = {body}\nlet z = {z}\nlet y1 = f(z, u)\nlet y2 = f(s, p)\n\
             loss {loss}\nmetric m = {metric}\noutput o = {out}\n"
        )
    }
}

fn well_shaped(choices: Vec<u32>) -> String {
    Gen {
        choices,
        pos: 0,
        lets: false,
    }
    .program()
}

/// Enough random programs compile for the last property to test the back half
/// of the front end, not only the checker's errors.
#[test]
fn many_grammatical_programs_compile() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = proptest::collection::vec(any::<u32>(), 64..256);
    let mut compiled = 0;
    for _ in 0..200 {
        let src = well_shaped(strategy.new_tree(&mut runner).unwrap().current());
        if front_end(&src, &[0.5, -1.0, 2.0]) {
            compiled += 1;
        }
    }
    assert!(compiled >= 100, "only {compiled} of 200 programs compiled");
}

fn diagnosed(src: &str) -> Vec<Diagnostic> {
    match gradc::compile(src) {
        Ok(_) => panic!("compiles: {}...", &src[..src.len().min(80)]),
        Err(d) => {
            check_diagnostics(src, &d);
            d
        }
    }
}

#[test]
fn ten_thousand_nested_parens() {
    let src = format!(
        "param x = 1\nloss {}x{}\n",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    let d = diagnosed(&src);
    assert!(d[0].message.contains("nested"), "{d:?}");
    let src = format!(
        "param x = 1\nloss {}x{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    diagnosed(&src);
    let src = format!("param x = 1\nloss {}\n", "(".repeat(10_000));
    diagnosed(&src);
}

#[test]
fn a_hundred_thousand_unary_minuses() {
    let src = format!("param x = 1\nloss {}x\n", "-".repeat(100_000));
    let d = diagnosed(&src);
    assert!(d[0].message.contains("nested"), "{d:?}");
}

#[test]
fn a_hundred_thousand_term_sum() {
    let terms = vec!["x"; 100_000].join("+");
    let src = format!("param x = 1\nloss {terms}\n");
    diagnosed(&src);
}

#[test]
fn other_long_chains() {
    let n = 100_000;
    let chains = [
        format!("param x = 1\nloss {}x\n", "2^".repeat(n)),
        format!("param W: [2, 2]\nloss sum(W{})\n", ".T".repeat(n)),
        format!("param x = 1\nloss {}x\n", "+".repeat(n)),
        format!(
            "param x = 1\nloss {}x{}\n",
            "if x then ".repeat(n),
            " else x".repeat(n)
        ),
        format!("param x: [2]\nloss x{}\n", "[0:2]".repeat(n)),
    ];
    for src in &chains {
        diagnosed(src);
    }
    // Many items are fine: they are a list, not a nesting.
    let lets: String = (0..10_000)
        .map(|i| format!("let a{} = a{} + 1\n", i + 1, i))
        .collect();
    let src = format!("param a0 = 1\n{lets}loss a10000\n");
    assert!(front_end(&src, &[]));
}

#[test]
fn empty_and_comment_only_files() {
    for src in [
        "",
        "\n\n",
        "# only a comment",
        "# one\n# two\n\n   # three\n",
    ] {
        let d = diagnosed(src);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].message.contains("no `loss`"), "{d:?}");
    }
}

#[test]
fn invalid_utf8_anywhere() {
    for bytes in [
        &b"\xff"[..],
        b"loss 1 # \xe9",
        b"param x = 1\nloss x\xc3",
        b"\xf0\x9f\x99",
        b"loss \xed\xa0\x80",
    ] {
        bytes_front_end(bytes);
        assert!(gradc::source_text(bytes).is_err());
    }
}

/// The comparison of raw and simplified runs skips runs with a non-finite
/// value: `0 * (p / 0)` is NaN raw and 0 simplified, and the comparison
/// makes the outputs differ (found by the fuzzer, made a regression test).
#[test]
fn a_swallowed_nan_does_not_fail_the_comparison_of_raw_and_simplified() {
    let src = "param p = 1\nloss if 0 * (p / 0) == 0 then 1 else 2\n";
    assert!(front_end(src, &[0.5]));
    let c = gradc::compile(src).unwrap();
    let run = |f: &gradc::ir::Function| {
        run_outputs(f, &c.initial_params(0), &[]).unwrap()[0]
            .1
            .item()
    };
    assert_eq!((run(&c.raw), run(&c.ir)), (2.0, 1.0));
}
