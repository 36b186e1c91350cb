//! Data files through the runtime's loader. A [`Format`] gives the files to
//! start from, their mutations, and how a train block reads one; [`check`]
//! writes the mutated file, compiles a program that reads it, loads it the
//! way `gradc train` and `gradc eval --data` do (`runtime::load_data`), and
//! when it loads, trains a few steps with the interpreter and with the
//! batched JIT, which must end with the same bits. CSV is the one format
//! now; NPY would be another `Format` (and its `data = npy(...)` setting).

use std::path::Path;

use gradc::runtime::{self, Dataset, Mode, Options};

use super::pipeline::{diagnostics_render, rendered, same_bits};
use super::rng::{hash, R};
use super::Counts;
use crate::common::root;

/// A data file format.
pub trait Format {
    /// The files' extension, also the failure files'.
    fn extension(&self) -> &'static str;
    /// The files mutations start from.
    fn corpus(&self) -> &[Vec<u8>];
    /// A mutated copy of `bytes`.
    fn mutate(&self, bytes: &[u8], r: &mut R) -> Vec<u8>;
    /// The number of columns of a file, and its header's names if it has one.
    fn layout(&self, bytes: &[u8]) -> (usize, Option<Vec<String>>);
    /// The train block's `data` setting that reads `file` with `mapping`
    /// (`x = 0..2, y = 2`) and `options` (`, header = true`).
    fn setting(&self, file: &str, mapping: &str, options: &str) -> String;

    /// A mutated file, and a program that reads it as `data.EXT`.
    fn input(&self, r: &mut R) -> (Vec<u8>, String) {
        let base = r.pick(self.corpus()).clone();
        let program = program(self, &base, r);
        let mut bytes = base;
        for _ in 0..1 + r.below(3) {
            bytes = self.mutate(&bytes, r);
        }
        (bytes, program)
    }
}

/// CSV, read by the runtime with the `csv` crate.
pub struct Csv {
    corpus: std::sync::OnceLock<Vec<Vec<u8>>>,
}

pub static CSV: Csv = Csv {
    corpus: std::sync::OnceLock::new(),
};

const CELLS: &[&str] = &[
    "",
    " ",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "infinity",
    "1e309",
    "-1e309",
    "1e-400",
    "-0",
    "0x10",
    "+1",
    " 3 ",
    "\"1\"",
    "\"1,2\"",
    "\"unterminated",
    "\"a\"\"b\"",
    "é",
    "１",
    "1_000",
    "1.5.2",
    "99999999999999999999999999999",
    "-",
    ".",
    "e5",
    "true",
    "0",
    "1",
    "2",
    "3",
    "5",
    "-1",
    "0.5",
    "1e300",
    "\t7\t",
    "x1",
    "y",
    "😀",
];

impl Format for Csv {
    fn extension(&self) -> &'static str {
        "csv"
    }

    fn corpus(&self) -> &[Vec<u8>] {
        self.corpus.get_or_init(|| {
            let mut files = Vec::new();
            for dir in ["examples/data", "tests/cases/data"] {
                let mut paths: Vec<_> = std::fs::read_dir(root().join(dir))
                    .unwrap_or_else(|e| panic!("{dir}: {e}"))
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "csv"))
                    .collect();
                paths.sort();
                files.extend(paths.iter().map(|p| std::fs::read(p).expect("a data file")));
            }
            // A program reads an input and a target: two columns at least.
            files.retain(|b| self.layout(b).0 >= 2);
            assert!(files.len() >= 5, "{} CSV files", files.len());
            files
        })
    }

    fn layout(&self, bytes: &[u8]) -> (usize, Option<Vec<String>>) {
        let text = String::from_utf8_lossy(bytes);
        let first = text.lines().next().unwrap_or("");
        let cells: Vec<String> = first.split(',').map(|c| c.trim().to_string()).collect();
        let header = cells.iter().all(|c| c.parse::<f64>().is_err());
        (cells.len(), header.then_some(cells))
    }

    fn setting(&self, file: &str, mapping: &str, options: &str) -> String {
        format!("csv(\"{file}\", {mapping}{options})")
    }

    fn mutate(&self, bytes: &[u8], r: &mut R) -> Vec<u8> {
        if r.chance(0.15) {
            return bytes_mutated(bytes, r);
        }
        let text = String::from_utf8_lossy(bytes);
        let mut lines: Vec<Vec<String>> = text
            .lines()
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect();
        // Big files (iris) are cut, so that an input stays small.
        lines.truncate(1 + r.below(40));
        let n = lines.len();
        let (mut eol, mut bom, mut final_eol) = ("\n", false, true);
        let at = |r: &mut R, n: usize| if n == 0 { 0 } else { r.below(n) };
        match r.below(16) {
            0..=3 if n > 0 => {
                let i = at(r, n);
                let j = at(r, lines[i].len());
                lines[i][j] = r.pick(CELLS).to_string();
            }
            4 if n > 0 => {
                let i = at(r, n);
                let j = at(r, lines[i].len());
                lines[i].remove(j);
            }
            5 if n > 0 => {
                let i = at(r, n);
                let cell = r.pick(CELLS).to_string();
                let j = r.below(lines[i].len() + 1);
                lines[i].insert(j, cell);
            }
            6 if n > 0 => {
                lines.remove(at(r, n));
            }
            7 if n > 0 => {
                let i = at(r, n);
                let copies = *r.pick(&[1, 2, 50, 300]);
                let line = lines[i].clone();
                for _ in 0..copies {
                    lines.insert(i, line.clone());
                }
            }
            8 if n > 1 => {
                let (i, j) = (at(r, n), at(r, n));
                lines.swap(i, j);
            }
            9 => {
                let blank = r.pick(&["", "   ", "\t", "# a comment", ",", ",,,"]);
                lines.insert(r.below(n + 1), vec![blank.to_string()]);
            }
            10 => lines.truncate(r.below(2)),
            11 => eol = "\r\n",
            12 => eol = "\r",
            13 => bom = true,
            14 => final_eol = false,
            _ if n > 0 => {
                // A very wide row.
                let i = at(r, n);
                let width = *r.pick(&[20, 1000]);
                lines[i] = (0..width).map(|k| (k % 7).to_string()).collect();
            }
            _ => {}
        }
        let mut out = String::new();
        if bom {
            out.push('\u{feff}');
        }
        let joined: Vec<String> = lines.iter().map(|l| l.join(",")).collect();
        out += &joined.join(eol);
        if final_eol && !joined.is_empty() {
            out += eol;
        }
        out.into_bytes()
    }
}

