//! Training data: a CSV file, NumPy arrays (`.npy`, `.npz`) or IDX files
//! read into one contiguous buffer per input, and checked against the
//! program's `input` declarations before any training.
//!
//! - [`csv`]: one example a row, the inputs mapped to columns.
//! - [`arrays`]: one example an entry of the first axis of an array; the
//!   rest of the array's shape must hold as many numbers as the input's
//!   shape (an IDX image `[N, 28, 28]` feeds `input x: [1, 28, 28]`), and
//!   every input's array the same number of entries. `npy` and `npz`
//!   through the npyz crate; [`idx`] by hand.
//!
//! Decisions:
//! - Every number is converted to f64 as it is read: integer dtypes of 8 to
//!   64 bits, floats of 32 and 64, booleans; anything else (strings,
//!   objects, complex numbers, records) is an error naming the dtype.
//! - `scale` multiplies every input that is not a scalar (features, images),
//!   never a scalar input (a label or a target).
//! - Every error names the file, and where it helps the line and column (CSV)
//!   or the entry and byte offset (arrays), with a note pointing at the
//!   .grad source that maps the input. Nothing here panics on a bad file.
//! - Loading reports its progress (bytes read of the total) to a callback,
//!   about every 64 KiB to a few MiB: the caller decides whether to show it.

pub mod arrays;
pub mod csv;
pub mod idx;
mod lines;
mod records;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diagnostic::{io_reason, Error, Location, Source};
use crate::shape::Shape;
use crate::span::Span;
use crate::types::train::{Columns, DataSource, Format, InputColumns};

/// Examples, one buffer per input.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// The file as it is shown in messages (for a file per input, the first
    /// input's).
    pub path: PathBuf,
    /// `inputs[k]` holds `len() * sizes[k]` numbers, row-major: example `r`
    /// of input `k` is `inputs[k][r * sizes[k]..(r + 1) * sizes[k]]`. An input
    /// that was not asked for holds zeros.
    pub inputs: Vec<Vec<f64>>,
    /// The number of elements of each input's shape.
    pub sizes: Vec<usize>,
    /// Where each example comes from.
    rows: Rows,
}

/// Where the examples of a [`Dataset`] come from.
#[derive(Clone, Debug, PartialEq)]
enum Rows {
    /// The 1-based line of a CSV file of every example (u32: at most half
    /// the size of a one-column example).
    Lines(Vec<u32>),
    /// This many entries of arrays, in order.
    Entries(usize),
}

