//! The corpus (every `.grad` file of `examples/` and `tests/`) and its
//! mutations: mostly at the token level, with the project's own lexer
//! finding the tokens, now and then at the byte level.

use std::path::{Path, PathBuf};

use gradc::syntax::lexer::Lexer;
use gradc::types::builtins::names;

use super::rng::R;
use crate::common::root;

/// A source split into tokens: `pieces[k]` is the text before token `k`
/// (spaces, comments, characters that start no token) and the token.
#[derive(Clone, Debug)]
struct Tokens {
    pieces: Vec<(String, String)>,
    tail: String,
}

impl Tokens {
    fn of(src: &str) -> Tokens {
        let mut errors = Vec::new();
        let mut pieces = Vec::new();
        let mut at = 0;
        for (lo, _, hi) in Lexer::new(src, &mut errors).flatten() {
            pieces.push((src[at..lo].to_string(), src[lo..hi].to_string()));
            at = hi;
        }
        Tokens {
            pieces,
            tail: src[at..].to_string(),
        }
    }

    fn text(&self) -> String {
        let mut s = String::new();
        for (gap, tok) in &self.pieces {
            s += gap;
            s += tok;
        }
        s + &self.tail
    }
}

/// The files mutations start from, and every token seen in them.
pub struct Corpus {
    files: Vec<Vec<u8>>,
    tokens: Vec<Tokens>,
    vocabulary: Vec<String>,
    /// The files that compile: mutations of these start most inputs.
    compiling: Vec<usize>,
    /// The REPL scripts, `tests/repl/*.txt`.
    scripts: Vec<Vec<u8>>,
}

/// A token's kind, for replacements that keep the syntax.
fn kind(tok: &str) -> u8 {
    match tok {
        "+" | "-" | "*" | "/" | "^" | "@" => 0,
        "==" | "!=" | "<" | "<=" | ">" | ">=" => 1,
        t if KEYWORDS.contains(&t) => 5,
        t if t.starts_with(|c: char| c.is_ascii_digit()) => 2,
        t if t.starts_with(|c: char| c.is_alphabetic() || c == '_') => 3,
        _ => 4,
    }
}

/// The `.grad` files under `dir`, recursively, sorted.
fn grad_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            grad_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "grad") {
            out.push(p);
        }
    }
}

const PUNCTUATION: &[&str] = &[
    "(", ")", "[", "]", "{", "}", ",", ";", ":", "=", "==", "!=", "<", "<=", ">", ">=", "+", "-",
    "*", "/", "^", "@", ".", "..", "\"", "#", "\n",
];
const KEYWORDS: &[&str] = &[
    "param", "input", "dim", "let", "fn", "loss", "metric", "output", "train", "if", "then", "else",
];
const WORDS: &[&str] = &[
    "T",
    "csv",
    "data",
    "optimizer",
    "adam",
    "sgd",
    "batch",
    "full",
    "epochs",
    "steps",
    "seed",
    "lr",
    "schedule",
    "cosine",
    "header",
    "true",
    "false",
    "zeros",
    "ones",
    "normal",
    "uniform",
    "glorot",
    "he",
    "shuffle",
    "validate",
    "patience",
];
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "7",
    "0.5",
    "1e3",
    "1e-3",
    "1e308",
    "1e309",
    "1e-400",
    "4294967296",
    "18446744073709551616",
    "99999999999999999999999999",
    "0.000000000000000000001",
    "65",
    "1000",
    "9007199254740993",
];
const UNICODE: &[&str] = &[
    "é", "ß", "😀", "\u{202e}", "\u{feff}", "\u{0}", "\u{7f}", "\t", "\r", "\r\n", "\u{a0}", "𝑥",
    "١", "\u{301}",
];

impl Corpus {
    pub fn load() -> Corpus {
        let mut paths = Vec::new();
        for dir in ["examples", "tests/cases", "tests/repl"] {
            grad_files(&root().join(dir), &mut paths);
        }
        assert!(paths.len() > 50, "only {} .grad files", paths.len());
        let files: Vec<Vec<u8>> = paths
            .iter()
            .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
            .collect();
        let tokens: Vec<Tokens> = files
            .iter()
            .map(|b| Tokens::of(&String::from_utf8_lossy(b)))
            .collect();
        let mut vocabulary: Vec<String> = tokens
            .iter()
            .flat_map(|t| t.pieces.iter().map(|(_, tok)| tok.clone()))
            .collect();
        vocabulary.sort();
        vocabulary.dedup();
        let compiling = files
            .iter()
            .enumerate()
            .filter(|(_, b)| std::str::from_utf8(b).is_ok_and(|t| gradc::compile(t).is_ok()))
            .map(|(k, _)| k)
            .collect();
        let scripts: Vec<Vec<u8>> = crate::common::files("tests/repl", "txt")
            .iter()
            .map(|(_, p)| std::fs::read(p).expect("a REPL script"))
            .collect();
        Corpus {
            files,
            tokens,
            vocabulary,
            compiling,
            scripts,
        }
    }

