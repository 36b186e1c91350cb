//! Data sources besides CSV, end to end: a tiny model trained from an `.npz`
//! archive and from IDX files, each with a `test =` set evaluated at the
//! end, through the library and through `gradc train` (text and JSON); bad
//! files reported before training.

use std::io::Write;
use std::path::Path;

use gradc::runtime::{self, Options};

use crate::common::{gradc, temp_dir};

/// Two classes of 2-pixel "images": class 1 bright, class 0 dark, `n` of
/// each, interleaved.
fn pixels(n: usize, seed: u8) -> (Vec<u8>, Vec<u8>) {
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for i in 0..2 * n {
        let class = (i % 2) as u8;
        let jitter = ((i as u8).wrapping_mul(37).wrapping_add(seed)) % 50;
        let base = if class == 1 { 200 } else { 10 };
        xs.extend_from_slice(&[base + jitter, base + ((u32::from(jitter) * 7) % 50) as u8]);
        ys.push(class);
    }
    (xs, ys)
}

fn npy<T: npyz::Serialize + npyz::AutoSerialize + Copy>(shape: &[u64], data: &[T]) -> Vec<u8> {
    use npyz::WriterBuilder;
    let mut out = Vec::new();
    let mut w = npyz::WriteOptions::<T>::new()
        .default_dtype()
        .shape(shape)
        .writer(&mut out)
        .begin_nd()
        .unwrap();
    w.extend(data.iter().copied()).unwrap();
    w.finish().unwrap();
    out
}

