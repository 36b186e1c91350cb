//! Data-driven tests: every `tests/cases/<stage>/*.grad` file is one case, and
//! its snapshot in `tests/snapshots/<stage>/<case>.snap` shows the source and
//! the output of that stage together, so a reader sees both.
//!
//! - `parse`: programs that parse; the output is the syntax tree printed back
//!   with every compound expression in parentheses.
//! - `check`: valid programs; the output is the declarations, the train
//!   settings and the optimised IR. Both the raw and the optimised IR must
//!   verify, and the interpreter must give the same outputs on both, at the
//!   initial parameters and at seeded random inputs of the declared shapes.
//!   A comment `# inputs: c=2 v=[1,0,3]` fixes inputs (class indices, say)
//!   instead.
//! - `errors`: invalid programs; the output is every diagnostic rendered
//!   without colour. Each one must lie within the source and name
//!   `file:line:col`. Files that are not UTF-8 stop at `gradc::source_text`.
//!
//! Regenerate with `INSTA_UPDATE=always cargo test --test it cases::`, then read
//! every changed snapshot before committing it.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use gradc::diagnostic::{render_all, Diagnostic};
use gradc::ir::interp::run_outputs;
use gradc::ir::verify::verify;
use gradc::shape::Tensor;
use gradc::span::LineIndex;

use crate::common::{each_case, files, snapshots};

/// The `.grad` files of a stage, sorted by name, with their case names.
fn cases(stage: &str) -> Vec<(String, PathBuf)> {
    files(&format!("tests/cases/{stage}"), "grad")
}

/// The snapshot body: the source, then each titled section of output.
fn show(src: &str, sections: &[(&str, String)]) -> String {
    let mut text = String::from("-- source --\n");
    text.push_str(src);
    if src.is_empty() {
        text.push_str("(empty file)\n");
    } else if !src.ends_with('\n') {
        text.push_str("\n(no newline at end of file)\n");
    }
    for (title, body) in sections {
        let _ = write!(text, "-- {title} --\n{body}");
        if !body.ends_with('\n') {
            text.push('\n');
        }
    }
    text
}

fn snapshot(stage: &str, name: &str, path: &Path, text: &str) {
    insta::with_settings!({
        snapshot_path => snapshots(stage),
        prepend_module_to_snapshot => false,
        input_file => path,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, text);
    });
}

#[test]
fn parse() {
    each_case(cases("parse"), |name, path| {
        let src = std::fs::read_to_string(&path).unwrap();
        let ast = match gradc::parse(&src) {
            Ok(ast) => ast,
            Err(diags) => panic!(
                "parse case {name} does not parse:\n{}",
                render_all(&diags, &format!("{name}.grad"), &src, false)
            ),
        };
        let printed = gradc::syntax::printer::print(&ast);
        // The printed tree is source too, and parses back to itself.
        let again = gradc::parse(&printed)
            .unwrap_or_else(|e| panic!("{name}: the printed tree does not parse: {e:?}"));
        assert_eq!(
            gradc::syntax::printer::print(&again),
            printed,
            "{name}: printing is not stable"
        );
        snapshot("parse", name, &path, &show(&src, &[("ast", printed)]));
    });
}

#[test]
fn check() {
    each_case(cases("check"), |name, path| {
        let src = std::fs::read_to_string(&path).unwrap();
        let compiled = match gradc::compile(&src) {
            Ok(c) => c,
            Err(diags) => panic!(
                "check case {name} does not compile:\n{}",
                render_all(&diags, &format!("{name}.grad"), &src, false)
            ),
        };
        if let Err(e) = verify(&compiled.raw) {
            panic!("{name}: the raw IR does not verify: {e}\n{}", compiled.raw);
        }
        if let Err(e) = verify(&compiled.ir) {
            panic!(
                "{name}: the optimised IR does not verify: {e}\n{}",
                compiled.ir
            );
        }
        same_outputs(name, &src, &compiled);
        let sections = [
            ("declarations", declarations(&compiled)),
            ("ir", compiled.ir.to_string()),
        ];
        snapshot("check", name, &path, &show(&src, &sections));
    });
}

#[test]
fn errors() {
    each_case(cases("errors"), |name, path| {
        let file = format!("{name}.grad");
        let bytes = std::fs::read(&path).unwrap();
        let (src, diags) = match gradc::source_text(&bytes) {
            Ok(src) => match gradc::compile(src) {
                Ok(_) => panic!("error case {name} compiles"),
                Err(diags) => (src.to_string(), diags),
            },
            Err(d) => (gradc::printable_text(&bytes), vec![d]),
        };
        assert!(!diags.is_empty(), "{name}: an error without a diagnostic");
        let rendered = render_all(&diags, &file, &src, false);
        let lines = LineIndex::new(&src);
        for d in &diags {
            spans_within(name, d, &src);
            let (line, col) = lines.line_col(&src, d.span.lo as usize);
            let at = format!("{file}:{line}:{col}: error: {}", d.message);
            assert!(rendered.contains(&at), "{name}: no `{at}` in\n{rendered}");
        }
        snapshot(
            "errors",
            name,
            &path,
            &show(&src, &[("diagnostics", rendered)]),
        );
    });
}

/// `gradc::source_text` stops at the first byte that is not UTF-8.
#[test]
fn invalid_utf8_is_located() {
    let d = gradc::source_text(b"loss 1 # caf\xe9\n").unwrap_err();
    assert_eq!((d.span.lo, d.span.hi), (12, 13));
    let d = gradc::source_text(b"\xff").unwrap_err();
    assert_eq!((d.span.lo, d.span.hi), (0, 1));
    assert_eq!(
        gradc::source_text("loss 1 # café\n".as_bytes()),
        Ok("loss 1 # café\n")
    );
}

