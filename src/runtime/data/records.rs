//! The records of a CSV file, one at a time: a fast path for the common
//! file (no quotes, `\n` or `\r\n` line ends), which finds the line ends and
//! commas with `memchr`, and the csv crate for everything else. A file
//! starts on the fast path and is read again with the csv crate from the
//! start when a line has a quote or a lone `\r` (the loader starts over).

use std::fs::File;
use std::io::Read;

use crate::diagnostic::{io_reason, Error, Location};

/// One record: its fields as spans of `bytes` (untrimmed), its 1-based line
/// and the byte offset of its start in the file.
#[derive(Clone, Debug, Default)]
pub struct Rec {
    bytes: Vec<u8>,
    spans: Vec<(usize, usize)>,
    pub line: usize,
    pub offset: u64,
}

impl Rec {
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Field `i`.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let &(a, b) = self.spans.get(i)?;
        Some(&self.bytes[a..b])
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.spans.iter().map(|&(a, b)| &self.bytes[a..b])
    }

    /// The record of `text`, a line without quotes and without its line
    /// end, which is line `line` of the file and starts at byte `offset`.
    pub fn set_line(&mut self, text: &[u8], line: usize, offset: u64) {
        self.bytes.clear();
        self.bytes.extend_from_slice(text);
        self.spans.clear();
        let mut a = 0;
        for comma in memchr::memchr_iter(b',', text) {
            self.spans.push((a, comma));
            a = comma + 1;
        }
        self.spans.push((a, text.len()));
        self.line = line;
        self.offset = offset;
    }
}

/// The most bytes of a [`Block`] (unless one line is longer): the loader
/// reports its progress after each.
pub const BLOCK: usize = 1 << 18;

/// Whole lines of a file, read on the fast path.
pub struct Block<'a> {
    pub bytes: &'a [u8],
    /// The 1-based line of the first line.
    pub line: usize,
    /// The file offset of `bytes[0]`.
    pub offset: u64,
}

/// What reading gave.
pub enum Next {
    Record,
    End,
    /// The fast path cannot read this file: start again with the csv crate.
    Fallback,
}

/// A CSV file's reader.
pub enum Reader {
    Fast(Fast),
    Csv(Box<csv::Reader<File>>, csv::ByteRecord),
}

impl Reader {
    pub fn new(file: File, fast: bool) -> Reader {
        if fast {
            Reader::Fast(Fast {
                file,
                buf: vec![0; 1 << 20],
                start: 0,
                end: 0,
                eof: false,
                first: true,
                line: 0,
                offset: 0,
            })
        } else {
            let reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .buffer_capacity(1 << 16)
                .from_reader(file);
            Reader::Csv(Box::new(reader), csv::ByteRecord::new())
        }
    }

    /// The next record into `rec`.
    pub fn read(&mut self, rec: &mut Rec, shown: &str) -> Result<Next, Error> {
        match self {
            Reader::Fast(f) => f.read(rec, shown),
            Reader::Csv(reader, record) => {
                if !reader
                    .read_byte_record(record)
                    .map_err(|e| csv_error(shown, &e))?
                {
                    return Ok(Next::End);
                }
                rec.bytes.clear();
                rec.spans.clear();
                for field in record.iter() {
                    let a = rec.bytes.len();
                    rec.bytes.extend_from_slice(field);
                    rec.spans.push((a, rec.bytes.len()));
                }
                let p = record.position();
                rec.line = p.map_or(0, |p| p.line() as usize);
                rec.offset = p.map_or(0, |p| p.byte());
                Ok(Next::Record)
            }
        }
    }
}

/// The fast path: lines split at `\n`, fields at `,`.
pub struct Fast {
    file: File,
    buf: Vec<u8>,
    /// The unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    eof: bool,
    /// Before the first read (a UTF-8 byte order mark is skipped, as the
    /// csv crate does).
    first: bool,
    /// Lines read so far.
    line: usize,
    /// The file offset of `buf[0]`.
    offset: u64,
}

impl Fast {
    fn read(&mut self, rec: &mut Rec, shown: &str) -> Result<Next, Error> {
        loop {
            let unread = &self.buf[self.start..self.end];
            let (len, next) = match memchr::memchr(b'\n', unread) {
                Some(i) => (i, i + 1),
                None if self.eof && unread.is_empty() => return Ok(Next::End),
                None if self.eof => (unread.len(), unread.len()),
                None => {
                    self.fill(shown)?;
                    continue;
                }
            };
            let at = self.start;
            self.start += next;
            self.line += 1;
            let mut line = &self.buf[at..at + len];
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            if memchr::memchr2(b'"', b'\r', line).is_some() {
                return Ok(Next::Fallback);
            }
            if line.is_empty() {
                continue;
            }
            rec.set_line(line, self.line, self.offset + at as u64);
            return Ok(Next::Record);
        }
    }