impl Dataset {
    pub fn len(&self) -> usize {
        match &self.rows {
            Rows::Lines(l) => l.len(),
            Rows::Entries(n) => *n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Example `r` of input `k`.
    pub fn example(&self, k: usize, r: usize) -> &[f64] {
        let n = self.sizes[k];
        &self.inputs[k][r * n..(r + 1) * n]
    }

    /// Example `r` as one tensor per input slot of a function (whose inputs
    /// are those the data was loaded for, in order).
    pub fn tensors(&self, slots: &[crate::ir::Slot], r: usize) -> Vec<crate::shape::Tensor> {
        slots
            .iter()
            .enumerate()
            .map(|(k, s)| crate::shape::Tensor::new(s.shape.clone(), self.example(k, r).to_vec()))
            .collect()
    }

    /// `file:line` of example `r` of a CSV file; the file of an array's.
    pub fn location(&self, r: usize) -> Location {
        let path = self.path.display().to_string();
        match &self.rows {
            Rows::Lines(l) => Location::line(path, l[r] as usize),
            Rows::Entries(_) => Location::file(path),
        }
    }

    /// Where example `r` is, and a note's words for it.
    pub fn example_note(&self, r: usize) -> (Location, String) {
        let words = match &self.rows {
            Rows::Lines(_) => "in the example on this line".to_string(),
            Rows::Entries(_) => format!("in example {r} (counting from 0) of the data"),
        };
        (self.location(r), words)
    }
}

/// Loading's progress, told to the callback of [`load`].
#[derive(Clone, Debug, PartialEq)]
pub struct Loading<'a> {
    /// The file being read, as shown in messages.
    pub path: &'a str,
    /// Bytes read so far, of `total` (of the file, or of all the files of
    /// a source).
    pub done: u64,
    pub total: u64,
}

/// The progress callback of [`load`].
pub type Progress<'a> = &'a mut dyn FnMut(&Loading<'_>);

/// The mapping used for a data file when the program has no `data` setting:
/// the inputs read consecutive columns in declaration order, `header`
/// detected.
pub fn default_source(inputs: &[(String, Shape)]) -> DataSource {
    let mut start = 0;
    let columns = inputs
        .iter()
        .map(|(name, shape)| {
            let end = start + shape.size();
            let c = InputColumns {
                input: name.clone(),
                columns: Columns::Range { start, end },
                span: Span::default(),
            };
            start = end;
            c
        })
        .collect();
    DataSource {
        format: Format::Csv,
        path: String::new(),
        path_span: Span::default(),
        header: None,
        columns,
        arrays: Vec::new(),
        scale: None,
        span: Span::default(),
    }
}

/// The source of a data file named on the command line (`--data FILE`),
/// relative to the working directory. A `.npz` file is read with the train
/// block's array names when its `data` is an `npz`, else with arrays named
/// as the inputs; any other file is a CSV file, read with the train block's
/// column mapping when its `data` is a `csv`, else with consecutive
/// columns. The train block's `scale` is kept.
pub fn command_line_source(
    data: Option<&DataSource>,
    inputs: &[(String, Shape)],
    path: &Path,
) -> DataSource {
    let npz = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npz"));
    let format = if npz { Format::Npz } else { Format::Csv };
    let mut source = match data {
        Some(d) if d.format == format => d.clone(),
        _ if npz => DataSource {
            format,
            columns: Vec::new(),
            arrays: inputs
                .iter()
                .map(|(n, _)| crate::types::train::InputArray {
                    input: n.clone(),
                    name: n.clone(),
                    span: Span::default(),
                })
                .collect(),
            scale: data.and_then(|d| d.scale),
            ..default_source(inputs)
        },
        _ => DataSource {
            scale: data.and_then(|d| d.scale),
            ..default_source(inputs)
        },
    };
    source.path = path.to_string_lossy().into_owned();
    source.path_span = Span::default();
    source
}

/// What a loader needs besides the source: the program's inputs in
/// declaration order, which of them to read (the others hold zeros, so
/// that prediction needs no label), and the .grad source that notes point
/// into.
pub struct Request<'a> {
    /// The directory the source's paths are relative to (the .grad file's,
    /// or empty for a path from the command line).
    pub dir: &'a Path,
    pub source: &'a DataSource,
    pub inputs: &'a [(String, Shape)],
    pub needed: &'a [bool],
    pub program: &'a Arc<Source>,
}

impl Request<'_> {
    /// `e` with a note at `span` of the program (unless it is not in the
    /// program: a default mapping, a path from the command line).
    fn noted(&self, e: Error, span: Span, message: impl Into<String>) -> Error {
        if span == Span::default() {
            e
        } else {
            e.note(Some(Location::span(self.program, span)), message)
        }
    }

    /// The error of a file that cannot be opened, with a note saying what
    /// the path is relative to, at `span` of the program.
    fn open_error(&self, shown: &str, e: &std::io::Error, span: Span) -> Error {
        let relative = if span == Span::default() || self.dir.as_os_str().is_empty() {
            "the path is relative to the working directory".to_string()
        } else {
            format!(
                "the path is relative to `{}`, the directory of the .grad file",
                self.dir.display()
            )
        };
        let e = Error::at(
            Location::file(shown),
            format!("cannot read the data file: {}", io_reason(e)),
        );
        self.noted(e, span, relative)
    }

    /// Multiplies the inputs that are not scalars by the source's `scale`.
    fn scale(&self, data: &mut [Vec<f64>]) {
        let Some(s) = self.source.scale else { return };
        for (k, (_, shape)) in self.inputs.iter().enumerate() {
            if !shape.is_scalar() && self.needed[k] {
                data[k].iter_mut().for_each(|x| *x *= s);
            }
        }
    }
}

/// Reads the data `req` describes, telling `progress` how far it is.
pub fn load(req: &Request<'_>, progress: Progress<'_>) -> Result<Dataset, Error> {
    match req.source.format {
        Format::Csv => csv::load(req, progress),
        Format::Npz | Format::Npy | Format::Idx => arrays::load(req, progress),
    }
}

/// Shuffles `xs` in place with the Fisher-Yates algorithm, drawing from a
/// generator's raw 64-bit output (so the order depends only on the seed, not
/// on a library's sampling method).
pub fn shuffle<T>(xs: &mut [T], rng: &mut impl rand::Rng) {
    for i in (1..xs.len()).rev() {
        // Lemire's multiply-shift: a number in 0..=i.
        let j = ((rng.next_u64() as u128 * (i as u128 + 1)) >> 64) as usize;
        xs.swap(i, j);
    }
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_is_a_permutation() {
        use rand::SeedableRng;
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
        let mut xs: Vec<usize> = (0..50).collect();
        shuffle(&mut xs, &mut rng);
        let mut sorted = xs.clone();
        sorted.sort();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_ne!(xs, sorted);
    }
}
