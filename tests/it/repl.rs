//! `gradc repl` driven by scripts: every `tests/repl/*.txt` is fed to
//! `gradc repl --echo` on stdin, and the transcript (each input line echoed
//! as `> line`, or `. line` when it continues an input, then its results and
//! errors, stdout and stderr interleaved as they were written) is compared
//! with `tests/snapshots/repl/<script>.snap`, followed by the exit code.
//!
//! A first line `# args: ...` gives extra arguments (files to load first,
//! `--backend`). `$TMP` in a script is a scratch directory, shown as `$TMP`.
//! The scripts run in the crate's root, so they can `:load examples/...`.
//!
//! Every script is also run with `--backend interp`: the interpreter must
//! give the same transcript as the JIT, to the bit.
//!
//! Regenerate with `INSTA_UPDATE=always cargo test --test it repl::`, then read
//! every changed snapshot before committing it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::{each_case, files, root, snapshots};

/// The scripts `tests/repl/*.txt`, with their names.
fn scripts() -> Vec<(String, PathBuf)> {
    files("tests/repl", "txt")
}

/// Runs `gradc repl --echo ARGS` on `script` and gives the transcript with
/// the exit code. `tmp` replaces `$TMP` in the script, and back in the output.
fn transcript(script: &str, extra: &[&str], tmp: &Path) -> String {
    let tmp_text = tmp.display().to_string();
    let input = script.replace("$TMP", &tmp_text);
    let mut args: Vec<String> = vec!["repl".into(), "--echo".into()];
    if let Some(line) = script
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# args:"))
    {
        args.extend(line.split_whitespace().map(String::from));
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let (mut reader, writer) = std::io::pipe().expect("a pipe");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gradc"))
        .args(&args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env("XDG_DATA_HOME", tmp)
        .stdin(Stdio::piped())
        .stdout(writer.try_clone().expect("a pipe"))
        .stderr(writer)
        .spawn()
        .expect("gradc runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let mut out = String::new();
    reader.read_to_string(&mut out).expect("utf-8 output");
    let status = child.wait().expect("gradc exits");
    feeder.join().expect("the script was written");
    let mut text = out.replace(&tmp_text, "$TMP");
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!(
        "-- exit code {} --\n",
        status.code().unwrap_or(-1)
    ));
    text
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("repl-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

#[test]
fn scripts_match_their_transcripts() {
    each_case(scripts(), |name, path| {
        let script = std::fs::read_to_string(&path).unwrap();
        let text = transcript(&script, &[], &scratch(name));
        insta::with_settings!({
            snapshot_path => snapshots("repl"),
            prepend_module_to_snapshot => false,
            input_file => &path,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(name, text);
        });
    });
}

#[test]
fn the_interpreter_gives_the_same_transcripts() {
    each_case(scripts(), |name, path| {
        let script = std::fs::read_to_string(&path).unwrap();
        let jit = transcript(&script, &[], &scratch(&format!("{name}-jit")));
        let interp = transcript(
            &script,
            &["--backend", "interp"],
            &scratch(&format!("{name}-interp")),
        );
        assert_eq!(jit, interp, "{name}: the backends differ");
    });
}

#[test]
fn a_clean_script_exits_with_zero_and_prints_no_prompts() {
    let tmp = scratch("clean");
    let out = transcript("let a = 2\na * 3\n", &[], &tmp);
    assert_eq!(
        out,
        "> let a = 2\nlet a = 2 : []\n> a * 3\n6 : []\n-- exit code 0 --\n"
    );
    // Without --echo, only the results.
    let mut child = Command::new(env!("CARGO_BIN_EXE_gradc"))
        .args(["repl"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gradc runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"[1, 2] * 0.5\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "[0.5, 1] : [2]\n");
    assert!(out.stderr.is_empty());
    assert!(out.status.success());
}

/// Issue 10: an unclosed bracket in a piped script ends at the next line
/// that cannot continue it (a definition or a command): that input fails,
/// located at its script line, and the later definitions survive.
#[test]
fn an_unclosed_bracket_does_not_swallow_the_rest_of_a_script() {
    let out = transcript(
        "param w = 1\nloss (((w\nparam v = 2\n:params\n",
        &[],
        &scratch("unclosed"),
    );
    assert!(
        out.contains("> loss (((w\n<repl>:2:10: error: unexpected end of input\n")
            && out.ends_with("> :params\nparam w = 1 : []\nparam v = 2 : []\n-- exit code 1 --\n"),
        "{out}"
    );
}

/// `:check` in the REPL and `gradc check` check the same points (the
/// current values, then the same seeded perturbations) and print the same
/// table.
#[test]
fn check_in_the_repl_is_gradc_check() {
    let cli = Command::new(env!("CARGO_BIN_EXE_gradc"))
        .args([
            "check",
            "examples/logistic.grad",
            "--input",
            "x=0.5,-1.5",
            "--input",
            "y=1",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("gradc runs");
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let cli = String::from_utf8_lossy(&cli.stdout).into_owned();
    assert!(cli.contains("at 4 points"), "{cli}");
    let script = ":load examples/logistic.grad\n:set x = 0.5, -1.5\n:set y = 1\n:check\n";
    let repl = transcript(script, &[], &scratch("check"));
    let table = repl
        .split_once("> :check\n")
        .and_then(|(_, rest)| rest.split_once("-- exit code"))
        .map(|(t, _)| t)
        .unwrap_or_else(|| panic!("{repl}"));
    assert_eq!(table, cli);
}

/// A data error is rendered by the one renderer: `gradc train` and the
/// REPL's `:train` print the same text, located in the data file, with a
/// note pointing into the .grad file.
#[test]
fn a_data_error_reads_the_same_in_the_cli_and_the_repl() {
    let tmp = scratch("data-error");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/data/bad_cell.csv"),
        tmp.join("bad_cell.csv"),
    )
    .expect("the data file is copied");
    let model = tmp.join("model.grad");
    std::fs::write(
        &model,
        "input x: [2]\ninput y\nparam w: [2]\nloss (dot(w, x) - y)^2\n\
         train { data = csv(\"bad_cell.csv\", x = 0..2, y = 2) }\n",
    )
    .expect("the model is written");
    let model = model.display().to_string();
    let cli = Command::new(env!("CARGO_BIN_EXE_gradc"))
        .args(["train", &model])
        .env("NO_COLOR", "1")
        .output()
        .expect("gradc runs");
    assert!(!cli.status.success());
    let cli = String::from_utf8_lossy(&cli.stderr).replace(&tmp.display().to_string(), "$TMP");
    assert!(
        cli.starts_with("$TMP/bad_cell.csv:3:6: error: `abc` is not a finite number")
            && cli.contains(
                "\nnote: $TMP/model.grad:5:36: mapped here: input `x` reads columns 0, 1\n"
            ),
        "{cli}"
    );
    let repl = transcript(":train\n", &[&model], &tmp);
    let error = repl
        .split_once("> :train\n")
        .and_then(|(_, rest)| rest.split_once("-- exit code"))
        .map(|(t, _)| t)
        .unwrap_or_else(|| panic!("{repl}"));
    assert_eq!(error, cli);
}
