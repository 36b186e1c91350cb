//! Loading data: a 200,000 x 50 CSV file (49 features and a label, numbers
//! of 6 to 9 significant digits, 83 MB), the same numbers as an `.npy` file
//! of f64 and as an `.npz` archive, and a 60,000 x 28 x 28 IDX file of bytes
//! (MNIST's training images), each generated in a temporary directory and
//! loaded through `runtime::load_data` as `gradc train` does; and the CSV
//! file the way the loader read it before (for a ratio within one run).
//! Prints one load's time, CPU time and peak resident memory against the
//! data's f64 size.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use gradc::runtime;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// mimalloc, as the binary uses (see [`gradc::Allocator`]).
#[global_allocator]
static ALLOCATOR: gradc::Allocator = gradc::Allocator;

const ROWS: usize = 200_000;
const COLS: usize = 50;

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("gradc-bench-data-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// The table's numbers, row by row.
fn numbers() -> Vec<f64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    (0..ROWS * COLS)
        .map(|i| {
            if i % COLS == COLS - 1 {
                f64::from(rng.random_range(0..10u8))
            } else {
                (rng.random::<f64>() * 200.0 - 100.0) * 1e-3_f64.powi(rng.random_range(0..2))
            }
        })
        .collect()
}

fn write_csv(path: &Path, xs: &[f64]) {
    let mut w = BufWriter::new(std::fs::File::create(path).expect("csv"));
    let header: Vec<String> = (0..COLS).map(|j| format!("c{j}")).collect();
    writeln!(w, "{}", header.join(",")).unwrap();
    for row in xs.chunks(COLS) {
        let cells: Vec<String> = row.iter().map(|x| format!("{x:.6}")).collect();
        writeln!(w, "{}", cells.join(",")).unwrap();
    }
}

fn npy(shape: &[u64], xs: &[f64]) -> Vec<u8> {
    use npyz::WriterBuilder;
    let mut out = Vec::new();
    let mut w = npyz::WriteOptions::<f64>::new()
        .default_dtype()
        .shape(shape)
        .writer(&mut out)
        .begin_nd()
        .unwrap();
    w.extend(xs.iter().copied()).unwrap();
    w.finish().unwrap();
    out
}

/// The previous loader's method, for a ratio measured in the same run: the
/// file streamed a line at a time through a 1 MiB buffer, each line copied
/// into one reused record and split at its commas, every cell trimmed,
/// checked as UTF-8 and parsed with the standard library's parser, one row
/// at a time on one thread.
fn previous_csv(path: &Path) -> Vec<Vec<f64>> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).unwrap();
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    let mut record: Vec<u8> = Vec::new();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut x = Vec::with_capacity((COLS - 1) * ROWS);
    let mut y = Vec::with_capacity(ROWS);
    let mut lines: Vec<u32> = Vec::with_capacity(ROWS);
    let mut n = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).unwrap() == 0 {
            break;
        }
        n += 1;
        if n == 1 {
            continue;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        record.clear();
        record.extend_from_slice(text);
        spans.clear();
        let mut a = 0;
        for comma in memchr::memchr_iter(b',', text) {
            spans.push((a, comma));
            a = comma + 1;
        }
        spans.push((a, text.len()));
        for (j, &(a, b)) in spans.iter().enumerate() {
            let cell = std::str::from_utf8(record[a..b].trim_ascii()).unwrap();
            let v: f64 = cell.parse().unwrap();
            assert!(v.is_finite());
            if j < COLS - 1 {
                x.push(v);
            } else {
                y.push(v);
            }
        }
        lines.push(n);
    }
    vec![x, y]
}

fn program(inputs: &str, data: &str) -> gradc::Compiled {
    let src = format!("{inputs}\nparam w = 0\nloss w^2\ntrain {{ data = {data} }}\n");
    gradc::compile(&src).expect("bench program")
}

/// The CPU time of the process so far, user and system (Linux).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command's closing parenthesis; utime and stime
    // are the 12th and 13th of them, in clock ticks of 10 ms.
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// Resets the peak resident memory to the current (Linux).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident memory of the process since the last reset, in MB (Linux).
fn peak_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn bench(c: &mut Criterion) {
    let d = dir();
    let csv = d.join("table.csv");
    let table = numbers();
    write_csv(&csv, &table);
    let table_npy = npy(&[ROWS as u64, COLS as u64], &table);
    std::fs::write(d.join("table.npy"), &table_npy).unwrap();
    drop(table);
    let inputs = format!("input x: [{}]\ninput y", COLS - 1);
    let prog_csv = program(&inputs, "csv(\"table.csv\", x = 0..49, y = 49)");
    let prog_npy = program("input x: [50]", "npy(x = \"table.npy\")");
    let prog_npz = program("input x: [50]", "npz(\"table.npz\", x = \"t\")");
    let prog_idx = program(
        "input x: [1, 28, 28]",
        "idx(x = \"images-idx3-ubyte\", scale = 1/255)",
    );
    let load = |p: &gradc::Compiled| {
        runtime::load_data(p, None, &d, &[true; 2][..p.typed.inputs.len()], &mut |_| {})
            .expect("bench data")
            .expect("a data set")
    };

    // One load of each, for the memory figure: the peak resident memory
    // during the load, less what the process held before it.
    for (name, p) in [("csv", &prog_csv), ("npy", &prog_npy)] {
        reset_peak();
        let before = peak_mb().unwrap_or(0.0);
        let start = std::time::Instant::now();
        let cpu = cpu_time();
        let ds = load(p);
        let took = start.elapsed();
        let cpu = cpu_time() - cpu;
        let peak = peak_mb().unwrap_or(0.0);
        let f64_mb = (ds.len() * COLS * 8) as f64 / (1024.0 * 1024.0);
        eprintln!(
            "{name} {ROWS} x {COLS}: one load {took:.2?} ({cpu:.2?} of CPU time); f64 data {f64_mb:.1} MB; the load's peak resident memory {:.1} MB above the {before:.1} MB before it ({:.2}x the data)",
            peak - before,
            (peak - before) / f64_mb
        );
    }

    let file = std::fs::File::create(d.join("table.npz")).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("t.npy", options).unwrap();
    zip.write_all(&table_npy).unwrap();
    zip.finish().unwrap();
    drop(table_npy);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
    let pixels: Vec<u8> = (0..60_000 * 28 * 28).map(|_| rng.random()).collect();
    let mut idx = vec![0u8, 0, 0x08, 3];
    for dim in [60_000u32, 28, 28] {
        idx.extend_from_slice(&dim.to_be_bytes());
    }
    idx.extend_from_slice(&pixels);
    std::fs::write(d.join("images-idx3-ubyte"), &idx).unwrap();
    drop((pixels, idx));

    let mut g = c.benchmark_group("load");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("csv 200000x50", |b| b.iter(|| load(&prog_csv)));
    g.bench_function("csv 200000x50, the previous loader's method", |b| {
        b.iter(|| previous_csv(&csv))
    });
    g.bench_function("npy 200000x50 f64", |b| b.iter(|| load(&prog_npy)));
    g.bench_function("npz 200000x50 f64 deflated", |b| b.iter(|| load(&prog_npz)));
    g.bench_function("idx 60000x28x28 u8", |b| b.iter(|| load(&prog_idx)));
    g.finish();
    let _ = std::fs::remove_dir_all(&d);
}

criterion_group!(benches, bench);
criterion_main!(benches);
