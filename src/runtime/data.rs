//! Training data: a CSV file read into one contiguous buffer per input, and
//! checked against the program's `input` declarations before any training.
//!
//! Decisions:
//! - With `header` not given, the first row is a header when none of its
//!   cells is a number (so a first data row with one bad cell is reported as
//!   a bad cell, not mistaken for a header).
//! - Cells are trimmed; every cell an input reads must be a finite number.
//!   Columns no input reads are not looked at, and rows may be longer than
//!   needed.
//! - Every error names the data file, the line, and for a cell its column
//!   (1-based, in characters, as editors count), with a note pointing at the
//!   .grad source that maps the input.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diagnostic::{closest, io_reason, Error, Location, Source};
use crate::shape::Shape;
use crate::span::Span;
use crate::types::train::{Column, Columns, DataSource, InputColumns};

/// Examples, one buffer per input.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// The file as it is shown in messages.
    pub path: PathBuf,
    /// `inputs[k]` holds `len() * sizes[k]` numbers, row-major: example `r`
    /// of input `k` is `inputs[k][r * sizes[k]..(r + 1) * sizes[k]]`. An input
    /// that was not asked for holds zeros.
    pub inputs: Vec<Vec<f64>>,
    /// The number of elements of each input's shape.
    pub sizes: Vec<usize>,
    /// The 1-based line of the file each example comes from.
    pub lines: Vec<usize>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
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

    /// `file:line` of example `r`.
    pub fn location(&self, r: usize) -> Location {
        Location::line(self.path.display().to_string(), self.lines[r])
    }
}

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
        path: String::new(),
        path_span: Span::default(),
        header: None,
        columns,
        span: Span::default(),
    }
}

