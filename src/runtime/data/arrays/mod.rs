//! Arrays as data: NumPy `.npy` files (one per input), the arrays of an
//! `.npz` archive (by name), and IDX files (one per input, see [`super::idx`]).
//! Example `r` of an input is entry `r` of its array's first axis.
//!
//! `.npy` is read with the npyz crate; an `.npz` is a zip archive of `.npy`
//! files (`NAME.npy`), opened with the zip crate (stored or deflated
//! members). A file's size is checked against its header before anything is
//! allocated, so a truncated file or a header that claims too much is an
//! error with the entry and byte offset where the data ends.

mod header;

pub use header::example_shape;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;

use super::{Dataset, Loading, Progress, Request, Rows};
use crate::diagnostic::{closest, Error, Location};
use crate::types::train::{Format, InputArray};

/// An array read from a file, in C (row-major) order.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

/// Elements between two progress reports.
pub(super) const REPORT_EVERY: usize = 1 << 16;

/// Reads the arrays of `req`'s source (`npz`, `npy` or `idx`).
pub fn load(req: &Request<'_>, progress: Progress<'_>) -> Result<Dataset, Error> {
    let source = req.source;
    let format = source.format;
    let mut archive = match format {
        Format::Npz => Some(Npz::open(req)?),
        _ => None,
    };
    // The bytes of every file to read, for the progress.
    let files: Vec<(usize, PathBuf)> = req
        .inputs
        .iter()
        .enumerate()
        .filter(|(k, _)| req.needed[*k])
        .filter_map(|(k, (name, _))| {
            let m = source.arrays.iter().find(|m| &m.input == name)?;
            Some((k, req.dir.join(&m.name)))
        })
        .collect();
    let total: u64 = match &archive {
        Some(a) => a.bytes,
        None => files
            .iter()
            .map(|(_, p)| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum(),
    };
    let mut before = 0u64;
    let mut data: Vec<Vec<f64>> = vec![Vec::new(); req.inputs.len()];
    // The number of examples, and the input whose array gave it.
    let mut examples: Option<(usize, usize)> = None;
    let mut first_shown: Option<String> = None;
    for (k, (name, shape)) in req.inputs.iter().enumerate() {
        if !req.needed[k] {
            continue;
        }
        let Some(mapping) = source.arrays.iter().find(|m| &m.input == name) else {
            return Err(Error::new(format!(
                "the data source gives no array for input `{name}`"
            )));
        };
        let shown = match &archive {
            Some(a) => a.shown.clone(),
            None => req.dir.join(&mapping.name).display().to_string(),
        };
        let what = match format {
            Format::Npz => format!("array `{}`", mapping.name),
            _ => "the file".to_string(),
        };
        let fail = |message: String| {
            let e = Error::at(Location::file(&shown), message);
            req.noted(e, mapping.span, mapped_here(mapping, format))
        };
        let mut report = |done: u64| {
            progress(&Loading {
                path: &shown,
                done: before + done,
                total,
            })
        };
        let (array, bytes) = match (&mut archive, format) {
            (Some(a), _) => a.read(&mapping.name, &mut report).map_err(fail)?,
            (None, Format::Npy) => {
                let path = req.dir.join(&mapping.name);
                let file =
                    File::open(&path).map_err(|e| req.open_error(&shown, &e, mapping.span))?;
                let bytes = file.metadata().map_or(u64::MAX, |m| m.len());
                let reader = BufReader::with_capacity(1 << 16, file);
                (
                    read_npy(reader, Some(bytes), &mut report).map_err(fail)?,
                    bytes,
                )
            }
            (None, _) => {
                let path = req.dir.join(&mapping.name);
                let file =
                    File::open(&path).map_err(|e| req.open_error(&shown, &e, mapping.span))?;
                let bytes = file.metadata().map_or(0, |m| m.len());
                (
                    super::idx::read(file, bytes, &mut report).map_err(fail)?,
                    bytes,
                )
            }
        };
        before += bytes;
        let Some((&n, rest)) = array.shape.split_first() else {
            return Err(fail(format!(
                "{what} is a single number (shape ()): its first axis must count the examples"
            )));
        };
        let per: usize = rest.iter().product();
        if per != shape.size() {
            let dims: Vec<String> = array.shape.iter().map(|d| d.to_string()).collect();
            let one = if rest.is_empty() {
                "a single number".to_string()
            } else {
                let rest: Vec<String> = rest.iter().map(|d| d.to_string()).collect();
                format!("[{}] ({} numbers)", rest.join(", "), per)
            };
            return Err(fail(format!(
                "{what} has shape [{}]: one example is {one}, but input `{name}` has shape {shape} ({} number{})",
                dims.join(", "),
                shape.size(),
                if shape.size() == 1 { "" } else { "s" }
            )));
        }
        if let Some(i) = array.data.iter().position(|x| !x.is_finite()) {
            return Err(fail(format!(
                "{what}: entry {} (counting from 0) holds {}, and every number must be finite",
                i / per.max(1),
                array.data[i]
            )));
        }
        match examples {
            Some((m, j)) if m != n => {
                return Err(fail(format!(
                    "{what} has {n} entries (examples) but the array of input `{}` has {m}: every input needs one entry per example",
                    req.inputs[j].0
                )));
            }
            Some(_) => {}
            None => examples = Some((n, k)),
        }
        if n == 0 {
            return Err(fail(format!("no examples: {what} has 0 entries")));
        }
        first_shown.get_or_insert(shown);
        data[k] = array.data;
    }
    let n = examples.map_or(0, |(n, _)| n);
    for (k, (_, shape)) in req.inputs.iter().enumerate() {
        if !req.needed[k] {
            data[k] = vec![0.0; n * shape.size()];
        }
    }
    req.scale(&mut data);
    let path = first_shown.unwrap_or_else(|| match &archive {
        Some(a) => a.shown.clone(),
        None => files
            .first()
            .map(|(_, p)| p.display().to_string())
            .unwrap_or_default(),
    });
    Ok(Dataset {
        path: PathBuf::from(path),
        inputs: data,
        sizes: req.inputs.iter().map(|(_, s)| s.size()).collect(),
        rows: Rows::Entries(n),
    })
}

/// `npz: x = "x_train"` for a note at the mapping.
fn mapped_here(m: &InputArray, format: Format) -> String {
    match format {
        Format::Npz => format!("mapped here: input `{}` reads array `{}`", m.input, m.name),
        _ => format!("mapped here: input `{}` reads this file", m.input),
    }
}

/// An open `.npz` archive.
struct Npz {
    zip: zip::ZipArchive<BufReader<File>>,
    shown: String,
    bytes: u64,
}

impl Npz {
    fn open(req: &Request<'_>) -> Result<Npz, Error> {
        let source = req.source;
        let path = req.dir.join(&source.path);
        let shown = path.display().to_string();
        let file = File::open(&path).map_err(|e| req.open_error(&shown, &e, source.path_span))?;
        let bytes = file.metadata().map_or(0, |m| m.len());
        let zip = zip::ZipArchive::new(BufReader::with_capacity(1 << 16, file)).map_err(|e| {
            let e = Error::at(
                Location::file(&shown),
                format!("not a valid .npz file (a zip archive of .npy files): {e}"),
            )
            .hint("a truncated or partly written file reads so; write it again with numpy.savez");
            req.noted(e, source.path_span, "read here")
        })?;
        Ok(Npz { zip, shown, bytes })
    }

    /// The array `name` (the member `name.npy`), and the bytes it takes in
    /// the archive.
    fn read(&mut self, name: &str, report: &mut dyn FnMut(u64)) -> Result<(Array, u64), String> {
        let member = format!("{name}.npy");
        let names: Vec<String> = self
            .zip
            .file_names()
            .filter_map(|f| f.ok())
            .filter_map(|f| f.strip_suffix(".npy").map(str::to_string))
            .collect();
        if !names.iter().any(|n| n == name) {
            let mut sorted = names.clone();
            sorted.sort();
            return Err(match closest(name, names.iter().map(String::as_str)) {
                Some(c) => format!("the archive has no array `{name}`; did you mean `{c}`?"),
                None if sorted.is_empty() => {
                    format!("the archive has no array `{name}`: it holds no .npy arrays")
                }
                None => format!(
                    "the archive has no array `{name}`; its arrays are: {}",
                    sorted.join(", ")
                ),
            });
        }
        let file = self
            .zip
            .by_name(&member)
            .map_err(|e| format!("array `{name}`: cannot be read from the archive: {e}"))?;
        let size = file.size();
        let compressed = file.compressed_size();
        let array =
            read_npy(file, Some(size), report).map_err(|e| format!("array `{name}`: {e}"))?;
        Ok((array, compressed))
    }
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// Reads one `.npy` stream of `bytes` bytes (if known), converting its
/// numbers to f64. `report` is told the bytes read so far.
pub fn read_npy<R: Read>(
    reader: R,
    bytes: Option<u64>,
    report: &mut dyn FnMut(u64),
) -> Result<Array, String> {
    let (prefix, reader) = header_checked(reader)?;
    let mut counting = Counting {
        inner: std::io::Cursor::new(prefix).chain(reader),
        count: 0,
    };
    let header = npyz::NpyHeader::from_reader(&mut counting).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            format!(
                "the file ends inside the .npy header (after {} bytes)",
                counting.count
            )
        } else {
            format!("not a valid .npy file: {e}")
        }
    })?;
    let header_bytes = counting.count;
    let npy = npyz::NpyFile::with_header(header, counting);
    let dtype = npy.dtype();
    let descr = dtype.descr().trim_matches('\'').to_string();
    let npyz::DType::Plain(ts) = &dtype else {
        return Err(format!(
            "the dtype {descr} is a structured dtype: one number per element is needed"
        ));
    };
    let (kind, item): (Kind, u64) = match (ts.type_char(), ts.size_field()) {
        (npyz::TypeChar::Float, 8) => (Kind::F64, 8),
        (npyz::TypeChar::Float, 4) => (Kind::F32, 4),
        (npyz::TypeChar::Int, 8) => (Kind::I64, 8),
        (npyz::TypeChar::Int, 4) => (Kind::I32, 4),
        (npyz::TypeChar::Int, 2) => (Kind::I16, 2),
        (npyz::TypeChar::Int, 1) => (Kind::I8, 1),
        (npyz::TypeChar::Uint, 8) => (Kind::U64, 8),
        (npyz::TypeChar::Uint, 4) => (Kind::U32, 4),
        (npyz::TypeChar::Uint, 2) => (Kind::U16, 2),
        (npyz::TypeChar::Uint, 1) => (Kind::U8, 1),
        (npyz::TypeChar::Bool, 1) => (Kind::Bool, 1),
        (c, _) => {
            return Err(format!(
                "the dtype `{descr}` ({}) is not supported: integers (8 to 64 bits), floats (32 or 64 bits) and booleans are",
                describe(c)
            ))
        }
    };
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        // As f64, the numbers must fit in memory's address range.
        .filter(|&n| n <= isize::MAX as usize / 8)
        .ok_or_else(|| format!("the header's shape {shape:?} is too large"))?;
    let dims = shape_text(&shape);
    let data_bytes = count as u64 * item;
    if let Some(bytes) = bytes {
        if header_bytes
            .checked_add(data_bytes)
            .is_none_or(|end| end > bytes)
        {
            let have = bytes.saturating_sub(header_bytes);
            return Err(format!(
                "the data is truncated: the header declares shape {dims} of `{descr}` ({data_bytes} bytes from byte offset {header_bytes}), but there are {have}: it ends in entry {} of the first axis (element {}, counting from 0)",
                (have / item) as usize / (count / shape.first().map_or(1, |&n| n.max(1))).max(1),
                have / item
            ));
        }
    }
    let fortran = npy.order() == npyz::Order::Fortran;
    // Room for what the header declares only when the file's size vouches
    // for it; else the buffer grows with what is read.
    let mut data: Vec<f64> = Vec::with_capacity(if bytes.is_some() { count } else { 0 });
    macro_rules! read_as {
        ($t:ty, $f:expr) => {{
            let reader = npy
                .data::<$t>()
                .map_err(|e| format!("the dtype `{descr}` cannot be read: {e}"))?;
            for (i, x) in reader.enumerate() {
                let x = x.map_err(|e| {
                    format!(
                        "the data ends at element {i} (counting from 0) of shape {dims}, byte offset {}: {e}",
                        header_bytes + i as u64 * item
                    )
                })?;
                data.push($f(x));
                if i % REPORT_EVERY == REPORT_EVERY - 1 {
                    report(header_bytes + i as u64 * item);
                }
            }
        }};
    }
    match kind {
        Kind::F64 => read_as!(f64, |x: f64| x),
        Kind::F32 => read_as!(f32, f64::from),
        Kind::I64 => read_as!(i64, |x: i64| x as f64),
        Kind::I32 => read_as!(i32, f64::from),
        Kind::I16 => read_as!(i16, f64::from),
        Kind::I8 => read_as!(i8, f64::from),
        Kind::U64 => read_as!(u64, |x: u64| x as f64),
        Kind::U32 => read_as!(u32, f64::from),
        Kind::U16 => read_as!(u16, f64::from),
        Kind::U8 => read_as!(u8, f64::from),
        Kind::Bool => read_as!(bool, |x: bool| if x { 1.0 } else { 0.0 }),
    }
    if data.len() != count {
        return Err(format!(
            "the data ends at element {} of shape {dims} (byte offset {})",
            data.len(),
            header_bytes + data.len() as u64 * item
        ));
    }
    report(header_bytes + data_bytes);
    if fortran {
        data = c_order(&data, &shape);
    }
    Ok(Array { shape, data })
}

