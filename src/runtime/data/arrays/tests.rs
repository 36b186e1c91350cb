//! `.npy`, `.npz` and IDX files through the loader: good files written here,
//! truncated ones, wrong dtypes, shapes that do not fit.

use super::super::testing::{load_arrays, npy, npy_raw, write_npz, TempDir};
use crate::shape::Shape;
use crate::types::train::Format;

fn image() -> Shape {
    Shape(vec![1, 2, 2])
}

#[test]
fn npz_arrays_by_name_keep_the_example_shape_and_scale() {
    let d = TempDir::new("npz-good");
    let x: Vec<u8> = (0..12).collect();
    let y: Vec<i64> = vec![0, 1, 2];
    for deflate in [false, true] {
        write_npz(
            &d.path("m.npz"),
            &[("x_train", npy(&[3, 2, 2], &x)), ("y_train", npy(&[3], &y))],
            deflate,
        );
        let ds = load_arrays(
            &d.0,
            Format::Npz,
            "m.npz",
            &[("x", "x_train"), ("y", "y_train")],
            &[("x", image()), ("y", Shape::scalar())],
            Some(0.5),
        )
        .unwrap();
        assert_eq!(ds.len(), 3);
        assert_eq!(ds.example(0, 1), &[2.0, 2.5, 3.0, 3.5]);
        // The scalar label is not scaled.
        assert_eq!(ds.example(1, 2), &[2.0]);
        assert_eq!(
            ds.example_note(1).1,
            "in example 1 (counting from 0) of the data"
        );
    }
}

#[test]
fn npy_files_of_every_common_dtype_convert_to_f64() {
    let d = TempDir::new("npy-dtypes");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("f8", npy(&[2, 2], &[1.5f64, -2.0, 3.0, 4.0])),
        ("f4", npy(&[2, 2], &[1.5f32, -2.0, 3.0, 4.0])),
        ("i1", npy(&[2, 2], &[1i8, -2, 3, 4])),
        ("i2", npy(&[2, 2], &[1i16, -2, 3, 4])),
        ("i4", npy(&[2, 2], &[1i32, -2, 3, 4])),
        ("u2", npy(&[2, 2], &[1u16, 2, 3, 4])),
        ("u4", npy(&[2, 2], &[1u32, 2, 3, 4])),
        ("u8", npy(&[2, 2], &[1u64, 2, 3, 4])),
        ("b1", npy(&[2, 2], &[true, false, true, true])),
        // Big-endian, written by hand.
        (
            ">f8",
            npy_raw(
                ">f8",
                "(2, 2)",
                false,
                &[1.5f64, -2.0, 3.0, 4.0]
                    .iter()
                    .flat_map(|x| x.to_be_bytes())
                    .collect::<Vec<_>>(),
            ),
        ),
    ];
    for (name, bytes) in &cases {
        let file = format!("{}.npy", name.replace('>', "be"));
        std::fs::write(d.path(&file), bytes).unwrap();
        let ds = load_arrays(
            &d.0,
            Format::Npy,
            "",
            &[("x", &file)],
            &[("x", Shape(vec![2]))],
            None,
        )
        .unwrap_or_else(|e| panic!("{name}: {}", e.render(false)));
        assert_eq!(ds.len(), 2, "{name}");
        let first = ds.example(0, 0);
        let want = if name.contains('f') {
            [1.5, -2.0]
        } else {
            [1.0, 0.0]
        };
        match *name {
            "b1" => assert_eq!(first, &[1.0, 0.0]),
            "u2" | "u4" | "u8" => assert_eq!(first, &[1.0, 2.0], "{name}"),
            _ if name.contains('f') => assert_eq!(first, &want, "{name}"),
            _ => assert_eq!(first, &[1.0, -2.0], "{name}"),
        }
    }
}

#[test]
fn fortran_order_is_read_in_row_order() {
    let d = TempDir::new("npy-fortran");
    // [[1, 2, 3], [4, 5, 6]] stored column by column.
    let body: Vec<u8> = [1.0f64, 4.0, 2.0, 5.0, 3.0, 6.0]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    std::fs::write(d.path("f.npy"), npy_raw("<f8", "(2, 3)", true, &body)).unwrap();
    let ds = load_arrays(
        &d.0,
        Format::Npy,
        "",
        &[("x", "f.npy")],
        &[("x", Shape(vec![3]))],
        None,
    )
    .unwrap();
    assert_eq!(ds.example(0, 1), &[4.0, 5.0, 6.0]);
}

fn npy_error(name: &str, bytes: &[u8], shape: Shape) -> String {
    let d = TempDir::new(name);
    std::fs::write(d.path("a.npy"), bytes).unwrap();
    let e = load_arrays(
        &d.0,
        Format::Npy,
        "",
        &[("x", "a.npy")],
        &[("x", shape)],
        None,
    )
    .unwrap_err();
    let text = e.render(false);
    assert!(text.contains("a.npy"), "the file is named: {text}");
    text
}