    /// The whole lines the buffer holds after the records read, up to
    /// [`BLOCK`] bytes unless a line is longer (at the end of the file, the
    /// last line may have no line end), refilled first when less than a
    /// block is left; `None` at the end of the file.
    pub fn block(&mut self, shown: &str) -> Result<Option<Block<'_>>, Error> {
        if !self.eof && self.start > 0 && self.end - self.start < BLOCK {
            self.fill(shown)?;
        }
        loop {
            let unread = &self.buf[self.start..self.end];
            let window = &unread[..unread.len().min(BLOCK)];
            let newline = memchr::memrchr(b'\n', window).or_else(|| memchr::memchr(b'\n', unread));
            let len = match newline {
                Some(i) => i + 1,
                None if self.eof && unread.is_empty() => return Ok(None),
                None if self.eof => unread.len(),
                None => {
                    self.fill(shown)?;
                    continue;
                }
            };
            let at = self.start;
            let bytes = &self.buf[at..at + len];
            let line = self.line + 1;
            self.line += memchr::memchr_iter(b'\n', bytes).count();
            if bytes.last() != Some(&b'\n') {
                self.line += 1;
            }
            self.start += len;
            return Ok(Some(Block {
                bytes,
                line,
                offset: self.offset + at as u64,
            }));
        }
    }

    /// Reads more of the file after the unread bytes (moved to the front;
    /// the buffer doubles for a line longer than it).
    fn fill(&mut self, shown: &str) -> Result<(), Error> {
        self.buf.copy_within(self.start..self.end, 0);
        self.offset += self.start as u64;
        self.end -= self.start;
        self.start = 0;
        if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = loop {
            match self.file.read(&mut self.buf[self.end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(Error::at(
                        Location::file(shown),
                        format!("cannot read the data file: {}", io_reason(&e)),
                    ))
                }
            }
        };
        self.end += n;
        self.eof = n == 0;
        if self.first && self.end >= 3 {
            self.first = false;
            if self.buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
                self.start = 3;
            }
        } else if self.eof {
            self.first = false;
        }
        Ok(())
    }
}

fn csv_error(shown: &str, e: &csv::Error) -> Error {
    let location = match e.position() {
        Some(p) => Location::line(shown, p.line() as usize),
        None => Location::file(shown),
    };
    let message = match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "the file is not valid UTF-8".to_string(),
        csv::ErrorKind::Io(io) => format!("cannot read the data file: {}", io_reason(io)),
        _ => format!("not a valid CSV file: {e}"),
    };
    Error::at(location, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::data::testing::TempDir;

    /// Every record of `text` read both ways: (line, offset, fields).
    fn records(text: &[u8], fast: bool) -> Option<Vec<(usize, u64, Vec<String>)>> {
        let d = TempDir::new(if fast { "records-fast" } else { "records-csv" });
        std::fs::write(d.path("r.csv"), text).unwrap();
        let mut r = Reader::new(File::open(d.path("r.csv")).unwrap(), fast);
        let mut rec = Rec::default();
        let mut out = Vec::new();
        loop {
            match r.read(&mut rec, "r.csv").unwrap() {
                Next::Record => out.push((
                    rec.line,
                    rec.offset,
                    rec.iter()
                        .map(|f| String::from_utf8_lossy(f).into_owned())
                        .collect(),
                )),
                Next::End => return Some(out),
                Next::Fallback => return None,
            }
        }
    }

    #[test]
    fn the_fast_path_reads_as_the_csv_crate_does() {
        let texts: &[&[u8]] = &[b"a,b,c\n1, 2 ,3\n4,,6\n   \n7,8", b"1\n2\n3\n", b""];
        for t in texts {
            let fast = records(t, true).expect("no fallback");
            assert_eq!(
                Some(fast),
                records(t, false),
                "{}",
                String::from_utf8_lossy(t)
            );
        }
        // After blank lines, and with `\r\n` line ends, the record's own
        // line and offset (the csv crate gives those of the line end before).
        assert_eq!(
            records(b"\n\n1,2\r\n\r\n3\n", true),
            Some(vec![
                (3, 2, vec!["1".to_string(), "2".to_string()]),
                (5, 9, vec!["3".to_string()])
            ])
        );
        // A byte order mark is skipped; the first record starts after it.
        assert_eq!(
            records(b"\xEF\xBB\xBFx\n1\n", true),
            Some(vec![
                (1, 3, vec!["x".to_string()]),
                (2, 5, vec!["1".to_string()])
            ])
        );
        assert!(records(b"a,b\n\"1,5\",2\n", true).is_none());
        assert!(records(b"a,b\r1,2\r", true).is_none());
    }
}
