//! A container's output log, in the CRI format podman and Kubernetes use:
//! one line per record, `TIME STREAM F|P TEXT`, where `P` marks part of a
//! line (the text goes on in the next record) and `F` its end. The monitor
//! writes it; `hutch logs` reads it. When the file passes its size cap it
//! becomes `NAME.1` (replacing the older one) and a new file starts.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub const FILE: &str = "ctr.log";
/// The cap without `--log-opt max-size`: two files of it at most.
pub const DEFAULT_MAX_SIZE: u64 = 10 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// The monitor's end.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
}

impl LogWriter {
    pub fn open(path: &Path, max_size: u64) -> std::io::Result<LogWriter> {
        let file = OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter { path: path.to_path_buf(), file, size, max_size: max_size.max(4096) })
    }

    /// Records what one read of `stream` returned.
    pub fn write(&mut self, stream: Stream, bytes: &[u8]) -> std::io::Result<()> {
        let time = crate::image::time::rfc3339_nanos_now();
        let mut out = Vec::with_capacity(bytes.len() + 64);
        let mut rest = bytes;
        while !rest.is_empty() {
            let (line, tag, next) = match rest.iter().position(|&b| b == b'\n') {
                Some(end) => (&rest[..end], 'F', &rest[end + 1..]),
                None => (rest, 'P', &rest[rest.len()..]),
            };
            out.extend_from_slice(format!("{time} {} {tag} ", stream.name()).as_bytes());
            out.extend_from_slice(line);
            out.push(b'\n');
            rest = next;
        }
        if self.size > 0 && self.size + out.len() as u64 > self.max_size {
            self.rotate()?;
        }
        self.file.write_all(&out)?;
        self.size += out.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        fs::rename(&self.path, rotated(&self.path))?;
        *self = LogWriter::open(&self.path, self.max_size)?;
        Ok(())
    }
}

fn rotated(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

/// One record of the log.
#[derive(Debug, PartialEq, Eq)]
pub struct Record {
    pub time: String,
    pub stream: Stream,
    /// The text, with its newline when the record ends a line.
    pub text: Vec<u8>,
}

fn parse(line: &[u8]) -> Option<Record> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let mut parts = line.splitn(4, |&b| b == b' ');
    let time = String::from_utf8_lossy(parts.next()?).into_owned();
    let stream = match parts.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    let tag = parts.next()?;
    let mut text = parts.next().unwrap_or_default().to_vec();
    if tag == b"F" {
        text.push(b'\n');
    }
    Some(Record { time, stream, text })
}

/// Reads a container's log: what is there, then (to follow) what comes.
pub struct LogReader {
    path: PathBuf,
    reader: Option<BufReader<File>>,
    inode: u64,
}

impl LogReader {
    pub fn new(path: &Path) -> LogReader {
        LogReader { path: path.to_path_buf(), reader: None, inode: 0 }
    }

    /// Every record kept so far (the rotated file first).
    pub fn existing(&mut self) -> std::io::Result<Vec<Record>> {
        let mut records = Vec::new();
        if let Ok(old) = File::open(rotated(&self.path)) {
            read_records(&mut BufReader::new(old), &mut records)?;
        }
        self.reopen()?;
        self.more(&mut records)?;
        Ok(records)
    }

    /// Records written since the last call; follows a rotation.
    pub fn next_records(&mut self) -> std::io::Result<Vec<Record>> {
        let mut records = Vec::new();
        self.more(&mut records)?;
        let rotated_away = fs::metadata(&self.path).is_ok_and(|m| m.ino() != self.inode);
        if rotated_away {
            self.reopen()?;
            self.more(&mut records)?;
        }
        Ok(records)
    }

    fn reopen(&mut self) -> std::io::Result<()> {
        match File::open(&self.path) {
            Ok(file) => {
                self.inode = file.metadata()?.ino();
                self.reader = Some(BufReader::new(file));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.reader = None,
            Err(e) => return Err(e),
        }
        Ok(())
    }

    fn more(&mut self, records: &mut Vec<Record>) -> std::io::Result<()> {
        if self.reader.is_none() {
            self.reopen()?;
        }
        match &mut self.reader {
            Some(reader) => read_records(reader, records),
            None => Ok(()),
        }
    }
}

/// Whole lines only: a line still being written is read again next time.
fn read_records(reader: &mut BufReader<File>, records: &mut Vec<Record>) -> std::io::Result<()> {
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        if !line.ends_with(b"\n") {
            reader.seek(SeekFrom::Current(-i64::try_from(n).unwrap_or(i64::MAX)))?;
            return Ok(());
        }
        records.extend(parse(&line));
    }
}

/// The records of the last `n` lines (a line may span several records).
pub fn tail(records: Vec<Record>, n: usize) -> Vec<Record> {
    let mut lines = 0;
    let mut start = records.len();
    for (i, r) in records.iter().enumerate().rev() {
        if r.text.ends_with(b"\n") {
            if lines == n {
                break;
            }
            lines += 1;
        }
        start = i;
    }
    records.into_iter().skip(start).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_log(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hutch-log-test-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir.join(FILE)
    }

    fn text(records: &[Record]) -> String {
        records.iter().map(|r| String::from_utf8_lossy(&r.text).into_owned()).collect()
    }

    #[test]
    fn lines_and_partial_lines_round_trip() {
        let path = temp_log("round");
        let mut w = LogWriter::open(&path, DEFAULT_MAX_SIZE).unwrap();
        w.write(Stream::Stdout, b"one\ntw").unwrap();
        w.write(Stream::Stderr, b"err\n").unwrap();
        w.write(Stream::Stdout, b"o\n").unwrap();
        let mut r = LogReader::new(&path);
        let records = r.existing().unwrap();
        assert_eq!(text(&records), "one\ntwerr\no\n");
        assert_eq!(records[2].stream, Stream::Stderr);
        assert_eq!(text(&tail(records, 1)), "o\n");
        w.write(Stream::Stdout, b"later\n").unwrap();
        assert_eq!(text(&r.next_records().unwrap()), "later\n");
    }

    #[test]
    fn the_log_rotates_at_its_cap_and_readers_see_both_files() {
        let path = temp_log("rotate");
        let mut w = LogWriter::open(&path, 4096).unwrap();
        let mut r = LogReader::new(&path);
        for i in 0..100 {
            w.write(Stream::Stdout, format!("line {i:03} {}\n", "x".repeat(40)).as_bytes()).unwrap();
        }
        assert!(fs::metadata(&path).unwrap().len() <= 4096);
        assert!(rotated(&path).exists());
        let all = r.existing().unwrap();
        assert!(text(&all).ends_with(&format!("line 099 {}\n", "x".repeat(40))));
        w.write(Stream::Stdout, &vec![b'y'; 4000]).unwrap();
        w.write(Stream::Stdout, b"\nafter rotation\n").unwrap();
        assert!(text(&r.next_records().unwrap()).ends_with("after rotation\n"));
    }
}