    /// A random token: from the corpus, a keyword, punctuation, a builtin,
    /// a number, an identifier, a string, unicode.
    fn token(&self, r: &mut R) -> String {
        match r.below(10) {
            0 | 1 => r.pick(&self.vocabulary).clone(),
            2 => r.pick(PUNCTUATION).to_string(),
            3 => r.pick(KEYWORDS).to_string(),
            4 => r.pick(&names().collect::<Vec<_>>()).to_string(),
            5 => r.pick(WORDS).to_string(),
            6 => r.pick(NUMBERS).to_string(),
            7 => {
                let len = 1 + r.below(6);
                let mut s: String = (0..len)
                    .map(|_| *r.pick(&['a', 'b', 'x', 'y', 'z', '_', 'W', '0', '1']))
                    .collect();
                if s.starts_with(|c: char| c.is_ascii_digit()) {
                    s.insert(0, 'v');
                }
                s
            }
            8 => format!("\"{}\"", r.pick(&["", "x", "data.csv", "a b", "é"])),
            _ => r.pick(UNICODE).to_string(),
        }
    }

    /// A mutated corpus file.
    pub fn mutated(&self, r: &mut R) -> Vec<u8> {
        let k = if r.chance(0.7) {
            *r.pick(&self.compiling)
        } else {
            r.below(self.files.len())
        };
        self.mutate(&self.files[k], Some(&self.tokens[k]), r)
    }

    /// A mutated REPL script: one of `tests/repl/*.txt`, or a corpus file
    /// fed as a script.
    pub fn mutated_script(&self, r: &mut R) -> Vec<u8> {
        if r.chance(0.3) {
            return self.mutated(r);
        }
        let script = r.pick(&self.scripts);
        self.mutate(script, None, r)
    }

    /// `bytes` mutated (`tokens`: its tokens, if known).
    fn mutate(&self, bytes: &[u8], tokens: Option<&Tokens>, r: &mut R) -> Vec<u8> {
        let source_is_text = std::str::from_utf8(bytes).is_ok();
        if !source_is_text || r.chance(0.1) {
            return self.bytes_mutated(bytes, r);
        }
        let mut t = match tokens {
            Some(t) => t.clone(),
            None => Tokens::of(std::str::from_utf8(bytes).unwrap_or_default()),
        };
        let rounds = match r.below(10) {
            0..=5 => 1,
            6..=8 => 2 + r.below(3),
            _ => 5 + r.below(10),
        };
        // Mutations that keep the syntax (a token for one of its kind, a
        // number for a number) reach the checker and the engines more often.
        let gentle = r.chance(0.4);
        for _ in 0..rounds {
            self.mutate_tokens(&mut t, r, gentle);
        }
        t.text().into_bytes()
    }

