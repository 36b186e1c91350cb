//! NumPy (`.npy`, `.npz`) and IDX files through the runtime's loader: a
//! small corpus of valid files written here (every dtype the loader takes
//! and a few it refuses, C and Fortran order, stored and deflated archives,
//! gzipped IDX), mutated in the fields a reader trusts (the magic, the
//! header's length, dtype, order and shape; IDX's type code, rank and
//! dimensions; a zip's entries and names) and in raw bytes (truncation,
//! flipped bits), then read by a program that maps one or two inputs to
//! them and trained on, as [`data::check`](super::data::check) does for
//! CSV: never a panic, every failure an error that renders.

use std::io::Write;

use super::data::Format;
use super::rng::R;

/// Which of the three formats a file is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Npy,
    Npz,
    Idx,
}

impl Kind {
    pub fn extension(self) -> &'static str {
        match self {
            Kind::Npy => "npy",
            Kind::Npz => "npz",
            Kind::Idx => "idx",
        }
    }

    /// The kind of the file a program generated here reads.
    pub fn of_program(program: &str) -> Kind {
        [Kind::Npz, Kind::Idx]
            .into_iter()
            .find(|k| program.contains(&format!("data.{}", k.extension())))
            .unwrap_or(Kind::Npy)
    }
}

/// One format's corpus and mutations; the fuzz target picks a format per
/// input.
pub struct Arrays {
    kind: Kind,
    corpus: std::sync::OnceLock<Vec<Vec<u8>>>,
}

pub static NPY: Arrays = Arrays::new(Kind::Npy);
pub static NPZ: Arrays = Arrays::new(Kind::Npz);
pub static IDX: Arrays = Arrays::new(Kind::Idx);

pub fn format(kind: Kind) -> &'static Arrays {
    match kind {
        Kind::Npy => &NPY,
        Kind::Npz => &NPZ,
        Kind::Idx => &IDX,
    }
}

/// A mutated file of one of the formats, and a program that reads it.
pub fn input(r: &mut R) -> (Vec<u8>, String) {
    let f = format(*r.pick(&[Kind::Npy, Kind::Npz, Kind::Idx]));
    f.input(r)
}

impl Arrays {
    const fn new(kind: Kind) -> Arrays {
        Arrays {
            kind,
            corpus: std::sync::OnceLock::new(),
        }
    }
}

/// A `.npy` file: `descr` and `shape` as NumPy writes them in the header,
/// `body` the raw data.
pub fn npy(descr: &str, fortran: bool, shape: &[usize], body: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
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

/// A zip of `entries` (name, bytes), deflated or stored; an entry whose
/// name comes again is left out.
pub fn zip(entries: &[(&str, Vec<u8>)], deflate: bool) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut z = zip::ZipWriter::new(&mut out);
    let method = if deflate {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let options = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, bytes) in entries {
        // The zip crate refuses a name twice: the archive goes without it.
        if z.start_file(*name, options).is_ok() {
            z.write_all(bytes).expect("zip data");
        }
    }
    z.finish().expect("a zip");
    out.into_inner()
}

/// An IDX file: `code` its element type, `shape` its dimensions.
pub fn idx(code: u8, shape: &[u32], body: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, code, shape.len() as u8];
    for d in shape {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(body);
    out
}

fn f64s(xs: &[f64]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// `n` small numbers, deterministic.
fn values(n: usize) -> Vec<f64> {
    (0..n).map(|i| ((i * 7 + 3) % 11) as f64 - 5.0).collect()
}

fn labels(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 3) as u8).collect()
}

fn npy_corpus() -> Vec<Vec<u8>> {
    let v = values(24);
    let f32s: Vec<u8> = v.iter().flat_map(|&x| (x as f32).to_le_bytes()).collect();
    let i64s: Vec<u8> = v.iter().flat_map(|&x| (x as i64).to_le_bytes()).collect();
    let be: Vec<u8> = v.iter().flat_map(|&x| x.to_be_bytes()).collect();
    let bytes: Vec<u8> = labels(24);
    vec![
        npy("<f8", false, &[6, 4], &f64s(&v)),
        npy("<f8", true, &[6, 4], &f64s(&v)),
        npy("<f4", false, &[12, 2], &f32s),
        npy("<i8", false, &[8, 3], &i64s),
        npy(">f8", false, &[4, 2, 3], &be),
        npy("|u1", false, &[6, 2, 2], &bytes),
        npy(
            "|b1",
            false,
            &[12, 2],
            &bytes.iter().map(|b| b % 2).collect::<Vec<_>>(),
        ),
        npy("<f8", false, &[24], &f64s(&v)),
        npy("<c16", false, &[3, 4], &f64s(&v)),
    ]
}