fn write_npz(path: &Path, arrays: &[(&str, Vec<u8>)]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in arrays {
        zip.start_file(format!("{name}.npy"), options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

fn idx(shape: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, shape.len() as u8];
    for d in shape {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// A logistic regression on the sum of an image's pixels.
const MODEL: &str = "input x: [1, 2]
input y
param a = 0
param b = 0
let z = a * sum(x) + b
loss bce_logits(z, y)
metric accuracy = (z > 0) == y
";

fn write(dir: &Path, file: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(file);
    std::fs::write(&p, text).unwrap();
    p
}

fn npz_dir(name: &str) -> std::path::PathBuf {
    let dir = temp_dir(name);
    let (x, y) = pixels(20, 0);
    let (tx, ty) = pixels(5, 17);
    // Floats (as numpy's default) for the images, int64 labels.
    let xf: Vec<f32> = x.iter().map(|&p| f32::from(p)).collect();
    let txf: Vec<f32> = tx.iter().map(|&p| f32::from(p)).collect();
    let yi: Vec<i64> = y.iter().map(|&c| i64::from(c)).collect();
    let tyi: Vec<i64> = ty.iter().map(|&c| i64::from(c)).collect();
    write_npz(
        &dir.join("blobs.npz"),
        &[
            ("x_train", npy(&[40, 2], &xf)),
            ("y_train", npy(&[40], &yi)),
            ("x_test", npy(&[10, 2], &txf)),
            ("y_test", npy(&[10], &tyi)),
        ],
    );
    dir
}

const NPZ_TRAIN: &str = "train {
  data = npz(\"blobs.npz\", x = \"x_train\", y = \"y_train\", scale = 1/255)
  test = npz(\"blobs.npz\", x = \"x_test\", y = \"y_test\", scale = 1/255)
  optimizer = adam(lr = 0.1)
  batch = 8
  epochs = 40
}
";

#[test]
fn a_model_trains_from_npz_and_is_evaluated_on_its_test_set() {
    let dir = npz_dir("npz-train");
    let file = write(&dir, "m.grad", &format!("{MODEL}{NPZ_TRAIN}"));
    let c = gradc::compile(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let cfg = c.typed.train.clone().unwrap();
    let opts = Options {
        base_dir: dir.clone(),
        ..Options::default()
    };
    let rep = runtime::train(&c, &cfg, &opts, &mut ()).unwrap();
    assert_eq!(rep.train.examples, 40);
    let test = rep.test.expect("a test evaluation");
    assert_eq!(test.examples, 10);
    assert_eq!(test.metrics[0].0, "accuracy");
    assert_eq!(test.metrics[0].1, 1.0, "test accuracy");
    assert!(test.loss < 0.3, "test loss {}", test.loss);

    let (ok, out, err) = gradc(&["train", file.to_str().unwrap(), "--quiet"]);
    assert!(ok, "{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("test data (10 examples) at the final parameters:"))
        .unwrap_or_else(|| panic!("no test line in\n{out}"));
    assert!(line.contains("accuracy 1"), "{line}");
    let training = out
        .lines()
        .find(|l| l.starts_with("training data (40 examples)"))
        .unwrap_or_else(|| panic!("{out}"));
    // The values are aligned.
    assert_eq!(line.find("loss"), training.find("loss"), "{out}");

    let (ok, out, err) = gradc(&["train", file.to_str().unwrap(), "--json"]);
    assert!(ok, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["test"]["examples"], 10);
    assert_eq!(doc["test"]["metrics"]["accuracy"], 1.0);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_model_trains_from_idx_files_with_an_idx_test_set() {
    let dir = temp_dir("idx-train");
    let (x, y) = pixels(20, 3);
    let (tx, ty) = pixels(5, 29);
    std::fs::write(dir.join("train-images-idx3-ubyte"), idx(&[40, 1, 2], &x)).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte"), idx(&[40], &y)).unwrap();
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), idx(&[10, 1, 2], &tx)).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), idx(&[10], &ty)).unwrap();
    let train = "train {
  data = idx(x = \"train-images-idx3-ubyte\", y = \"train-labels-idx1-ubyte\", scale = 1/255)
  test = idx(x = \"t10k-images-idx3-ubyte\", y = \"t10k-labels-idx1-ubyte\", scale = 1/255)
  optimizer = adam(lr = 0.1)
  batch = 8
  epochs = 40
}
";
    let file = write(&dir, "m.grad", &format!("{MODEL}{train}"));
    let (ok, out, err) = gradc(&["train", file.to_str().unwrap(), "--quiet"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("training data (40 examples) at the final parameters:"),
        "{out}"
    );
    let line = out
        .lines()
        .find(|l| l.starts_with("test data (10 examples) at the final parameters:"))
        .unwrap_or_else(|| panic!("no test line in\n{out}"));
    assert!(line.contains("accuracy 1"), "{line}");

    // A truncated test file stops the run before training, located.
    let full = idx(&[10, 1, 2], &tx);
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), &full[..full.len() - 3]).unwrap();
    let (ok, out, err) = gradc(&["train", file.to_str().unwrap(), "--quiet"]);
    assert!(!ok);
    assert!(!out.contains("trained"), "{out}");
    assert!(
        err.contains("t10k-images-idx3-ubyte: error: the data is truncated: the header declares 20 unsigned bytes (dimensions [10, 1, 2]), but the file ends at byte offset 33, in entry 8 of the first axis (element 17, counting from 0)"),
        "{err}"
    );
    assert!(
        err.contains("mapped here: input `x` reads this file"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_array_data_is_a_located_error_before_training() {
    let dir = npz_dir("npz-bad");
    // Labels out of range for cross_entropy, in the test set: a fault on
    // its example, found before training.
    let model = "input x: [2]
input y
param W: [2, 2] = 0
loss cross_entropy(W @ x, y)
train {
  data = npz(\"blobs.npz\", x = \"x_train\", y = \"y_train\")
  test = npz(\"blobs.npz\", x = \"x_test\", y = \"x_train\")
}
";
    let file = write(&dir, "ce.grad", model);
    let (ok, _, err) = gradc(&["train", file.to_str().unwrap(), "--quiet"]);
    assert!(!ok);
    assert!(
        err.contains("blobs.npz: error: array `x_train` has shape [40, 2]: one example is [2] (2 numbers), but input `y` has shape [] (1 number)"),
        "{err}"
    );
    // A shape that does not fit the input, in the training data.
    let model = "input x: [3]\ninput y\nparam w: [3] = 0\nloss (dot(w, x) - y)^2\n\
                 train { data = npz(\"blobs.npz\", x = \"x_train\", y = \"y_train\") }\n";
    let file = write(&dir, "shape.grad", model);
    let (ok, _, err) = gradc(&["train", file.to_str().unwrap(), "--quiet"]);
    assert!(!ok);
    assert!(
        err.contains("blobs.npz: error: array `x_train` has shape [40, 2]: one example is [2] (2 numbers), but input `x` has shape [3] (3 numbers)"),
        "{err}"
    );
    assert!(
        err.contains("shape.grad:5:"),
        "a note at the mapping: {err}"
    );
    // Class indices out of range.
    let ce = "input x: [2]\ninput y\nparam W: [2, 2] = 0\nloss cross_entropy(W @ x, y)\n\
              train { data = npz(\"blobs.npz\", x = \"x_train\", y = \"y_train\", scale = 0.5) }\n";
    let file = write(&dir, "range.grad", ce);
    let (ok, _, err) = gradc(&["train", file.to_str().unwrap(), "--quiet"]);
    assert!(ok, "classes 0 and 1 of 2 are in range: {err}");
    write_npz(
        &dir.join("blobs.npz"),
        &[
            ("x_train", npy(&[2, 2], &[0.0f64, 1.0, 2.0, 3.0])),
            ("y_train", npy(&[2], &[1u8, 5])),
        ],
    );
    let (ok, _, err) = gradc(&["train", file.to_str().unwrap(), "--quiet"]);
    assert!(!ok);
    assert!(
        err.contains("in example 1 (counting from 0) of the data"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// An IDX file of unsigned bytes read by hand: its dimensions and bytes.
fn read_idx_u8(path: &Path) -> (Vec<usize>, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        &bytes[..3],
        &[0, 0, 0x08],
        "{}: unsigned bytes",
        path.display()
    );
    let rank = usize::from(bytes[3]);
    let dims: Vec<usize> = (0..rank)
        .map(|i| {
            let b = &bytes[4 + 4 * i..8 + 4 * i];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
        .collect();
    let body = bytes[4 + 4 * rank..].to_vec();
    assert_eq!(
        body.len(),
        dims.iter().product::<usize>(),
        "{}",
        path.display()
    );
    (dims, body)
}

const DIGITS: &str = "input x: [1, 8, 8]
input y
param W: [10, 64] = zeros
param b: [10] = zeros
let logits = W @ reshape(x, [64]) + b
loss cross_entropy(logits, y)
metric accuracy = argmax(logits) == y
train {
  data = idx(x = \"digits-train-images-idx3-ubyte\", y = \"digits-train-labels-idx1-ubyte\", scale = 1/16)
  test = idx(x = \"digits-test-images-idx3-ubyte\", y = \"digits-test-labels-idx1-ubyte\", scale = 1/16)
  optimizer = adam(lr = 0.05)
  batch = 32
  epochs = 5
  seed = 1
}
";

/// scikit-learn's digits in `examples/data/` (`make_digits.py`): the
/// training and test parts load with `scale = 1/16` as the files say when
/// read by hand, hold every class, and a softmax regression trained on one
/// part classifies the other.
#[test]
fn the_digits_load_as_their_idx_files_say_and_can_be_learnt() {
    let dir = crate::common::root().join("examples/data");
    for (part, n, data) in [("train", 1437, "data"), ("test", 360, "test")] {
        let (dims, pixels) = read_idx_u8(&dir.join(format!("digits-{part}-images-idx3-ubyte")));
        let (ldims, labels) = read_idx_u8(&dir.join(format!("digits-{part}-labels-idx1-ubyte")));
        assert_eq!((dims, ldims), (vec![n, 8, 8], vec![n]), "{part}");
        assert!(pixels.iter().all(|&p| p <= 16), "{part}");
        let mut counts = [0; 10];
        for &l in &labels {
            counts[usize::from(l)] += 1;
        }
        assert!(counts.iter().all(|&c| c > 20), "{part}: {counts:?}");
        // The loader through the program's `data` (the training part) or
        // its `test` setting renamed to `data`.
        let src = if data == "data" {
            DIGITS.to_string()
        } else {
            DIGITS
                .replace("  data = idx(", "  train_part = idx(")
                .replace("  test = idx(", "  data = idx(")
                .replace("  train_part = idx(", "  test = idx(")
        };
        let c = gradc::compile(&src).unwrap();
        let ds = runtime::load_data(&c, None, &dir, &[true, true], &mut |_| {})
            .unwrap()
            .unwrap();
        assert_eq!((ds.len(), ds.sizes.clone()), (n, vec![64, 1]), "{part}");
        let want: Vec<f64> = pixels.iter().map(|&p| f64::from(p) / 16.0).collect();
        assert_eq!(ds.inputs[0], want, "{part}");
        let want: Vec<f64> = labels.iter().map(|&l| f64::from(l)).collect();
        assert_eq!(ds.inputs[1], want, "{part}");
    }
    // A few pixels and labels as make_digits.py printed them.
    let c = gradc::compile(DIGITS).unwrap();
    let ds = runtime::load_data(&c, None, &dir, &[true, true], &mut |_| {})
        .unwrap()
        .unwrap();
    let row3: Vec<f64> = [0, 0, 7, 14, 5, 1, 0, 0]
        .iter()
        .map(|&p| f64::from(p) / 16.0)
        .collect();
    assert_eq!(&ds.example(0, 0)[24..32], &row3[..]);
    assert_eq!(ds.example(1, 0), &[6.0]);

    let cfg = c.typed.train.clone().unwrap();
    let opts = Options {
        base_dir: dir,
        ..Options::default()
    };
    let rep = runtime::train(&c, &cfg, &opts, &mut ()).unwrap();
    let test = rep.test.expect("a test evaluation");
    assert_eq!((rep.train.examples, test.examples), (1437, 360));
    assert!(
        test.metrics[0].1 > 0.9,
        "test accuracy {}",
        test.metrics[0].1
    );
}
