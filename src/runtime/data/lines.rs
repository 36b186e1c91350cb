//! The CSV fast path's rows: a block of whole lines (no quotes, no lone
//! `\r`) cut into pieces at line ends, the pieces parsed at once on the
//! machine's cores, and their rows appended in file order.
//!
//! Decisions:
//! - A piece is parsed with no allocation per line or cell: fields are
//!   found with `memchr`, the cells an input reads are trimmed and parsed
//!   with `fast-float2` straight from their bytes, and each row is written
//!   in place into the piece's buffers (an input's numbers in its order,
//!   whatever the order of its columns).
//! - A line that is not a good row stops its piece: the loader reads it
//!   again the slow way, which finds and words the error (the same message
//!   as a file read record by record). The pieces after the first one that
//!   stopped are dropped, so the first bad line of the file is reported.
//! - The result does not depend on the number of threads: every line is
//!   parsed alone, and the pieces are joined in order.

/// Where the cells of a row go.
pub struct Plan {
    /// For each column, the (input, position in the input's example) of
    /// every input that reads it.
    dests: Vec<Vec<(usize, usize)>>,
    /// The number of elements of each input's example.
    sizes: Vec<usize>,
    /// The number of fields every row must have.
    width: usize,
}

impl Plan {
    /// `reads[k]`: the columns input `k` reads, in its order (`None`: the
    /// input is not read and holds zeros).
    pub fn new(reads: &[Option<Vec<usize>>], sizes: &[usize], width: usize) -> Plan {
        let mut dests: Vec<Vec<(usize, usize)>> = Vec::new();
        for (k, cols) in reads.iter().enumerate() {
            for (pos, &c) in cols.iter().flatten().enumerate() {
                if dests.len() <= c {
                    dests.resize(c + 1, Vec::new());
                }
                dests[c].push((k, pos));
            }
        }
        Plan {
            dests,
            sizes: sizes.to_vec(),
            width,
        }
    }
}

/// Why a piece stopped before its end.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stop {
    /// A line with a quote or a lone `\r`: the file needs the csv crate.
    Fallback,
    /// A line that is not a good row: its start in the block, and its
    /// index among the block's lines (from 0).
    Bad { at: usize, line: usize },
}

/// The rows of one piece of a block.
pub struct Piece {
    /// Each input's numbers, row after row.
    pub data: Vec<Vec<f64>>,
    /// For each row, the index of its line among the block's lines.
    pub lines: Vec<usize>,
    pub stop: Option<Stop>,
}

/// Blocks shorter than this are parsed on one thread.
const SPLIT_ABOVE: usize = 1 << 16;

/// The rows of `block`, whole lines of the file, in pieces in file order,
/// up to and including the first piece that stopped.
pub fn parse_block(block: &[u8], plan: &Plan) -> Vec<Piece> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let pieces = if block.len() < SPLIT_ABOVE {
        1
    } else {
        threads
    };
    let cuts = cut(block, pieces);
    // The index of the first line of each piece among the block's lines.
    let mut first_lines = vec![0];
    for w in cuts.windows(2).take(cuts.len() - 2) {
        let n = memchr::memchr_iter(b'\n', &block[w[0]..w[1]]).count();
        first_lines.push(first_lines.last().copied().unwrap_or(0) + n);
    }
    let mut out: Vec<Piece> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..cuts.len() - 1)
            .map(|i| {
                let (a, b, first) = (cuts[i], cuts[i + 1], first_lines[i]);
                s.spawn(move || parse_piece(block, a, b, first, plan))
            })
            .collect();
        let mut out = vec![parse_piece(block, cuts[0], cuts[1], 0, plan)];
        for h in handles {
            match h.join() {
                Ok(p) => out.push(p),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    });
    if let Some(i) = out.iter().position(|p| p.stop.is_some()) {
        out.truncate(i + 1);
    }
    out
}

/// `pieces + 1` offsets that cut `block` into pieces of about the same
/// length, each ending after a `\n` (or at the block's end).
fn cut(block: &[u8], pieces: usize) -> Vec<usize> {
    let mut cuts = vec![0];
    for i in 1..pieces {
        let from = (block.len() * i / pieces).max(cuts.last().copied().unwrap_or(0));
        match memchr::memchr(b'\n', &block[from..]) {
            Some(j) if from + j + 1 < block.len() => cuts.push(from + j + 1),
            _ => break,
        }
    }
    cuts.push(block.len());
    cuts.dedup();
    cuts
}