fn npz_corpus() -> Vec<Vec<u8>> {
    let v = values(24);
    let y: Vec<f64> = labels(8).iter().map(|&c| f64::from(c)).collect();
    let yi: Vec<u8> = labels(8)
        .iter()
        .flat_map(|&c| i64::from(c).to_le_bytes())
        .collect();
    vec![
        zip(
            &[
                ("x.npy", npy("<f8", false, &[8, 3], &f64s(&v))),
                ("y.npy", npy("<f8", false, &[8], &f64s(&y))),
            ],
            true,
        ),
        zip(
            &[
                ("x.npy", npy("|u1", false, &[8, 3], &labels(24))),
                ("y.npy", npy("<i8", false, &[8], &yi)),
            ],
            false,
        ),
        zip(
            &[
                ("y.npy", npy("<f8", false, &[8], &f64s(&y))),
                ("x.npy", npy("<f8", true, &[8, 3], &f64s(&v))),
            ],
            true,
        ),
    ]
}

fn idx_corpus() -> Vec<Vec<u8>> {
    let v = values(24);
    let i16s: Vec<u8> = v.iter().flat_map(|&x| (x as i16).to_be_bytes()).collect();
    let i32s: Vec<u8> = v.iter().flat_map(|&x| (x as i32).to_be_bytes()).collect();
    let f32s: Vec<u8> = v.iter().flat_map(|&x| (x as f32).to_be_bytes()).collect();
    let f64s: Vec<u8> = v.iter().flat_map(|&x| x.to_be_bytes()).collect();
    let plain = idx(0x08, &[6, 2, 2], &labels(24));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).expect("gzip");
    vec![
        plain,
        idx(0x09, &[8, 3], &labels(24)),
        idx(0x0B, &[4, 3, 2], &i16s),
        idx(0x0C, &[12, 2], &i32s),
        idx(0x0D, &[6, 4], &f32s),
        idx(0x0E, &[24], &f64s),
        gz.finish().expect("gzip"),
    ]
}

/// The numbers of one example of a valid corpus file, from its shape:
/// what the program's input is declared as.
fn example_shape(kind: Kind, bytes: &[u8]) -> Vec<usize> {
    match kind {
        Kind::Idx => {
            let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
                let mut out = Vec::new();
                let _ =
                    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes), &mut out);
                out
            } else {
                bytes.to_vec()
            };
            let rank = usize::from(bytes[3]);
            (1..rank)
                .map(|i| {
                    let b = &bytes[4 + 4 * i..8 + 4 * i];
                    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
                })
                .collect()
        }
        Kind::Npy => {
            let text = String::from_utf8_lossy(&bytes[10..bytes.len().min(128)]);
            let shape = text.split("'shape': (").nth(1).unwrap_or("");
            let dims: Vec<usize> = shape
                .split(')')
                .next()
                .unwrap_or("")
                .split(',')
                .filter_map(|d| d.trim().parse().ok())
                .collect();
            dims.get(1..).unwrap_or(&[]).to_vec()
        }
        Kind::Npz => vec![3],
    }
}

/// A program that reads a file laid out like `base` of `kind`.
fn program(kind: Kind, base: &[u8], r: &mut R) -> String {
    let mut shape = example_shape(kind, base);
    match r.below(6) {
        0 => shape = vec![shape.iter().product()],
        1 => shape = vec![*r.pick(&[1, 2, 3, 5, 24])],
        2 => shape.push(1),
        _ => {}
    }
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let x = if dims.is_empty() {
        "input x".to_string()
    } else {
        format!("input x: [{}]", dims.join(", "))
    };
    let n: usize = shape.iter().product();
    let two = kind == Kind::Npz || r.chance(0.2);
    let (inputs, loss) = if two {
        (format!("{x}\ninput y"), "mse(dot(w, reshape(x, [N])), y)")
    } else {
        (x, "mse(dot(w, reshape(x, [N])), 1)")
    };
    let file = format!("data.{}", kind.extension());
    let data = match kind {
        Kind::Npz => {
            let name = |r: &mut R, n: &str| r.pick(&[n, n, n, "x", "y", "z", "x.npy"]).to_string();
            let (xn, yn) = (name(r, "x"), name(r, "y"));
            format!("npz(\"{file}\", x = \"{xn}\", y = \"{yn}\"")
        }
        Kind::Npy if two => format!("npy(x = \"{file}\", y = \"{file}\""),
        Kind::Idx if two => format!("idx(x = \"{file}\", y = \"{file}\""),
        Kind::Npy => format!("npy(x = \"{file}\""),
        Kind::Idx => format!("idx(x = \"{file}\""),
    };
    let scale = if r.chance(0.3) { ", scale = 1/16" } else { "" };
    let test = if r.chance(0.2) {
        format!("\n  test = {data}{scale})")
    } else {
        String::new()
    };
    format!(
        "{inputs}\nparam w: [{n}] = normal(0, 0.1)\nloss {}\ntrain {{\n  data = {data}{scale}){test}\n  \
         batch = {}\n  steps = {}\n  optimizer = {}\n}}\n",
        loss.replace('N', &n.to_string()),
        r.pick(&["1", "3", "full"]),
        1 + r.below(3),
        r.pick(&["sgd(lr = 0.01)", "adam(lr = 0.1)"]),
    )
}