/// The start of a `.npy` stream read up to the end of its header (or of
/// what there is of it), after checking that the header's shape has a
/// number of elements that fits in 64 bits (npyz multiplies them without
/// checking); the stream's rest.
fn header_checked<R: Read>(mut reader: R) -> Result<(Vec<u8>, R), String> {
    let mut prefix = Vec::new();
    (&mut reader)
        .take(12)
        .read_to_end(&mut prefix)
        .map_err(|e| format!("cannot read the .npy header: {e}"))?;
    let len = match prefix.get(6) {
        Some(1) if prefix.len() >= 10 => u64::from(u16::from_le_bytes([prefix[8], prefix[9]])),
        Some(2 | 3) if prefix.len() >= 12 => u64::from(u32::from_le_bytes([
            prefix[8], prefix[9], prefix[10], prefix[11],
        ])),
        _ => return Ok((prefix, reader)),
    };
    let start = if prefix[6] == 1 { 10 } else { 12 };
    (&mut reader)
        .take((start + len).saturating_sub(prefix.len() as u64))
        .read_to_end(&mut prefix)
        .map_err(|e| format!("cannot read the .npy header: {e}"))?;
    let text = String::from_utf8_lossy(&prefix[start.min(prefix.len() as u64) as usize..]);
    if let Some(shape) = text.split("'shape'").nth(1) {
        let tuple = shape.split(')').next().unwrap_or("");
        let dims = tuple
            .split(|c: char| !c.is_ascii_digit())
            .filter(|d| !d.is_empty());
        let fits = dims
            .map(|d| d.parse::<u64>().ok())
            .try_fold(1u64, |a, d| d.and_then(|d| a.checked_mul(d)))
            .is_some();
        if !fits {
            return Err(format!(
                "the header's shape {}) is too large",
                tuple.trim_start_matches([':', ' '])
            ));
        }
    }
    Ok((prefix, reader))
}