/// Reads `path` as `source` says. `inputs` are the program's inputs in
/// declaration order; only those with `needed[k]` are read (the others hold
/// zeros), so that prediction needs no label column. `program` is the .grad
/// source `source` comes from, which notes point into; `named` is where it
/// names the file, if it does, and the directory the path is relative to.
pub fn load(
    path: &Path,
    source: &DataSource,
    inputs: &[(String, Shape)],
    needed: &[bool],
    program: &Arc<Source>,
    named: Option<(Span, &Path)>,
) -> Result<Dataset, Error> {
    let shown = path.display().to_string();
    let at_path = |e: Error, message: &str| match named {
        Some((span, _)) => e.note(Some(Location::span(program, span)), message),
        None => e,
    };
    let bytes = std::fs::read(path).map_err(|e| {
        let relative = match named {
            Some((_, dir)) if !dir.as_os_str().is_empty() => format!(
                "the path is relative to `{}`, the directory of the .grad file",
                dir.display()
            ),
            _ => "the path is relative to the working directory".to_string(),
        };
        let e = Error::at(
            Location::file(&shown),
            format!("cannot read the data file: {}", io_reason(&e)),
        );
        at_path(e, &relative)
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(&bytes[..]);
    let mut records = Vec::new();
    for r in reader.records() {
        let record = r.map_err(|e| csv_error(&shown, &e))?;
        // A line of only spaces is one empty cell: skip it like a blank line.
        if record.len() == 1 && record[0].is_empty() {
            continue;
        }
        records.push(record);
    }
    let header = match source.header {
        Some(h) => h,
        None => records
            .first()
            .is_some_and(|r| r.iter().all(|cell| cell.parse::<f64>().is_err())),
    };
    let names: Option<&csv::StringRecord> = if header { records.first() } else { None };
    let rows: &[csv::StringRecord] = if header {
        records.get(1..).unwrap_or_default()
    } else {
        &records
    };
    if rows.is_empty() {
        let message = if records.is_empty() {
            "no examples: the file is empty"
        } else {
            "no examples: the file has only a header"
        };
        return Err(at_path(
            Error::at(Location::file(&shown), message),
            "read here",
        ));
    }

    // Each input's column indices, resolved against the header.
    let mut reads: Vec<Option<Vec<usize>>> = Vec::with_capacity(inputs.len());
    for (k, (name, shape)) in inputs.iter().enumerate() {
        if !needed[k] {
            reads.push(None);
            continue;
        }
        let mapping = source.columns.iter().find(|c| &c.input == name);
        let Some(mapping) = mapping else {
            return Err(Error::new(format!(
                "the data mapping gives no columns for input `{name}`"
            )));
        };
        let mut cols = Vec::with_capacity(shape.size());
        for col in mapping.columns.to_list() {
            cols.push(match col {
                Column::Index(i) => i,
                Column::Name(n) => column_by_name(&shown, names, &n, mapping, program)?,
            });
        }
        if cols.len() != shape.size() {
            let e = Error::at(
                Location::file(&shown),
                format!(
                    "input `{name}` has shape {shape} ({} numbers) but is mapped to {} columns",
                    shape.size(),
                    cols.len()
                ),
            );
            return Err(noted(e, Some(mapping), program));
        }
        reads.push(Some(cols));
    }

    let sizes: Vec<usize> = inputs.iter().map(|(_, s)| s.size()).collect();
    let mut data: Vec<Vec<f64>> = sizes
        .iter()
        .map(|&n| Vec::with_capacity(n * rows.len()))
        .collect();
    let mut lines = Vec::with_capacity(rows.len());
    for record in rows {
        let line = record.position().map_or(0, |p| p.line() as usize);
        let offset = record.position().map_or(0, |p| p.byte() as usize);
        for (k, cols) in reads.iter().enumerate() {
            let Some(cols) = cols else {
                data[k].extend(std::iter::repeat_n(0.0, sizes[k]));
                continue;
            };
            let name = &inputs[k].0;
            let mapping = source.columns.iter().find(|c| &c.input == name);
            for &c in cols {
                let Some(cell) = record.get(c) else {
                    let e = Error::at(
                        Location::line(&shown, line),
                        format!(
                            "the row has {} column{} but input `{name}` reads column {c} (counting from 0)",
                            record.len(),
                            if record.len() == 1 { "" } else { "s" },
                        ),
                    );
                    return Err(noted(e, mapping, program));
                };
                match cell.parse::<f64>() {
                    Ok(x) if x.is_finite() => data[k].push(x),
                    _ => {
                        let col = field_column(&bytes, offset, c);
                        let what = if cell.is_empty() {
                            "an empty cell is not a number".to_string()
                        } else {
                            format!("`{cell}` is not a finite number")
                        };
                        let header_name = names
                            .and_then(|h| h.get(c))
                            .map(|h| format!(" `{h}`"))
                            .unwrap_or_default();
                        let e = Error::at(
                            Location::cell(&shown, line, col),
                            format!("{what} (column {c}{header_name}, read by input `{name}`)"),
                        );
                        return Err(noted(e, mapping, program));
                    }
                }
            }
        }
        let first = &records[0];
        if record.len() != first.len() {
            return Err(width_error(&shown, record, first, header));
        }
        lines.push(line);
    }
    Ok(Dataset {
        path: PathBuf::from(shown),
        inputs: data,
        sizes,
        lines,
    })
}

/// A row with another number of fields than the first record (the header,
/// or the first row): its values would be read into the wrong inputs, so it
/// is an error at its line even where the columns the inputs read exist.
fn width_error(
    shown: &str,
    record: &csv::StringRecord,
    first: &csv::StringRecord,
    header: bool,
) -> Error {
    let width = first.len();
    let line = record.position().map_or(0, |p| p.line() as usize);
    let against = if header {
        format!("the header has {width}")
    } else {
        let first_line = first.position().map_or(1, |p| p.line() as usize);
        format!("the first row (line {first_line}) has {width}")
    };
    let n = record.len();
    Error::at(
        Location::line(shown, line),
        format!(
            "the row has {n} field{}, but {against}",
            if n == 1 { "" } else { "s" }
        ),
    )
    .hint("every row needs one value per column; look for a missing or extra comma")
}

/// `e` with a note at the .grad mapping of an input, unless the mapping is
/// the default one (which is not in the source).
fn noted(e: Error, mapping: Option<&InputColumns>, program: &Arc<Source>) -> Error {
    match mapping.filter(|m| m.span != Span::default()) {
        Some(m) => e.note(
            Some(Location::span(program, m.span)),
            format!("mapped here: {}", describe_mapping(m)),
        ),
        None => e,
    }
}

fn describe_mapping(m: &InputColumns) -> String {
    let cols = m.columns.to_list();
    let list: Vec<String> = cols.iter().map(|c| c.to_string()).collect();
    format!(
        "input `{}` reads column{} {}",
        m.input,
        if cols.len() == 1 { "" } else { "s" },
        list.join(", ")
    )
}

fn column_by_name(
    shown: &str,
    header: Option<&csv::StringRecord>,
    name: &str,
    mapping: &InputColumns,
    program: &Arc<Source>,
) -> Result<usize, Error> {
    let Some(header) = header else {
        let e = Error::at(
            Location::line(shown, 1),
            format!("column `{name}` is asked for by name, but the file has no header row"),
        );
        return Err(noted(e, Some(mapping), program));
    };
    if let Some(i) = header.iter().position(|h| h == name) {
        return Ok(i);
    }
    let hint = match closest(name, header.iter()) {
        Some(c) => format!("; did you mean `{c}`?"),
        None => format!(
            "; the columns are: {}",
            header.iter().collect::<Vec<_>>().join(", ")
        ),
    };
    let e = Error::at(
        Location::line(shown, 1),
        format!("the header has no column `{name}`{hint}"),
    );
    Err(noted(e, Some(mapping), program))
}

fn csv_error(shown: &str, e: &csv::Error) -> Error {
    let location = match e.position() {
        Some(p) => Location::line(shown, p.line() as usize),
        None => Location::file(shown),
    };
    let message = match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "the file is not valid UTF-8".to_string(),
        csv::ErrorKind::Io(io) => format!("cannot read the data file: {}", io_reason(io)),
        _ => format!("not a valid CSV file: {e}"),
    };
    Error::at(location, message)
}

/// The 1-based character column where field `field` of the record starting
/// at byte `start` begins (commas inside double quotes do not separate).
fn field_column(bytes: &[u8], start: usize, field: usize) -> usize {
    let mut at = start.min(bytes.len());
    let mut seen = 0;
    let mut quoted = false;
    while seen < field && at < bytes.len() {
        match bytes[at] {
            b'"' => quoted = !quoted,
            b',' if !quoted => seen += 1,
            b'\n' if !quoted => break,
            _ => {}
        }
        at += 1;
    }
    // Skip the spaces the reader trims, to point at the cell itself.
    while at < bytes.len() && (bytes[at] == b' ' || bytes[at] == b'\t') {
        at += 1;
    }
    String::from_utf8_lossy(&bytes[start.min(at)..at])
        .chars()
        .count()
        + 1
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
mod tests {
    use super::*;

    #[test]
    fn field_columns_count_characters() {
        let text = b"a,b,c\n1, 22 ,\"x,y\",4\n";
        assert_eq!(field_column(text, 6, 0), 1);
        assert_eq!(field_column(text, 6, 1), 4);
        assert_eq!(field_column(text, 6, 2), 8);
        assert_eq!(field_column(text, 6, 3), 14);
    }

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
