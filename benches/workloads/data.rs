//! The training benches' data, written as IDX files to `target/bench-data/`
//! (where `benches/workloads/*.grad` read it). `benches/peers.py` has the
//! same generator, so that gradc, JAX and PyTorch train on the same
//! numbers: a 64-bit linear congruential generator (Knuth's MMIX
//! constants) and nothing but additions and multiplications of its
//! uniforms, which round the same way in both languages.
//!
//! - `blobs`: 20,000 examples of 20 features, label 0 or 1 with
//!   probability 1/2, each feature `(2y - 1) * 0.3` plus the sum of four
//!   uniforms minus 2 (mean 0, variance 1/3); features as doubles, labels
//!   as bytes.
//! - `mnist-like`: 2,048 images of 28x28 random bytes, labels 0..9.
//! - `digits`: the 8x8 digits of `examples/data/` copied; without those
//!   files, 1,437 random images of 8x8 pixels 0..16, labels 0..9.

use std::path::{Path, PathBuf};

/// Knuth's MMIX linear congruential generator.
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Lcg {
        Lcg(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0
    }

    /// Uniform in [0, 1): the top 53 bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in 0..n.
    pub fn below(&mut self, n: u64) -> u64 {
        (self.uniform() * n as f64) as u64
    }
}

pub const BLOBS: usize = 20_000;
pub const BLOB_FEATURES: usize = 20;
pub const MNIST_LIKE: usize = 2_048;
pub const DIGITS: usize = 1_437;

/// The directory of the generated files.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data")
}

/// An IDX file: the magic (element type `code`, the rank), the dimensions
/// as big-endian u32, the elements.
fn idx(code: u8, dims: &[usize], elements: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, code, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(elements);
    out
}

/// Writes `bytes` to `name` in [`dir`] through a temporary file, so that a
/// reader running at the same time never sees half a file.
fn write(name: &str, bytes: &[u8]) {
    let dir = dir();
    std::fs::create_dir_all(&dir).expect("creates target/bench-data");
    let tmp = dir.join(format!("{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes).expect("writes bench data");
    std::fs::rename(&tmp, dir.join(name)).expect("renames bench data");
}

fn blobs() {
    let mut rng = Lcg::new(1);
    let mut xs = Vec::with_capacity(BLOBS * BLOB_FEATURES * 8);
    let mut ys = Vec::with_capacity(BLOBS);
    for _ in 0..BLOBS {
        let y = rng.below(2);
        let shift = (2.0 * y as f64 - 1.0) * 0.3;
        for _ in 0..BLOB_FEATURES {
            let noise = rng.uniform() + rng.uniform() + rng.uniform() + rng.uniform() - 2.0;
            xs.extend_from_slice(&(shift + noise).to_be_bytes());
        }
        ys.push(y as u8);
    }
    write(
        "blobs-x-idx2-double",
        &idx(0x0E, &[BLOBS, BLOB_FEATURES], &xs),
    );
    write("blobs-y-idx1-ubyte", &idx(0x08, &[BLOBS], &ys));
}

/// `n` random images of `side` x `side` pixels in 0..`levels` and labels
/// 0..9, as the files `{prefix}-images-idx3-ubyte` and
/// `{prefix}-labels-idx1-ubyte`.
fn images(prefix: &str, seed: u64, n: usize, side: usize, levels: u64) {
    let mut rng = Lcg::new(seed);
    let mut pixels = Vec::with_capacity(n * side * side);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        for _ in 0..side * side {
            pixels.push(rng.below(levels) as u8);
        }
        labels.push(rng.below(10) as u8);
    }
    write(
        &format!("{prefix}-images-idx3-ubyte"),
        &idx(0x08, &[n, side, side], &pixels),
    );
    write(
        &format!("{prefix}-labels-idx1-ubyte"),
        &idx(0x08, &[n], &labels),
    );
}

/// The digits of `examples/data/` copied, or random ones standing in.
/// Whether they are the real digits.
fn digits() -> bool {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data");
    let names = [
        "digits-train-images-idx3-ubyte",
        "digits-train-labels-idx1-ubyte",
    ];
    let real = names.iter().all(|n| examples.join(n).is_file());
    if real {
        for n in names {
            write(
                n,
                &std::fs::read(examples.join(n)).expect("reads the digits"),
            );
        }
    } else {
        images("digits-train", 3, DIGITS, 8, 17);
    }
    real
}

/// Writes every file; whether the digits are the real ones.
pub fn generate() -> bool {
    blobs();
    images("mnist-like", 2, MNIST_LIKE, 28, 256);
    digits()
}
