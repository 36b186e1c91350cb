//! The IDX format, MNIST's: a 4-byte magic number (two zero bytes, the
//! element type, the number of dimensions), the dimensions as big-endian
//! u32s, then the elements, big-endian, in row-major order. A file that
//! starts with gzip's magic (MNIST ships `.gz` files) is decompressed as it
//! is read.
//!
//! No crate for it is kept up, and it is small enough to read here; every
//! malformed file (too short, a wrong magic number, a truncated header or
//! data, bytes after the data) is an error message with the byte offset.

use std::io::{BufRead, BufReader, Read};

use super::arrays::{shape_text, Array, REPORT_EVERY};

/// The element types of IDX: code, size in bytes, name.
const TYPES: &[(u8, usize, &str)] = &[
    (0x08, 1, "unsigned byte"),
    (0x09, 1, "signed byte"),
    (0x0B, 2, "short"),
    (0x0C, 4, "int"),
    (0x0D, 4, "float"),
    (0x0E, 8, "double"),
];

/// Reads an IDX file of `bytes` bytes (gzipped or not), telling `report`
/// the bytes read of the file so far.
pub fn read(file: impl Read, bytes: u64, report: &mut dyn FnMut(u64)) -> Result<Array, String> {
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let peek = reader.fill_buf().map_err(|e| e.to_string())?;
    if peek.starts_with(&[0x1f, 0x8b]) {
        let gz = flate2::read::GzDecoder::new(reader);
        read_plain(BufReader::with_capacity(1 << 16, gz), None, report)
    } else {
        read_plain(reader, Some(bytes), report)
    }
}

/// Reads the elements of an uncompressed IDX stream. `bytes`: the stream's
/// length when it is the file itself (not a gzip stream's output), checked
/// against the header before anything is allocated.
fn read_plain(
    mut r: impl Read,
    bytes: Option<u64>,
    report: &mut dyn FnMut(u64),
) -> Result<Array, String> {
    let exact = bytes.is_some();
    let mut magic = [0u8; 4];
    let got = read_full(&mut r, &mut magic)?;
    if got < 4 {
        return Err(format!(
            "not an IDX file: it has {got} byte{}, fewer than the 4 of the magic number",
            if got == 1 { "" } else { "s" }
        ));
    }
    if magic[0] != 0 || magic[1] != 0 {
        return Err(format!(
            "not an IDX file: the magic number starts with 0x{:02x} 0x{:02x}, not 0x00 0x00",
            magic[0], magic[1]
        ));
    }
    let Some(&(_, size, type_name)) = TYPES.iter().find(|t| t.0 == magic[2]) else {
        return Err(format!(
            "not an IDX file: unknown element type 0x{:02x} at byte offset 2 (known: 0x08 to 0x0e)",
            magic[2]
        ));
    };
    let rank = magic[3] as usize;
    if rank == 0 {
        return Err(
            "the IDX header declares 0 dimensions: the first must count the examples".into(),
        );
    }
    let mut dims_bytes = vec![0u8; 4 * rank];
    let got = read_full(&mut r, &mut dims_bytes)?;
    if got < dims_bytes.len() {
        return Err(format!(
            "the file ends inside the IDX header: {rank} dimensions take bytes 4 to {}, but it ends at byte offset {}",
            4 + 4 * rank,
            4 + got
        ));
    }
    let shape: Vec<usize> = dims_bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let header = (4 + 4 * rank) as u64;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|n| n.checked_mul(size).is_some())
        .ok_or_else(|| format!("the IDX dimensions {} are too large", shape_text(&shape)))?;
    let per_entry = (count / shape[0].max(1)).max(1);
    let truncated = |done: usize, end: u64| {
        format!(
            "the data is truncated: the header declares {} {type_name}s (dimensions {}), but the file ends at byte offset {end}, in entry {} of the first axis (element {done}, counting from 0)",
            count,
            shape_text(&shape),
            done / per_entry,
        )
    };
    if let Some(bytes) = bytes {
        if header + (count * size) as u64 > bytes {
            let done = (bytes.saturating_sub(header) / size as u64) as usize;
            return Err(truncated(done, bytes));
        }
    }
    // A gzip stream's length is not known: its buffer grows as it is read.
    let mut data = Vec::with_capacity(if exact { count } else { count.min(1 << 20) });
    let mut chunk = vec![0u8; (REPORT_EVERY * size).min(count * size).max(size)];
    let mut left = count;
    while left > 0 {
        let want = chunk.len().min(left * size);
        let got = read_full(&mut r, &mut chunk[..want])?;
        let whole = got / size;
        convert(magic[2], &chunk[..whole * size], &mut data);
        left -= whole;
        if got < want {
            let done = data.len();
            return Err(truncated(done, header + (done * size + got % size) as u64));
        }
        report(header + (data.len() * size) as u64);
    }
    let mut extra = [0u8; 1];
    if read_full(&mut r, &mut extra)? > 0 {
        let end = header + (count * size) as u64;
        return Err(if exact {
            format!(
                "the file has more bytes than its header declares: the data of dimensions {} ends at byte offset {end}",
                shape_text(&shape)
            )
        } else {
            format!(
                "the decompressed data has more bytes than its header declares: the data of dimensions {} ends at byte offset {end}",
                shape_text(&shape)
            )
        });
    }
    Ok(Array { shape, data })
}

