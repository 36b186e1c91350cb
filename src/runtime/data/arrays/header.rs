//! The shape of one example of an array source, read from the file's
//! header only (an `.npy` header, an `.npz` member's header, an IDX
//! file's dimensions): what binds the sizes (`dim D`) of the inputs an
//! array source maps, before the program is checked and its data loaded.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::types::train::Format;

/// The shape of one entry of the array's first axis (the shape of one
/// example): `file` (relative to `dir`) is an `.npy` or IDX file, or, for
/// `npz`, the archive holding the array `array`. Errors are short reasons;
/// the loader reports a file's faults in full when it reads the data.
pub fn example_shape(
    dir: &Path,
    format: Format,
    file: &str,
    array: Option<&str>,
) -> Result<Vec<usize>, String> {
    let path = dir.join(file);
    let open = File::open(&path).map_err(|e| {
        format!(
            "cannot open `{}`: {}",
            path.display(),
            crate::diagnostic::io_reason(&e)
        )
    })?;
    let reader = BufReader::new(open);
    let shape = match (format, array) {
        (Format::Npz, Some(name)) => {
            let mut zip = zip::ZipArchive::new(reader)
                .map_err(|e| format!("`{}` is not a valid .npz file: {e}", path.display()))?;
            let member = zip
                .by_name(&format!("{name}.npy"))
                .map_err(|_| format!("the archive `{}` has no array `{name}`", path.display()))?;
            npy_shape(member)?
        }
        (Format::Idx, _) => idx_shape(reader)?,
        _ => npy_shape(reader)?,
    };
    match shape.split_first() {
        Some((_, rest)) => Ok(rest.to_vec()),
        None => Err("the array is a single number: its first axis must count the examples".into()),
    }
}

/// The shape in an `.npy` header.
fn npy_shape(r: impl Read) -> Result<Vec<usize>, String> {
    let header =
        npyz::NpyHeader::from_reader(r).map_err(|e| format!("not a valid .npy file: {e}"))?;
    Ok(header.shape().iter().map(|&d| d as usize).collect())
}

/// The dimensions in an IDX header (gzipped or not).
fn idx_shape(mut r: BufReader<File>) -> Result<Vec<usize>, String> {
    use std::io::BufRead;
    let gz = r
        .fill_buf()
        .map_err(|e| e.to_string())?
        .starts_with(&[0x1f, 0x8b]);
    let mut r: Box<dyn Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(r))
    } else {
        Box::new(r)
    };
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic)
        .map_err(|_| "not an IDX file: too short".to_string())?;
    if magic[0] != 0 || magic[1] != 0 {
        return Err("not an IDX file: a wrong magic number".into());
    }
    let mut dims = vec![0u8; 4 * magic[3] as usize];
    r.read_exact(&mut dims)
        .map_err(|_| "the file ends inside the IDX header".to_string())?;
    Ok(dims
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect())
}
