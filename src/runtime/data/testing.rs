//! Test support: temporary directories, and `.npy`/`.npz` files written with
//! npyz (the same crate and format as NumPy's).

use std::io::Write;

use npyz::WriterBuilder;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{load, Dataset, Request};
use crate::diagnostic::{Error, Source};
use crate::shape::Shape;
use crate::span::Span;
use crate::types::train::{DataSource, Format, InputArray};

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("gradc-data-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        TempDir(d)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The bytes of a C-order `.npy` array of `shape`.
pub fn npy<T: npyz::Serialize + npyz::AutoSerialize + Copy>(shape: &[u64], data: &[T]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = npyz::WriteOptions::<T>::new()
        .default_dtype()
        .shape(shape)
        .writer(&mut out)
        .begin_nd()
        .expect("npy header");
    w.extend(data.iter().copied()).expect("npy data");
    w.finish().expect("npy end");
    out
}

/// A `.npy` file's bytes with a header written by hand: `descr` any dtype,
/// `body` the raw data.
pub fn npy_raw(descr: &str, shape: &str, fortran: bool, body: &[u8]) -> Vec<u8> {
    let order = if fortran { "True" } else { "False" };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend_from_slice(body);
    out
}

/// Writes an `.npz` archive of `(name, .npy bytes)`, deflated as
/// `numpy.savez_compressed` does when `deflate`.
pub fn write_npz(path: &Path, arrays: &[(&str, Vec<u8>)], deflate: bool) {
    let file = std::fs::File::create(path).expect("npz file");
    let mut zip = zip::ZipWriter::new(file);
    let method = if deflate {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let options = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, bytes) in arrays {
        zip.start_file(format!("{name}.npy"), options)
            .expect("npz member");
        zip.write_all(bytes).expect("npz data");
    }
    zip.finish().expect("npz end");
}

/// Loads an array source of `format` from `dir`: `path` the `.npz` (or
/// empty), `arrays` each input's array or file, `inputs` the program's.
pub fn load_arrays(
    dir: &Path,
    format: Format,
    path: &str,
    arrays: &[(&str, &str)],
    inputs: &[(&str, Shape)],
    scale: Option<f64>,
) -> Result<Dataset, Error> {
    let source = DataSource {
        format,
        path: path.to_string(),
        path_span: Span::default(),
        header: None,
        columns: Vec::new(),
        arrays: arrays
            .iter()
            .map(|(i, n)| InputArray {
                input: i.to_string(),
                name: n.to_string(),
                span: Span::default(),
            })
            .collect(),
        scale,
        span: Span::default(),
    };
    let inputs: Vec<(String, Shape)> = inputs
        .iter()
        .map(|(n, s)| (n.to_string(), s.clone()))
        .collect();
    let needed = vec![true; inputs.len()];
    let program: Arc<Source> = Source::new("test.grad", "");
    let req = Request {
        dir,
        source: &source,
        inputs: &inputs,
        needed: &needed,
        program: &program,
    };
    load(&req, &mut |_| {})
}