/// Fills `buf` as far as the stream goes; the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, String> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot read the file: {e}")),
        }
    }
    Ok(n)
}

/// Big-endian elements of type `code` appended to `out` as f64.
fn convert(code: u8, bytes: &[u8], out: &mut Vec<f64>) {
    match code {
        0x08 => out.extend(bytes.iter().map(|&b| f64::from(b))),
        0x09 => out.extend(bytes.iter().map(|&b| f64::from(b as i8))),
        0x0B => out.extend(
            bytes
                .chunks_exact(2)
                .map(|c| f64::from(i16::from_be_bytes([c[0], c[1]]))),
        ),
        0x0C => out.extend(
            bytes
                .chunks_exact(4)
                .map(|c| f64::from(i32::from_be_bytes([c[0], c[1], c[2], c[3]]))),
        ),
        0x0D => out.extend(
            bytes
                .chunks_exact(4)
                .map(|c| f64::from(f32::from_be_bytes([c[0], c[1], c[2], c[3]]))),
        ),
        _ => out.extend(
            bytes
                .chunks_exact(8)
                .map(|c| f64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])),
        ),
    }
}

/// The bytes of an IDX file of unsigned bytes, for tests and benches.
pub fn write_u8(shape: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, shape.len() as u8];
    for d in shape {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_bytes(bytes: &[u8]) -> Result<Array, String> {
        read(bytes, bytes.len() as u64, &mut |_| {})
    }

    #[test]
    fn reads_bytes_and_wider_types() {
        let a = read_bytes(&write_u8(&[2, 3], &[0, 1, 2, 253, 254, 255])).unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, vec![0.0, 1.0, 2.0, 253.0, 254.0, 255.0]);
        // Big-endian i16 and f32.
        let mut b = vec![0, 0, 0x0B, 1, 0, 0, 0, 2];
        b.extend_from_slice(&(-300i16).to_be_bytes());
        b.extend_from_slice(&7i16.to_be_bytes());
        assert_eq!(read_bytes(&b).unwrap().data, vec![-300.0, 7.0]);
        let mut f = vec![0, 0, 0x0D, 1, 0, 0, 0, 1];
        f.extend_from_slice(&1.5f32.to_be_bytes());
        assert_eq!(read_bytes(&f).unwrap().data, vec![1.5]);
        let mut s = vec![0, 0, 0x09, 1, 0, 0, 0, 1];
        s.push(0xff);
        assert_eq!(read_bytes(&s).unwrap().data, vec![-1.0]);
    }

    #[test]
    fn gzipped_files_are_read() {
        use std::io::Write;
        let plain = write_u8(&[3], &[7, 8, 9]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let bytes = gz.finish().unwrap();
        assert_eq!(read_bytes(&bytes).unwrap().data, vec![7.0, 8.0, 9.0]);
        // Truncated inside the compressed stream: an error, not a panic.
        let cut = &bytes[..bytes.len() - 12];
        assert!(read_bytes(cut).is_err());
    }

    #[test]
    fn truncated_and_malformed_files_are_errors_with_offsets() {
        let good = write_u8(&[2, 2, 2], &[1, 2, 3, 4, 5, 6, 7, 8]);
        // Every prefix fails, with a message; none panics.
        for cut in 0..good.len() {
            let e = read_bytes(&good[..cut]).unwrap_err();
            assert!(!e.is_empty());
        }
        assert_eq!(
            read_bytes(&good[..2]).unwrap_err(),
            "not an IDX file: it has 2 bytes, fewer than the 4 of the magic number"
        );
        assert_eq!(
            read_bytes(&good[..9]).unwrap_err(),
            "the file ends inside the IDX header: 3 dimensions take bytes 4 to 16, but it ends at byte offset 9"
        );
        assert_eq!(
            read_bytes(&good[..16 + 5]).unwrap_err(),
            "the data is truncated: the header declares 8 unsigned bytes (dimensions [2, 2, 2]), but the file ends at byte offset 21, in entry 1 of the first axis (element 5, counting from 0)"
        );
        let mut extra = good.clone();
        extra.push(0);
        assert!(read_bytes(&extra)
            .unwrap_err()
            .contains("more bytes than its header declares"));
        assert!(read_bytes(b"PK\x03\x04rest")
            .unwrap_err()
            .contains("magic number starts with 0x50 0x4b"));
        assert!(read_bytes(&[0, 0, 0x07, 1, 0, 0, 0, 0])
            .unwrap_err()
            .contains("unknown element type 0x07"));
        assert!(read_bytes(&[0, 0, 0x08, 0])
            .unwrap_err()
            .contains("0 dimensions"));
        // A header that claims more than memory could hold fails on the data, not
        // on an allocation.
        assert!(
            read_bytes(&[0, 0, 0x0E, 2, 255, 255, 255, 255, 255, 255, 255, 255])
                .unwrap_err()
                .contains("too large")
        );
        assert!(read_bytes(&[0, 0, 0x08, 2, 0, 1, 0, 0, 0, 1, 0, 0, 1, 2])
            .unwrap_err()
            .contains("the data is truncated: the header declares 4294967296 unsigned bytes"));
    }
}