    fn mutate_tokens(&self, t: &mut Tokens, r: &mut R, gentle: bool) {
        let n = t.pieces.len();
        if n == 0 {
            t.pieces.push((String::new(), self.token(r)));
            return;
        }
        let i = r.below(n);
        let gap = |r: &mut R| r.pick(&[" ", " ", "", "\n", "  "]).to_string();
        let what = if gentle {
            *r.pick(&[10, 11, 12, 13])
        } else {
            r.below(14)
        };
        match what {
            11..=13 => {
                // Another token of the same kind from the same file: a
                // name for a name, an operator for an operator.
                let k = kind(&t.pieces[i].1);
                let same: Vec<String> = t
                    .pieces
                    .iter()
                    .map(|(_, tok)| tok)
                    .filter(|tok| kind(tok) == k)
                    .cloned()
                    .collect();
                let mut choice = r.pick(&same).clone();
                if k == 3 && r.chance(0.3) {
                    choice = r.pick(&names().collect::<Vec<_>>()).to_string();
                }
                if k == 0 || k == 1 {
                    choice = r.pick(&PUNCTUATION[10..22]).to_string();
                }
                t.pieces[i].1 = choice;
            }
            0 => {
                t.pieces.remove(i);
            }
            1 => {
                let p = t.pieces[i].clone();
                t.pieces.insert(i, p);
            }
            2 => {
                let j = if r.chance(0.5) {
                    (i + 1).min(n - 1)
                } else {
                    r.below(n)
                };
                let (a, b) = (t.pieces[i].1.clone(), t.pieces[j].1.clone());
                t.pieces[i].1 = b;
                t.pieces[j].1 = a;
            }
            3 | 4 => t.pieces[i].1 = self.token(r),
            5 => {
                let g = gap(r);
                let tok = self.token(r);
                t.pieces.insert(i, (g, tok));
            }
            6 => {
                // Splice a run of tokens from another file in.
                let other = r.pick(&self.tokens);
                if other.pieces.is_empty() {
                    return;
                }
                let a = r.below(other.pieces.len());
                let len = 1 + r.below(12.min(other.pieces.len() - a));
                let run = other.pieces[a..a + len].to_vec();
                let replace = if r.chance(0.5) {
                    r.below(4).min(n - i)
                } else {
                    0
                };
                t.pieces.splice(i..i + replace, run);
            }
            7 => {
                // Delete a run.
                let len = 1 + r.below(8.min(n - i));
                t.pieces.drain(i..i + len);
            }
            8 => {
                // Duplicate a run (more items, longer expressions).
                let len = 1 + r.below(16.min(n - i));
                let run = t.pieces[i..i + len].to_vec();
                let copies = 1 + r.below(3);
                for _ in 0..copies {
                    t.pieces.splice(i..i, run.clone());
                }
            }
            9 => {
                // Deep nesting around a token: at the limits and past them.
                let depth = *r.pick(&[10, 100, 199, 200, 201, 255, 256, 257, 400]);
                let (open, close) = *r.pick(&[("(", ")"), ("[", "]"), ("-", ""), ("sum(", ")")]);
                let tok = &mut t.pieces[i].1;
                let closed = r.chance(0.8);
                *tok = format!(
                    "{}{tok}{}",
                    open.repeat(depth),
                    if closed {
                        close.repeat(depth)
                    } else {
                        String::new()
                    }
                );
            }
            _ => {
                // A number anywhere numbers go: shapes, indices, constants.
                let numbers: Vec<usize> = (0..n)
                    .filter(|&k| t.pieces[k].1.starts_with(|c: char| c.is_ascii_digit()))
                    .collect();
                if numbers.is_empty() {
                    return;
                }
                let k = *r.pick(&numbers);
                t.pieces[k].1 = match r.below(3) {
                    0 => r.pick(NUMBERS).to_string(),
                    _ => r.below(12).to_string(),
                };
            }
        }
    }

    /// Byte-level mutations: flips, insertions of bytes that are not UTF-8,
    /// control characters, truncation (maybe inside a character).
    fn bytes_mutated(&self, bytes: &[u8], r: &mut R) -> Vec<u8> {
        let mut b = bytes.to_vec();
        for _ in 0..1 + r.below(4) {
            let i = if b.is_empty() {
                0
            } else {
                r.below(b.len() + 1)
            };
            match r.below(6) {
                0 if i < b.len() => b[i] ^= 1 << r.below(8),
                1 => {
                    const INSERTS: &[&[u8]] = &[
                        &[0xff],
                        &[0xc3],
                        &[0xe2, 0x82],
                        &[0xf0, 0x9f, 0x98],
                        &[0xed, 0xa0, 0x80],
                        &[0x00],
                        &[0x1b],
                        &[0xc0, 0x80],
                        &[0xef, 0xbb, 0xbf],
                    ];
                    let insert: &[u8] = r.pick::<&[u8]>(INSERTS);
                    b.splice(i..i, insert.iter().copied());
                }
                2 => b.truncate(i),
                3 if i < b.len() => {
                    b.remove(i);
                }
                4 => {
                    let byte = r.u64() as u8;
                    b.insert(i, byte);
                }
                _ => {
                    let u = r.pick(UNICODE).as_bytes().to_vec();
                    b.splice(i..i, u);
                }
            }
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splitting into tokens and joining again gives the source back.
    #[test]
    fn tokens_give_the_source_back() {
        let c = Corpus::load();
        for (bytes, t) in c.files.iter().zip(&c.tokens) {
            if let Ok(text) = std::str::from_utf8(bytes) {
                assert_eq!(t.text(), text);
            }
        }
        assert!(c.vocabulary.len() > 100, "{}", c.vocabulary.len());
    }
}
