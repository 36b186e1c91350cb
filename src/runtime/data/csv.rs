//! A CSV file, one example a row, read straight into the inputs' buffers.
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
//! - Speed and memory: the file is streamed (never held whole) a record at a
//!   time into one reused record ([`records`](super::records): a `memchr`
//!   fast path for files without quotes, the csv crate for the others),
//!   each cell parsed from its bytes with no allocation; the buffers grow by
//!   the rows the rest of the file is expected to hold (from the bytes per
//!   row so far), so they end close to the data's size instead of up to
//!   twice it.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use super::lines::{self, Plan, Stop};
use super::records::{Block, Next, Reader, Rec};
use super::{Dataset, Loading, Progress, Request, Rows};
use crate::diagnostic::{closest, Error, Location};
use crate::types::train::{Column, InputColumns};

/// Rows between two progress reports.
const REPORT_EVERY: usize = 1 << 14;

/// Reads the CSV file of `req`.
pub fn load(req: &Request<'_>, progress: Progress<'_>) -> Result<Dataset, Error> {
    match load_with(req, progress, true)? {
        Some(ds) => Ok(ds),
        None => load_with(req, progress, false)?
            .ok_or_else(|| Error::new("the CSV reader gave up on the file")),
    }
}

/// [`load`], on the fast path or not; `None` when the fast path cannot
/// read the file.
fn load_with(
    req: &Request<'_>,
    progress: Progress<'_>,
    fast: bool,
) -> Result<Option<Dataset>, Error> {
    let source = req.source;
    let path = req.dir.join(&source.path);
    let shown = path.display().to_string();
    let at_path = |e: Error, message: &str| req.noted(e, source.path_span, message);
    let file = File::open(&path).map_err(|e| req.open_error(&shown, &e, source.path_span))?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = Reader::new(file, fast);
    let mut record = Rec::default();
    // The first record that is not blank: the header or the first row.
    let first = loop {
        match reader.read(&mut record, &shown)? {
            Next::End => break None,
            Next::Fallback => return Ok(None),
            Next::Record if blank(&record) => {}
            Next::Record => break Some(record.clone()),
        }
    };
    let header = match source.header {
        Some(h) => h,
        None => first
            .as_ref()
            .is_some_and(|r| r.iter().all(|cell| parse(cell).is_none())),
    };
    let names: Option<Vec<String>> = first.as_ref().filter(|_| header).map(|r| {
        r.iter()
            .map(|c| String::from_utf8_lossy(c.trim_ascii()).into_owned())
            .collect()
    });
    let first = first.ok_or_else(|| {
        at_path(
            Error::at(Location::file(&shown), "no examples: the file is empty"),
            "read here",
        )
    })?;
    let width = first.len();
    let first_line = first.line;

    // Each input's column indices, resolved against the header.
    let inputs = req.inputs;
    let mut reads: Vec<Option<Vec<usize>>> = Vec::with_capacity(inputs.len());
    for (k, (name, shape)) in inputs.iter().enumerate() {
        if !req.needed[k] {
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
                Column::Name(n) => column_by_name(req, &shown, names.as_deref(), &n, mapping)?,
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
            return Err(noted(req, e, Some(mapping)));
        }
        reads.push(Some(cols));
    }

    let sizes: Vec<usize> = inputs.iter().map(|(_, s)| s.size()).collect();
    let mut data: Vec<Vec<f64>> = vec![Vec::new(); inputs.len()];
    let mut lines: Vec<u32> = Vec::new();
    let row = Row {
        req,
        shown: &shown,
        path: &path,
        names: names.as_deref(),
        reads: &reads,
        sizes: &sizes,
        width,
        header,
        first_line,
    };
    if !header {
        row.add(&first, &mut data, &mut lines)?;
    }
    let start = first.offset;
    let mut rows = Buffers {
        data,
        lines,
        start,
        total,
    };
    if let Reader::Fast(fast) = &mut reader {
        let plan = Plan::new(&reads, &sizes, width);
        while let Some(block) = fast.block(&shown)? {
            if !rows.add_block(&block, &plan, &row)? {
                return Ok(None);
            }
            progress(&Loading {
                path: &shown,
                done: block.offset + block.bytes.len() as u64,
                total,
            });
        }
    } else {
        loop {
            match reader.read(&mut record, &shown)? {
                Next::End => break,
                Next::Fallback => return Ok(None),
                Next::Record => {}
            }
            if blank(&record) {
                continue;
            }
            if rows.lines.len() == rows.lines.capacity() {
                rows.grow(&sizes, record.offset, 1);
            }
            row.add(&record, &mut rows.data, &mut rows.lines)?;
            if rows.lines.len().is_multiple_of(REPORT_EVERY) {
                progress(&Loading {
                    path: &shown,
                    done: record.offset,
                    total,
                });
            }
        }
    }
    let Buffers {
        mut data,
        mut lines,
        ..
    } = rows;
    if lines.is_empty() {
        return Err(at_path(
            Error::at(
                Location::file(&shown),
                "no examples: the file has only a header",
            ),
            "read here",
        ));
    }
    progress(&Loading {
        path: &shown,
        done: total,
        total,
    });
    for d in &mut data {
        d.shrink_to_fit();
    }
    lines.shrink_to_fit();
    req.scale(&mut data);
    Ok(Some(Dataset {
        path: PathBuf::from(shown),
        inputs: data,
        sizes,
        rows: Rows::Lines(lines),
    }))
}