fn bytes_mutated(bytes: &[u8], r: &mut R) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b.truncate(2000);
    for _ in 0..1 + r.below(3) {
        let i = r.below(b.len() + 1);
        match r.below(5) {
            0 if i < b.len() => b[i] ^= 1 << r.below(8),
            1 => {
                const INSERTS: &[&[u8]] = &[&[0xff], &[0xc3], &[0x00], b"\"", b"\r"];
                let insert: &[u8] = r.pick::<&[u8]>(INSERTS);
                b.splice(i..i, insert.iter().copied());
            }
            2 => b.truncate(i),
            3 if i < b.len() => {
                b.remove(i);
            }
            _ => b.insert(i, r.u64() as u8),
        }
    }
    b
}

/// A program that reads a file laid out like `base`: a binary classifier,
/// a softmax classifier or a regression, its columns by index, list or
/// header name, and settings that change how the data is used.
fn program<F: Format + ?Sized>(format: &F, base: &[u8], r: &mut R) -> String {
    let (columns, header) = format.layout(base);
    let k = columns.saturating_sub(1).max(1);
    let y = if columns >= 2 { k } else { 0 };
    let model = match r.below(3) {
        0 => format!(
            "input x: [{k}]\ninput y\nparam w: [{k}] = normal(0, 0.1)\nparam b = 0\n\
             let z = dot(w, x) + b\nloss bce_logits(z, y)\nmetric accuracy = (z > 0) == y\n\
             output p = sigmoid(z)\n"
        ),
        1 => format!(
            "input x: [{k}]\ninput y\nparam W: [3, {k}] = glorot\nparam b: [3] = zeros\n\
             let logits = W @ x + b\nloss cross_entropy(logits, y)\n\
             metric accuracy = dot(one_hot(y, 3), logits) == max(logits)\n\
             output probabilities = softmax(logits)\n"
        ),
        _ => format!(
            "input x: [{k}]\ninput y\nparam w: [{k}] = zeros\nparam b = 0\n\
             loss mse(dot(w, x) + b, y)\n"
        ),
    };
    if r.chance(0.15) {
        // No train block: only `--data` can give the data.
        return model;
    }
    let quote = |s: &str| format!("\"{}\"", s.replace('"', ""));
    let mapping = match (r.below(3), &header) {
        (0, Some(names)) if names.len() >= 2 => {
            let xs: Vec<String> = names[..k].iter().map(|n| quote(n)).collect();
            format!("x = [{}], y = {}", xs.join(", "), quote(&names[y]))
        }
        (1, _) => {
            let xs: Vec<String> = (0..k).map(|c| c.to_string()).collect();
            format!("x = [{}], y = {y}", xs.join(", "))
        }
        _ => format!("x = 0..{k}, y = {y}"),
    };
    let by_name = mapping.contains('"');
    let options = match r.below(5) {
        0 => ", header = true",
        1 if !by_name => ", header = false",
        _ => "",
    };
    let mut settings = vec![
        format!("data = {}", format.setting("data.csv", &mapping, options)),
        format!("batch = {}", r.pick(&["1", "2", "3", "full"])),
        format!("steps = {}", 1 + r.below(3)),
        format!("seed = {}", r.below(10)),
    ];
    if r.chance(0.3) {
        settings.push("shuffle = false".into());
    }
    if r.chance(0.2) {
        settings.push(format!("validate = {}", r.pick(&["0.25", "0.5", "0.9"])));
    }
    if r.chance(0.3) {
        let o = r.pick(&[
            "adam(lr = 0.1)",
            "momentum(lr = 0.05)",
            "rmsprop(lr = 0.01)",
        ]);
        settings.push(format!("optimizer = {o}"));
    }
    format!("{model}\ntrain {{\n  {}\n}}\n", settings.join("\n  "))
}