/// Shapes whose byte count overflows, or whose numbers would not fit in
/// memory as f64, are errors before anything is allocated (found by the
/// fuzzer: a panic on a capacity overflow).
#[test]
fn huge_declared_shapes_are_errors() {
    for (shape, descr) in [
        ("(18446744073709551615,)", "|u1"),
        ("(18446744073709551615,)", "<f8"),
        ("(4294967296, 4294967296)", "|u1"),
        ("(2305843009213693951,)", "|u1"),
    ] {
        let bytes = npy_raw(descr, shape, false, &[1, 2, 3, 4, 5, 6, 7, 8]);
        let text = npy_error("npy-huge", &bytes, Shape::scalar());
        assert!(
            text.contains("is too large") || text.contains("the data is truncated"),
            "{shape}: {text}"
        );
    }
    // A 0-d array without its one number (found by the fuzzer: a panic on
    // the first axis of an empty shape).
    let bytes = npy_raw("|u1", "()", false, &[]);
    let text = npy_error("npy-0d", &bytes, Shape::scalar());
    assert!(text.contains("the data is truncated"), "{text}");
    // In an archive, too.
    let d = TempDir::new("npz-huge");
    let member = npy_raw("|u1", "(18446744073709551615,)", false, &[1, 2, 3]);
    write_npz(&d.path("a.npz"), &[("x", member)], true);
    let r = load_arrays(
        &d.0,
        Format::Npz,
        "a.npz",
        &[("x", "x")],
        &[("x", Shape::scalar())],
        None,
    );
    assert!(r.is_err());
}