fn spans_within(name: &str, d: &Diagnostic, src: &str) {
    let len = src.len() as u32;
    let spans = std::iter::once(d.span).chain(d.labels.iter().map(|l| l.span));
    for s in spans {
        assert!(
            s.lo <= s.hi && s.hi <= len,
            "{name}: span {s} outside the source (length {len}) in {d:?}"
        );
        assert!(
            src.is_char_boundary(s.lo as usize) && src.is_char_boundary(s.hi as usize),
            "{name}: span {s} splits a character in {d:?}"
        );
    }
}

/// The parameters with their initialisers, the inputs, and the train block.
fn declarations(c: &gradc::Compiled) -> String {
    let mut out = String::new();
    for (name, value) in &c.typed.sizes {
        let _ = writeln!(out, "dim {name} = {value}");
    }
    for p in &c.typed.params {
        let _ = writeln!(out, "param {}: {} = {}", p.name, p.shape, p.init);
    }
    for i in &c.typed.inputs {
        let _ = writeln!(out, "input {}: {}", i.name, i.shape);
    }
    if let Some(t) = &c.typed.train {
        let _ = writeln!(out, "train:");
        if let Some(d) = &t.data {
            let cols: Vec<String> = d
                .columns
                .iter()
                .map(|ic| format!("{} = {:?}", ic.input, ic.columns))
                .collect();
            let _ = writeln!(
                out,
                "  data = {:?} header {:?} {}",
                d.path,
                d.header,
                cols.join(", ")
            );
        }
        let _ = writeln!(out, "  optimizer = {}", t.optimizer);
        let _ = writeln!(out, "  schedule = {}", t.schedule);
        let _ = writeln!(out, "  batch = {:?}", t.batch);
        let _ = writeln!(out, "  epochs = {:?}, steps = {:?}", t.epochs, t.steps);
        let _ = writeln!(out, "  seed = {}, shuffle = {}", t.seed, t.shuffle);
        let _ = writeln!(
            out,
            "  validate = {:?}, patience = {:?}",
            t.validate, t.patience
        );
        let _ = writeln!(
            out,
            "  loss_tol = {:?}, grad_tol = {:?}",
            t.loss_tol, t.grad_tol
        );
    }
    out
}

/// Inputs fixed by `# inputs: name=value ...` comments: a number fills the
/// whole shape, `[a,b,...]` gives every element.
fn fixed_inputs(src: &str) -> Vec<(String, Vec<f64>)> {
    let mut fixed = Vec::new();
    for line in src.lines() {
        let Some(rest) = line.trim().strip_prefix("# inputs:") else {
            continue;
        };
        for pair in rest.split_whitespace() {
            let (name, value) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("bad `# inputs:` entry `{pair}`"));
            let numbers = value.trim_start_matches('[').trim_end_matches(']');
            let values = numbers
                .split(',')
                .map(|x| {
                    x.parse::<f64>()
                        .unwrap_or_else(|_| panic!("bad number in `{pair}`"))
                })
                .collect();
            fixed.push((name.to_string(), values));
        }
    }
    fixed
}

/// A small seeded generator (xorshift64*), so the inputs do not depend on
/// any crate's stream.
struct Rng(u64);

impl Rng {
    /// Uniform in [-2, 2).
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        bits as f64 / (1u64 << 53) as f64 * 4.0 - 2.0
    }
}

fn inputs_for(f: &gradc::ir::Function, fixed: &[(String, Vec<f64>)], rng: &mut Rng) -> Vec<Tensor> {
    f.inputs
        .iter()
        .map(|slot| {
            let n = slot.shape.size();
            match fixed.iter().find(|(name, _)| *name == slot.name) {
                Some((_, v)) if v.len() == 1 => Tensor::filled(slot.shape.clone(), v[0]),
                Some((_, v)) => {
                    assert_eq!(v.len(), n, "`# inputs:` {} needs {n} values", slot.name);
                    Tensor::new(slot.shape.clone(), v.clone())
                }
                None => Tensor::new(slot.shape.clone(), (0..n).map(|_| rng.next()).collect()),
            }
        })
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// The raw and the optimised IR compute the same outputs, on a few inputs.
fn same_outputs(name: &str, src: &str, c: &gradc::Compiled) {
    let params = c.initial_params(c.seed());
    let fixed = fixed_inputs(src);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for trial in 0..3 {
        let inputs = inputs_for(&c.raw, &fixed, &mut rng);
        let raw = run_outputs(&c.raw, &params, &inputs)
            .unwrap_or_else(|e| panic!("{name}: the raw IR fails on trial {trial}: {e}"));
        let opt = run_outputs(&c.ir, &params, &inputs)
            .unwrap_or_else(|e| panic!("{name}: the optimised IR fails on trial {trial}: {e}"));
        assert_eq!(raw.len(), opt.len(), "{name}: different numbers of outputs");
        for ((ro, rt), (oo, ot)) in raw.iter().zip(&opt) {
            assert_eq!(ro.name, oo.name, "{name}: outputs in a different order");
            assert_eq!(ro.role, oo.role, "{name}: output {} changed role", ro.name);
            assert_eq!(
                rt.shape, ot.shape,
                "{name}: output {} changed shape",
                ro.name
            );
            let same = rt.data.iter().zip(&ot.data).all(|(&a, &b)| close(a, b));
            assert!(
                same,
                "{name}: output {} differs on trial {trial}: raw {rt}, optimised {ot}\ninputs {inputs:?}",
                ro.name
            );
        }
    }
}