/// The buffers rows are read into.
struct Buffers {
    data: Vec<Vec<f64>>,
    lines: Vec<u32>,
    /// The file offset of the first record.
    start: u64,
    /// The file's size.
    total: u64,
}

impl Buffers {
    /// Reserves room for `at_least` rows more, and for the rows the rest of
    /// the file is expected to hold: the bytes after `done` at the bytes
    /// per row so far, and a tenth more (a doubling `Vec` could end at
    /// twice the data's size).
    fn grow(&mut self, sizes: &[usize], done: u64, at_least: usize) {
        let read = done.saturating_sub(self.start);
        let left = self.total - done.min(self.total);
        let rows = self.lines.len().max(1) as u64;
        let per_row = (read / rows).max(1);
        let more = ((left / per_row + left / per_row / 10 + 1024) as usize).max(at_least);
        self.lines.reserve_exact(more);
        for (d, &n) in self.data.iter_mut().zip(sizes) {
            d.reserve_exact(more * n);
        }
    }

    /// Appends the rows of `block`, parsed in pieces; `Ok(false)` when the
    /// file needs the csv crate. A bad line is read again as a record, for
    /// its error.
    fn add_block(&mut self, block: &Block<'_>, plan: &Plan, row: &Row<'_>) -> Result<bool, Error> {
        for piece in lines::parse_block(block.bytes, plan) {
            let n = piece.lines.len();
            if self.lines.capacity() - self.lines.len() < n {
                let done = block.offset + block.bytes.len() as u64;
                self.grow(row.sizes, done, n);
            }
            for (d, p) in self.data.iter_mut().zip(&piece.data) {
                d.extend_from_slice(p);
            }
            let line = |i: usize| u32::try_from(block.line + i).unwrap_or(u32::MAX);
            self.lines.extend(piece.lines.iter().map(|&i| line(i)));
            match piece.stop {
                None => {}
                Some(Stop::Fallback) => return Ok(false),
                Some(Stop::Bad { at, line }) => {
                    let text = &block.bytes[at..];
                    let end = memchr::memchr(b'\n', text).unwrap_or(text.len());
                    let text = text[..end].strip_suffix(b"\r").unwrap_or(&text[..end]);
                    let mut record = Rec::default();
                    record.set_line(text, block.line + line, block.offset + at as u64);
                    row.add(&record, &mut self.data, &mut self.lines)?;
                    return Err(Error::new(format!(
                        "the CSV reader found no error on line {} that its fast path stopped at",
                        block.line + line
                    )));
                }
            }
        }
        Ok(true)
    }
}

/// A line of only spaces is one empty cell: skipped like a blank line.
fn blank(record: &Rec) -> bool {
    record.len() == 1 && record.get(0).is_some_and(|c| c.trim_ascii().is_empty())
}