/// The element types read.
#[derive(Copy, Clone)]
enum Kind {
    F64,
    F32,
    I64,
    I32,
    I16,
    I8,
    U64,
    U32,
    U16,
    U8,
    Bool,
}

fn describe(c: npyz::TypeChar) -> &'static str {
    match c {
        npyz::TypeChar::Bool => "booleans of an unusual width",
        npyz::TypeChar::Int | npyz::TypeChar::Uint => "integers of an unusual width",
        npyz::TypeChar::Float => "floats of an unusual width",
        npyz::TypeChar::Complex => "complex numbers",
        npyz::TypeChar::TimeDelta => "time deltas",
        npyz::TypeChar::DateTime => "dates",
        npyz::TypeChar::ByteStr => "byte strings",
        npyz::TypeChar::UnicodeStr => "strings",
        npyz::TypeChar::RawData => "raw bytes",
        npyz::TypeChar::Object => "Python objects",
        _ => "not numbers",
    }
}

/// `[60000, 28, 28]`.
pub(super) fn shape_text(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(", "))
}

/// The elements of a column-major (Fortran-order) array of `shape`, in row
/// order.
fn c_order(data: &[f64], shape: &[usize]) -> Vec<f64> {
    let mut out = vec![0.0; data.len()];
    let mut index = vec![0usize; shape.len()];
    for x in out.iter_mut() {
        // The column-major offset of `index`.
        let mut offset = 0;
        let mut stride = 1;
        for (i, d) in index.iter().zip(shape) {
            offset += i * stride;
            stride *= d;
        }
        *x = data[offset];
        // The next index in row-major order.
        for (i, d) in index.iter_mut().zip(shape).rev() {
            *i += 1;
            if *i < *d {
                break;
            }
            *i = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests;