const DESCRS: &[&str] = &[
    "<f8", "<f4", "|u1", "|i1", "<i2", "<u8", ">i4", "|b1", "<f2", "<c16", "|O", "<U3", "V8",
    "<M8[s]", "<f16", "", "f8", "<f8'", "x",
];

const SHAPES: &[&str] = &[
    "()",
    "(0,)",
    "(0, 4)",
    "(6,)",
    "(6, 4)",
    "(4, 6)",
    "(6, 4, 1)",
    "(3, 0)",
    "(-1, 4)",
    "(99999999999, 99999999999)",
    "(18446744073709551615,)",
    "(4294967296, 4294967296)",
    "(2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2)",
    "(6 4)",
    "[6, 4]",
    "(6, 'a')",
];

/// The header of a `.npy` file with one field replaced: its dtype, shape or
/// order, or the header's length, or the version.
fn npy_header_mutated(bytes: &[u8], r: &mut R) -> Vec<u8> {
    let mut b = bytes.to_vec();
    if b.len() < 10 {
        return b;
    }
    let len = usize::from(u16::from_le_bytes([b[8], b[9]]));
    let end = (10 + len).min(b.len());
    let header = String::from_utf8_lossy(&b[10..end]).into_owned();
    let replace = |h: &str, key: &str, value: &str| -> String {
        let Some(at) = h.find(key) else {
            return h.to_string();
        };
        let from = at + key.len();
        let stop = match key {
            "'shape': " => h[from..].find(')').map_or(h.len(), |i| from + i + 1),
            _ => h[from..].find(',').map_or(h.len(), |i| from + i),
        };
        format!("{}{value}{}", &h[..from], &h[stop..])
    };
    let new = match r.below(7) {
        0 => replace(&header, "'descr': ", &format!("'{}'", *r.pick(DESCRS))),
        1 | 2 => replace(&header, "'shape': ", r.pick::<&str>(SHAPES)),
        3 => replace(
            &header,
            "'fortran_order': ",
            r.pick::<&str>(&["True", "False", "1", "None"]),
        ),
        4 => {
            let l = *r.pick(&[0u16, 1, 9, 63, 200, 4000, u16::MAX]);
            b[8..10].copy_from_slice(&l.to_le_bytes());
            return b;
        }
        5 => {
            b[6] = *r.pick(&[0u8, 2, 3, 4, 255]);
            return b;
        }
        _ => header
            .replacen('{', "", r.below(2))
            .replacen('}', "", r.below(2)),
    };
    let mut out = b[..8].to_vec();
    out.extend_from_slice(&(new.len() as u16).to_le_bytes());
    out.extend_from_slice(new.as_bytes());
    out.extend_from_slice(&b[end..]);
    out
}

/// An IDX header with its type code, rank or a dimension replaced.
fn idx_header_mutated(bytes: &[u8], r: &mut R) -> Vec<u8> {
    let mut b = bytes.to_vec();
    if b.starts_with(&[0x1f, 0x8b]) || b.len() < 8 {
        return b;
    }
    match r.below(4) {
        0 => b[2] = *r.pick(&[0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0x0A, 0xFF]),
        1 => b[3] = *r.pick(&[0u8, 1, 2, 3, 4, 9, 255]),
        2 => b[r.below(2)] = r.u64() as u8,
        _ => {
            let rank = usize::from(b[3]);
            let i = r.below(rank.max(1));
            let at = 4 + 4 * i;
            if at + 4 <= b.len() {
                let d = *r.pick(&[0u32, 1, 2, 5, 7, 1 << 16, 1 << 31, u32::MAX]);
                b[at..at + 4].copy_from_slice(&d.to_be_bytes());
            }
        }
    }
    b
}