/// A cell as a number, if it is one (finite or not). Cells are trimmed here,
/// not by the reader (whose `Trim` copies every record).
pub(super) fn parse(cell: &[u8]) -> Option<f64> {
    fast_float2::parse(cell.trim_ascii()).ok()
}

/// What reading a row needs.
struct Row<'a> {
    req: &'a Request<'a>,
    shown: &'a str,
    path: &'a std::path::Path,
    names: Option<&'a [String]>,
    reads: &'a [Option<Vec<usize>>],
    sizes: &'a [usize],
    width: usize,
    header: bool,
    first_line: usize,
}

impl Row<'_> {
    /// Appends the example of `record` to `data`, and its line to `lines`.
    fn add(&self, record: &Rec, data: &mut [Vec<f64>], lines: &mut Vec<u32>) -> Result<(), Error> {
        let line = record.line;
        for (k, cols) in self.reads.iter().enumerate() {
            let Some(cols) = cols else {
                data[k].extend(std::iter::repeat_n(0.0, self.sizes[k]));
                continue;
            };
            for &c in cols {
                match record.get(c).map(parse) {
                    Some(Some(x)) if x.is_finite() => data[k].push(x),
                    _ => return Err(self.cell_error(record, k, c)),
                }
            }
        }
        if record.len() != self.width {
            return Err(self.width_error(record));
        }
        lines.push(u32::try_from(line).unwrap_or(u32::MAX));
        Ok(())
    }

    /// Column `c` of `record`, read by input `k`, is missing or not a
    /// finite number.
    fn cell_error(&self, record: &Rec, k: usize, c: usize) -> Error {
        let line = record.line;
        let name = &self.req.inputs[k].0;
        let mapping = self.req.source.columns.iter().find(|m| &m.input == name);
        let Some(cell) = record.get(c) else {
            let e = Error::at(
                Location::line(self.shown, line),
                format!(
                    "the row has {} column{} but input `{name}` reads column {c} (counting from 0)",
                    record.len(),
                    if record.len() == 1 { "" } else { "s" },
                ),
            );
            return noted(self.req, e, mapping);
        };
        let cell = String::from_utf8_lossy(cell.trim_ascii());
        let offset = record.offset;
        let col = self.column_at(offset, c);
        let what = if cell.is_empty() {
            "an empty cell is not a number".to_string()
        } else {
            format!("`{cell}` is not a finite number")
        };
        let header_name = self
            .names
            .and_then(|h| h.get(c))
            .map(|h| format!(" `{h}`"))
            .unwrap_or_default();
        let e = Error::at(
            Location::cell(self.shown, line, col),
            format!("{what} (column {c}{header_name}, read by input `{name}`)"),
        );
        noted(self.req, e, mapping)
    }

    /// The character column of field `field` of the record at byte
    /// `offset`, read again from the file (only for an error: the file is
    /// not kept).
    fn column_at(&self, offset: u64, field: usize) -> usize {
        let mut text = Vec::new();
        let read = File::open(self.path).and_then(|mut f| {
            f.seek(SeekFrom::Start(offset))?;
            f.take(1 << 20).read_to_end(&mut text)
        });
        match read {
            Ok(_) => field_column(&text, 0, field),
            Err(_) => 1,
        }
    }

    /// A row with another number of fields than the first record (the
    /// header, or the first row): its values would be read into the wrong
    /// inputs, so it is an error at its line even where the columns the
    /// inputs read exist.
    fn width_error(&self, record: &Rec) -> Error {
        let width = self.width;
        let line = record.line;
        let against = if self.header {
            format!("the header has {width}")
        } else {
            format!("the first row (line {}) has {width}", self.first_line)
        };
        let n = record.len();
        Error::at(
            Location::line(self.shown, line),
            format!(
                "the row has {n} field{}, but {against}",
                if n == 1 { "" } else { "s" }
            ),
        )
        .hint("every row needs one value per column; look for a missing or extra comma")
    }
}