/// Loads `bytes` (written as `data.EXT` in `scratch`) for `program`, by the
/// train block and as `--data`; trains on it with the interpreter and the
/// batched JIT when it loads. `Err` is a failure: a program that does not
/// compile, a data set that breaks its invariants, engines that disagree.
pub fn check<F: Format + ?Sized>(
    format: &F,
    bytes: &[u8],
    program: &str,
    scratch: &Path,
    counts: &mut Counts,
) -> Result<(), String> {
    let file = scratch.join(format!("data.{}", format.extension()));
    std::fs::write(&file, bytes).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    let c = match gradc::compile(program) {
        Ok(c) => c,
        Err(d) => {
            diagnostics_render(program, &d)?;
            return Err(format!("the data program does not compile:\n{program}"));
        }
    };
    counts.compiled += 1;
    let needed = vec![true; c.typed.inputs.len()];
    let mut loaded = None;
    for given in [None, Some(file.as_path())] {
        match runtime::load_data(&c, given, scratch, &needed, &mut |_| {}) {
            Ok(Some(d)) => {
                counts.loaded += 1;
                well_formed(&d)?;
                loaded = Some(d);
            }
            Ok(None) => return Err("a program with inputs read no data".into()),
            Err(e) => {
                counts.diagnostics += 1;
                rendered(&e)?;
            }
        }
    }
    let Some(cfg) = c.typed.train.clone() else {
        return Ok(());
    };
    if loaded.is_none() || hash(bytes) % 2 == 1 {
        return Ok(());
    }
    counts.trained += 1;
    let opts = Options {
        base_dir: scratch.to_path_buf(),
        ..Options::default()
    };
    let interp = runtime::train_with(&c, &cfg, &opts, Mode::Interp, &mut ());
    let jit = runtime::train_with(&c, &cfg, &opts, Mode::Batched, &mut ());
    match (interp, jit) {
        (Err(a), Err(b)) => {
            rendered(&a)?;
            let (a, b) = (a.render(false), b.render(false));
            if a != b {
                return Err(format!("training failed differently:\n{a}\nthe JIT:\n{b}"));
            }
            counts.diagnostics += 1;
        }
        (Ok(a), Ok(b)) => {
            if a.stop != b.stop || a.steps != b.steps {
                return Err(format!(
                    "training stopped differently: {} after {} steps, the JIT {} after {}",
                    a.stop, a.steps, b.stop, b.steps
                ));
            }
            let numbers = |r: &runtime::Report| -> Vec<f64> {
                let mut v: Vec<f64> = r.params.iter().flat_map(|t| t.data.clone()).collect();
                v.push(r.train.loss);
                v.extend(r.train.metrics.iter().map(|(_, m)| *m));
                v
            };
            let (x, y) = (numbers(&a), numbers(&b));
            if x.len() != y.len() || x.iter().zip(&y).any(|(p, q)| !same_bits(*p, *q)) {
                return Err(format!(
                    "training ended with other numbers: interpreter {x:?}, JIT {y:?}"
                ));
            }
        }
        (Ok(_), Err(e)) => return Err(format!("the JIT failed to train: {}", e.render(false))),
        (Err(e), Ok(_)) => {
            return Err(format!(
                "the interpreter failed to train: {}",
                e.render(false)
            ))
        }
    }
    Ok(())
}

/// A loaded data set holds finite numbers, as many as its examples need.
fn well_formed(d: &Dataset) -> Result<(), String> {
    if d.is_empty() {
        return Err("a data set without examples loaded".into());
    }
    for (k, xs) in d.inputs.iter().enumerate() {
        if xs.len() != d.len() * d.sizes[k] {
            return Err(format!(
                "input {k}: {} numbers for {} examples of {}",
                xs.len(),
                d.len(),
                d.sizes[k]
            ));
        }
        if let Some(x) = xs.iter().find(|x| !x.is_finite()) {
            return Err(format!("input {k}: {x} loaded"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The base files load with their programs, unmutated.
    #[test]
    fn the_base_files_load() {
        let scratch = super::super::scratch_dir();
        let mut loaded = 0;
        for (i, base) in CSV.corpus().iter().enumerate() {
            let mut r = R::new(i as u64);
            let p = program(&CSV, base, &mut r);
            let mut counts = Counts::default();
            check(&CSV, base, &p, &scratch, &mut counts).unwrap();
            loaded += counts.loaded;
        }
        let _ = std::fs::remove_dir_all(&scratch);
        assert!(loaded >= 4, "{loaded}");
    }
}