/// The rows of `block[start..end]`, whose first line is line `first` of
/// the block.
fn parse_piece(block: &[u8], start: usize, end: usize, first: usize, plan: &Plan) -> Piece {
    let text = &block[start..end];
    let mut piece = Piece {
        data: vec![Vec::new(); plan.sizes.len()],
        lines: Vec::new(),
        stop: None,
    };
    let mut at = 0;
    let mut line = first;
    while at < text.len() {
        let stop = memchr::memchr(b'\n', &text[at..]).map_or(text.len(), |i| at + i);
        let mut row = &text[at..stop];
        if let [rest @ .., b'\r'] = row {
            row = rest;
        }
        match add_row(row, plan, &mut piece.data) {
            Ok(true) => piece.lines.push(line),
            Ok(false) => {}
            Err(Fault::Fallback) => {
                piece.stop = Some(Stop::Fallback);
                break;
            }
            Err(Fault::Bad) => {
                piece.stop = Some(Stop::Bad {
                    at: start + at,
                    line,
                });
                break;
            }
        }
        at = stop + 1;
        line += 1;
    }
    piece
}

enum Fault {
    Fallback,
    Bad,
}

/// Appends the row of `line` (without its line end) to `data`: `Ok(false)`
/// for a blank line, which holds no row.
fn add_row(line: &[u8], plan: &Plan, data: &mut [Vec<f64>]) -> Result<bool, Fault> {
    if memchr::memchr2(b'"', b'\r', line).is_some() {
        return Err(Fault::Fallback);
    }
    if line.trim_ascii().is_empty() {
        return Ok(false);
    }
    let bases: Vec<usize> = data.iter().map(Vec::len).collect();
    for (d, &n) in data.iter_mut().zip(&plan.sizes) {
        d.resize(d.len() + n, 0.0);
    }
    let filled = fill_row(line, plan, data, &bases);
    if !filled {
        for (d, &b) in data.iter_mut().zip(&bases) {
            d.truncate(b);
        }
        return Err(Fault::Bad);
    }
    Ok(true)
}

/// Writes the cells of `line` into the row of `data` that starts at
/// `bases`; false if a cell is not a finite number, a read column is
/// missing or the row has another width.
fn fill_row(line: &[u8], plan: &Plan, data: &mut [Vec<f64>], bases: &[usize]) -> bool {
    let mut field = 0;
    let mut a = 0;
    loop {
        let dests = plan.dests.get(field).map_or(&[][..], |d| &d[..]);
        // A cell that is read: the number parsed where it starts, and its
        // end found after it; any other cell: its end found by `memchr`.
        let (x, b) = match dests {
            [] => (
                0.0,
                memchr::memchr(b',', &line[a..]).map_or(line.len(), |i| a + i),
            ),
            _ => match number(line, a) {
                Some((x, b)) if x.is_finite() => (x, b),
                _ => return false,
            },
        };
        for &(k, pos) in dests {
            data[k][bases[k] + pos] = x;
        }
        field += 1;
        if b == line.len() {
            break;
        }
        a = b + 1;
    }
    field == plan.width && plan.dests.len() <= field
}