#[test]
fn truncated_npy_files_are_located_errors() {
    let good = npy(&[4, 2], &[1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    // Every prefix is an error, never a panic.
    for cut in 0..good.len() {
        let d = TempDir::new("npy-prefix");
        std::fs::write(d.path("a.npy"), &good[..cut]).unwrap();
        let r = load_arrays(
            &d.0,
            Format::Npy,
            "",
            &[("x", "a.npy")],
            &[("x", Shape(vec![2]))],
            None,
        );
        assert!(r.is_err(), "prefix of {cut} bytes");
    }
    let text = npy_error("npy-cut", &good[..good.len() - 20], Shape(vec![2]));
    assert!(
        text.contains("the data is truncated: the header declares shape [4, 2] of `<f8` (64 bytes from byte offset 128), but there are 44: it ends in entry 2 of the first axis (element 5, counting from 0)"),
        "{text}"
    );
    let text = npy_error("npy-header", &good[..40], Shape(vec![2]));
    assert!(
        text.contains("the file ends inside the .npy header"),
        "{text}"
    );
}

#[test]
fn strings_and_objects_are_rejected_by_dtype() {
    let text = npy_error(
        "npy-str",
        &npy_raw("<U3", "(2,)", false, &[0; 24]),
        Shape::scalar(),
    );
    assert!(text.contains("the dtype `<U3` (strings) is not supported: integers (8 to 64 bits), floats (32 or 64 bits) and booleans are"), "{text}");
    let text = npy_error(
        "npy-obj",
        &npy_raw("|O", "(2,)", false, &[0; 16]),
        Shape::scalar(),
    );
    assert!(text.contains("(Python objects) is not supported"), "{text}");
    let text = npy_error(
        "npy-c16",
        &npy_raw("<c16", "(1,)", false, &[0; 16]),
        Shape::scalar(),
    );
    assert!(
        text.contains("(complex numbers) is not supported"),
        "{text}"
    );
}

#[test]
fn shapes_that_do_not_fit_the_input_are_errors() {
    let x = npy(&[3, 5], &[0u8; 15]);
    let text = npy_error("npy-shape", &x, Shape(vec![2, 2]));
    assert!(
        text.contains("the file has shape [3, 5]: one example is [5] (5 numbers), but input `x` has shape [2, 2] (4 numbers)"),
        "{text}"
    );
    let text = npy_error(
        "npy-0d",
        &npy_raw("<f8", "()", false, &[0; 8]),
        Shape::scalar(),
    );
    assert!(text.contains("is a single number (shape ())"), "{text}");
    let nan = npy(&[2], &[1.0f64, f64::NAN]);
    let text = npy_error("npy-nan", &nan, Shape::scalar());
    assert!(
        text.contains("entry 1 (counting from 0) holds NaN"),
        "{text}"
    );
}

#[test]
fn npz_errors_name_the_archive_and_the_array() {
    let d = TempDir::new("npz-bad");
    write_npz(
        &d.path("m.npz"),
        &[
            ("x_train", npy(&[3, 2], &[0.0f64; 6])),
            ("y_train", npy(&[2], &[0i64; 2])),
        ],
        true,
    );
    let load = |arrays: &[(&str, &str)]| {
        load_arrays(
            &d.0,
            Format::Npz,
            "m.npz",
            arrays,
            &[("x", Shape(vec![2])), ("y", Shape::scalar())],
            None,
        )
        .unwrap_err()
        .render(false)
    };
    let text = load(&[("x", "x_trian"), ("y", "y_train")]);
    assert!(
        text.contains("m.npz: error: the archive has no array `x_trian`; did you mean `x_train`?"),
        "{text}"
    );
    let text = load(&[("x", "x_train"), ("y", "y_train")]);
    assert!(
        text.contains("array `y_train` has 2 entries (examples) but the array of input `x` has 3"),
        "{text}"
    );
    // A truncated archive.
    let bytes = std::fs::read(d.path("m.npz")).unwrap();
    std::fs::write(d.path("m.npz"), &bytes[..bytes.len() / 2]).unwrap();
    let text = load(&[("x", "x_train"), ("y", "y_train")]);
    assert!(text.contains("not a valid .npz file"), "{text}");
}

#[test]
fn idx_files_feed_image_inputs() {
    let d = TempDir::new("idx-good");
    let pixels: Vec<u8> = (0..12).map(|i| i * 20).collect();
    std::fs::write(
        d.path("images"),
        super::super::idx::write_u8(&[3, 2, 2], &pixels),
    )
    .unwrap();
    std::fs::write(
        d.path("labels"),
        super::super::idx::write_u8(&[3], &[7, 0, 9]),
    )
    .unwrap();
    let ds = load_arrays(
        &d.0,
        Format::Idx,
        "",
        &[("x", "images"), ("y", "labels")],
        &[("x", image()), ("y", Shape::scalar())],
        Some(1.0 / 255.0),
    )
    .unwrap();
    assert_eq!(ds.len(), 3);
    assert_eq!(ds.example(0, 2)[3], 220.0 / 255.0);
    assert_eq!(ds.example(1, 0), &[7.0]);
    // Truncated: located, with the entry.
    let full = super::super::idx::write_u8(&[3, 2, 2], &pixels);
    std::fs::write(d.path("images"), &full[..full.len() - 5]).unwrap();
    let text = load_arrays(
        &d.0,
        Format::Idx,
        "",
        &[("x", "images"), ("y", "labels")],
        &[("x", image()), ("y", Shape::scalar())],
        None,
    )
    .unwrap_err()
    .render(false);
    assert!(
        text.contains("images: error: the data is truncated"),
        "{text}"
    );
    assert!(
        text.contains("in entry 1 of the first axis (element 7"),
        "{text}"
    );
}

/// The shape of one example, from the header alone: an `.npy` file, an
/// `.npz` member (stored or deflated), an IDX file (plain or gzipped).
#[test]
fn an_example_shape_is_read_from_the_header() {
    use super::example_shape;
    let d = TempDir::new("example-shape");
    std::fs::write(d.path("x.npy"), npy(&[4, 2, 3], &[0f32; 24])).unwrap();
    assert_eq!(
        example_shape(&d.0, Format::Npy, "x.npy", None),
        Ok(vec![2, 3])
    );
    for deflate in [false, true] {
        write_npz(
            &d.path("m.npz"),
            &[
                ("x", npy(&[5, 7], &[0u8; 35])),
                ("y", npy(&[5], &[0i64; 5])),
            ],
            deflate,
        );
        assert_eq!(
            example_shape(&d.0, Format::Npz, "m.npz", Some("x")),
            Ok(vec![7])
        );
        assert_eq!(
            example_shape(&d.0, Format::Npz, "m.npz", Some("y")),
            Ok(vec![])
        );
        let e = example_shape(&d.0, Format::Npz, "m.npz", Some("z")).unwrap_err();
        assert!(e.ends_with("has no array `z`"), "{e}");
    }
    let idx = crate::runtime::data::idx::write_u8(&[3, 28, 28], &[0; 3 * 28 * 28]);
    std::fs::write(d.path("i.idx"), &idx).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &idx).unwrap();
    std::fs::write(d.path("i.idx.gz"), gz.finish().unwrap()).unwrap();
    for f in ["i.idx", "i.idx.gz"] {
        assert_eq!(
            example_shape(&d.0, Format::Idx, f, None),
            Ok(vec![28, 28]),
            "{f}"
        );
    }
    std::fs::write(d.path("short.idx"), [0u8, 0, 8, 3, 0, 0]).unwrap();
    let e = example_shape(&d.0, Format::Idx, "short.idx", None).unwrap_err();
    assert_eq!(e, "the file ends inside the IDX header");
    let e = example_shape(&d.0, Format::Npy, "none.npy", None).unwrap_err();
    assert!(e.starts_with("cannot open"), "{e}");
}