/// An archive with its entries changed: renamed, dropped, doubled, their
/// `.npy` bytes mutated, stored instead of deflated.
fn npz_mutated(bytes: &[u8], r: &mut R) -> Vec<u8> {
    let Ok(mut archive) = zip::ZipArchive::new(std::io::Cursor::new(bytes)) else {
        return bytes.to_vec();
    };
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..archive.len() {
        let Ok(mut f) = archive.by_index(i) else {
            return bytes.to_vec();
        };
        let mut data = Vec::new();
        if std::io::Read::read_to_end(&mut f, &mut data).is_err() {
            return bytes.to_vec();
        }
        let name = f.name().map(|n| n.to_string()).unwrap_or_default();
        entries.push((name, data));
    }
    if entries.is_empty() {
        return bytes.to_vec();
    }
    let i = r.below(entries.len());
    match r.below(5) {
        0 => {
            entries[i].0 = r
                .pick(&["x", "x.npy", "dir/x.npy", "y.npy", "", "X.NPY"])
                .to_string()
        }
        1 => {
            entries.remove(i);
        }
        2 => {
            let e = entries[i].clone();
            entries.push(e);
        }
        _ => entries[i].1 = NPY.mutate(&entries[i].1, r),
    }
    let named: Vec<(&str, Vec<u8>)> = entries
        .iter()
        .map(|(n, b)| (n.as_str(), b.clone()))
        .collect();
    zip(&named, r.chance(0.5))
}

impl Format for Arrays {
    fn extension(&self) -> &'static str {
        self.kind.extension()
    }

    fn corpus(&self) -> &[Vec<u8>] {
        self.corpus.get_or_init(|| match self.kind {
            Kind::Npy => npy_corpus(),
            Kind::Npz => npz_corpus(),
            Kind::Idx => idx_corpus(),
        })
    }

    fn mutate(&self, bytes: &[u8], r: &mut R) -> Vec<u8> {
        let mut b = bytes.to_vec();
        match r.below(8) {
            0 => b.truncate(r.below(b.len() + 1)),
            1 => {
                // A bit flipped, most often in the header.
                let range = if r.chance(0.7) {
                    b.len().min(128)
                } else {
                    b.len()
                };
                if range > 0 {
                    b[r.below(range)] ^= 1 << r.below(8);
                }
            }
            2 => {
                let at = r.below(b.len() + 1);
                let n = *r.pick(&[1, 8, 100]);
                b.splice(at..at, (0..n).map(|_| r.u64() as u8));
            }
            3 => {
                // A number's bytes made NaN or infinite.
                if b.len() >= 8 {
                    let at = b.len() - 8 * (1 + r.below((b.len() / 8).min(4)));
                    let x = *r.pick(&[f64::NAN, f64::INFINITY, 1e308]);
                    b[at..at + 8].copy_from_slice(&x.to_le_bytes());
                }
            }
            _ => {
                b = match self.kind {
                    Kind::Npy => npy_header_mutated(&b, r),
                    Kind::Idx => idx_header_mutated(&b, r),
                    Kind::Npz => npz_mutated(&b, r),
                }
            }
        }
        b
    }

    fn layout(&self, _bytes: &[u8]) -> (usize, Option<Vec<String>>) {
        (0, None)
    }

    fn setting(&self, _file: &str, _mapping: &str, _options: &str) -> String {
        String::new()
    }

    fn input(&self, r: &mut R) -> (Vec<u8>, String) {
        let base = r.pick(self.corpus()).clone();
        let program = program(self.kind, &base, r);
        let mut bytes = base;
        for _ in 0..1 + r.below(2) {
            bytes = self.mutate(&bytes, r);
        }
        (bytes, program)
    }
}

#[cfg(test)]
mod tests {
    use super::super::data::check;
    use super::super::Counts;
    use super::*;

    /// A program of `base`'s own shape: `x` (and `y` from an archive).
    fn plain_program(kind: Kind, base: &[u8]) -> String {
        let shape = example_shape(kind, base);
        let n: usize = shape.iter().product();
        let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        let x = match dims.len() {
            0 => "input x".to_string(),
            _ => format!("input x: [{}]", dims.join(", ")),
        };
        let (inputs, y, data) = match kind {
            Kind::Npz => (
                format!("{x}\ninput y"),
                "y",
                "npz(\"data.npz\", x = \"x\", y = \"y\")".to_string(),
            ),
            _ => (
                x,
                "1",
                format!("{}(x = \"data.{}\")", kind.extension(), kind.extension()),
            ),
        };
        format!(
            "{inputs}\nparam w: [{n}] = normal(0, 0.1)\nloss mse(dot(w, reshape(x, [{n}])), {y})\n\
             train {{ data = {data} steps = 2 }}\n"
        )
    }

    /// Every base file loads with a program of its own shape, unmutated,
    /// but the complex numbers the loader refuses.
    #[test]
    fn the_base_files_load() {
        let scratch = super::super::scratch_dir();
        for kind in [Kind::Npy, Kind::Npz, Kind::Idx] {
            let f = format(kind);
            for (i, base) in f.corpus().iter().enumerate() {
                let p = plain_program(kind, base);
                let mut counts = Counts::default();
                check(f, base, &p, &scratch, &mut counts).unwrap();
                let refused = kind == Kind::Npy && i == 8;
                assert_eq!(counts.loaded > 0, !refused, "{kind:?} {i}:\n{p}");
            }
        }
        let _ = std::fs::remove_dir_all(&scratch);
    }
}