/// The number of the cell of `line` that starts at `a`, and where the cell
/// ends (a comma or the line's end): the same as [`parse`] of the whole
/// cell, without a pass to find its end first.
fn number(line: &[u8], a: usize) -> Option<(f64, usize)> {
    let mut at = a;
    while line.get(at).is_some_and(u8::is_ascii_whitespace) {
        at += 1;
    }
    let (x, used) = fast_float2::parse_partial::<f64, _>(&line[at..]).ok()?;
    at += used;
    while line.get(at).is_some_and(u8::is_ascii_whitespace) {
        at += 1;
    }
    match line.get(at) {
        None | Some(b',') => Some((x, at)),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::csv::parse;
    use super::*;

    /// x reads columns 2, 0; y reads column 1; rows of 3 fields.
    fn plan() -> Plan {
        Plan::new(&[Some(vec![2, 0]), Some(vec![1])], &[2, 1], 3)
    }

    fn rows(pieces: &[Piece]) -> (Vec<f64>, Vec<f64>, Vec<usize>) {
        let mut x = Vec::new();
        let mut y = Vec::new();
        let mut lines = Vec::new();
        for p in pieces {
            x.extend(&p.data[0]);
            y.extend(&p.data[1]);
            lines.extend(&p.lines);
        }
        (x, y, lines)
    }

    #[test]
    fn rows_are_the_same_whatever_the_pieces() {
        let mut text = String::new();
        for i in 0..20_000 {
            if i % 1000 == 7 {
                text.push_str("  \n\n");
            }
            text.push_str(&format!("{i}, {}.25 ,-{i}e-3\r\n", i % 10));
        }
        let block = text.as_bytes();
        let whole = parse_piece(block, 0, block.len(), 0, &plan());
        assert_eq!(whole.stop, None);
        assert_eq!(whole.lines.len(), 20_000);
        let parsed = parse_block(block, &plan());
        assert_eq!(rows(&parsed), rows(&[whole]));
        for n in [1, 2, 3, 7] {
            let cuts = cut(block, n);
            assert!(cuts.len() <= n + 1, "{cuts:?}");
            assert!(cuts[1..cuts.len() - 1]
                .iter()
                .all(|&c| block[c - 1] == b'\n'));
        }
        let (x, y, lines) = rows(&parsed);
        assert_eq!(&x[..4], &[-0.0, 0.0, -1e-3, 1.0]);
        assert_eq!(&y[..2], &[0.25, 1.25]);
        // Two blank lines before row 7.
        assert_eq!(&lines[6..9], &[6, 9, 10]);
    }

    #[test]
    fn the_first_bad_line_stops_the_block() {
        let mut text = String::new();
        for i in 0..30_000 {
            let row = match i {
                25_000 => "1,2\n".to_string(),
                27_000 => "\"1\",2,3\n".to_string(),
                _ => format!("{i},1,2\n"),
            };
            text.push_str(&row);
        }
        let block = text.as_bytes();
        let pieces = parse_block(block, &plan());
        let last = pieces.last().unwrap();
        let Some(Stop::Bad { at, line }) = last.stop else {
            panic!("{:?}", last.stop)
        };
        assert_eq!(line, 25_000);
        assert_eq!(&block[at..at + 4], b"1,2\n");
        let rows: usize = pieces.iter().map(|p| p.lines.len()).sum();
        assert_eq!(rows, 25_000);
        // A quote before any bad line: the csv crate reads the file.
        let text = text.replace("\n1,2\n", "\n1,\"2\",3\n");
        let pieces = parse_block(text.as_bytes(), &plan());
        assert_eq!(pieces.last().unwrap().stop, Some(Stop::Fallback));
    }

    /// A cell parsed where it starts reads what the whole cell trimmed
    /// and parsed reads, and fails where that fails.
    #[test]
    fn numbers_read_in_place_as_whole_cells() {
        let cells = [
            "1",
            " 2.5 ",
            "\t-3e2",
            "+4",
            ".5",
            "5.",
            "1e",
            "1e5x",
            "1 2",
            "",
            " ",
            "nan",
            "inf",
            "-Infinity",
            "1e309",
            "0x10",
            "1_000",
            "1.5.2",
            "e5",
            "-",
            ".",
            "１",
            "é",
            "7\t",
        ];
        for cell in cells {
            let line = format!("{cell},9");
            let got = number(line.as_bytes(), 0);
            let want = parse(cell.as_bytes()).map(|x| (x, cell.len()));
            assert_eq!(
                got.map(|(x, b)| (x.to_bits(), b)),
                want.map(|(x, b)| (x.to_bits(), b)),
                "{cell:?}"
            );
            assert_eq!(
                parse(cell.as_bytes()).map(f64::to_bits),
                cell.trim().parse::<f64>().ok().map(f64::to_bits),
                "{cell:?}"
            );
        }
    }

    #[test]
    fn bad_rows_are_bad() {
        let p = plan();
        let mut data = vec![Vec::new(), Vec::new()];
        for bad in [
            &b"1,2"[..],
            b"1,2,3,4",
            b"1,x,3",
            b"1,,3",
            b"1,2,inf",
            b"nan,2,3",
        ] {
            assert!(matches!(add_row(bad, &p, &mut data), Err(Fault::Bad)));
            assert!(data.iter().all(Vec::is_empty));
        }
        assert!(matches!(add_row(b" \t ", &p, &mut data), Ok(false)));
        assert!(matches!(
            add_row(b"1,2\r,3", &p, &mut data),
            Err(Fault::Fallback)
        ));
        assert!(matches!(add_row(b" 1 ,+2,3e1 ", &p, &mut data), Ok(true)));
        assert_eq!(data, vec![vec![30.0, 1.0], vec![2.0]]);
    }
}