/// `e` with a note at the .grad mapping of an input, unless the mapping is
/// the default one (which is not in the source).
fn noted(req: &Request<'_>, e: Error, mapping: Option<&InputColumns>) -> Error {
    match mapping {
        Some(m) => req.noted(e, m.span, format!("mapped here: {}", describe_mapping(m))),
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
    req: &Request<'_>,
    shown: &str,
    header: Option<&[String]>,
    name: &str,
    mapping: &InputColumns,
) -> Result<usize, Error> {
    let Some(header) = header else {
        let e = Error::at(
            Location::line(shown, 1),
            format!("column `{name}` is asked for by name, but the file has no header row"),
        );
        return Err(noted(req, e, Some(mapping)));
    };
    if let Some(i) = header.iter().position(|h| h == name) {
        return Ok(i);
    }
    let hint = match closest(name, header.iter().map(String::as_str)) {
        Some(c) => format!("; did you mean `{c}`?"),
        None => format!("; the columns are: {}", header.join(", ")),
    };
    let e = Error::at(
        Location::line(shown, 1),
        format!("the header has no column `{name}`{hint}"),
    );
    Err(noted(req, e, Some(mapping)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Source;
    use crate::runtime::data::testing::TempDir;
    use crate::shape::Shape;

    /// A CSV source of `x: [2]` (columns 0, 1) and `y` (column 2).
    fn load_csv(
        dir: &std::path::Path,
        file: &str,
        progress: Progress<'_>,
    ) -> Result<Dataset, Error> {
        let inputs = vec![
            ("x".to_string(), Shape(vec![2])),
            ("y".to_string(), Shape::scalar()),
        ];
        let source = crate::types::train::DataSource {
            path: file.to_string(),
            ..super::super::default_source(&inputs)
        };
        let program = Source::new("t.grad", "");
        let req = Request {
            dir,
            source: &source,
            inputs: &inputs,
            needed: &[true, true],
            program: &program,
        };
        load(&req, progress)
    }

    #[test]
    fn large_files_report_progress_and_end_near_their_size() {
        let d = TempDir::new("csv-large");
        let mut text = String::from("a,b,label\n");
        let rows = 50_000;
        for i in 0..rows {
            // Rows of growing width, so that the first rows underestimate
            // the bytes per row.
            text.push_str(&format!("{i}.5,-{},{}\n", i * 1000, i % 3));
        }
        std::fs::write(d.path("big.csv"), &text).unwrap();
        let mut events = Vec::new();
        let ds = load_csv(&d.0, "big.csv", &mut |l| events.push((l.done, l.total))).unwrap();
        assert_eq!(ds.len(), rows);
        assert_eq!(
            ds.example(0, rows - 1),
            &[(rows - 1) as f64 + 0.5, -((rows - 1) as f64) * 1000.0]
        );
        assert_eq!(
            ds.location(2),
            Location::line(d.path("big.csv").display().to_string(), 4)
        );
        // Progress only goes forward, and ends at the file's size.
        assert!(events.len() >= 3, "{events:?}");
        assert!(events.windows(2).all(|w| w[0].0 <= w[1].0), "{events:?}");
        let total = text.len() as u64;
        assert_eq!(events.last(), Some(&(total, total)));
        // The buffers hold what they need, not up to twice that.
        for (k, v) in ds.inputs.iter().enumerate() {
            assert!(
                v.capacity() <= v.len() + v.len() / 10,
                "input {k}: {} of {}",
                v.capacity(),
                v.len()
            );
        }
    }

    #[test]
    fn bad_cells_are_located_in_a_streamed_file() {
        let d = TempDir::new("csv-bad");
        std::fs::write(d.path("b.csv"), "1,2,3\n4, 5 ,6\n7,  x9,8\n").unwrap();
        let e = load_csv(&d.0, "b.csv", &mut |_| {}).unwrap_err();
        assert_eq!(
            e.render(false).lines().next().unwrap_or_default(),
            format!(
                "{}:3:5: error: `x9` is not a finite number (column 1, read by input `x`)",
                d.path("b.csv").display()
            )
        );
    }

    #[test]
    fn field_columns_count_characters() {
        let text = b"a,b,c\n1, 22 ,\"x,y\",4\n";
        assert_eq!(field_column(text, 6, 0), 1);
        assert_eq!(field_column(text, 6, 1), 4);
        assert_eq!(field_column(text, 6, 2), 8);
        assert_eq!(field_column(text, 6, 3), 14);
    }
}
