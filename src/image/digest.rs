//! Content digests. A digest names files in the store, so it is validated
//! (algorithm and exact hex length) before anything uses it as a path.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::io::{self, Read};

/// `sha256:` followed by 64 lowercase hex digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    pub fn parse(s: &str) -> Result<Digest, super::Error> {
        match s.strip_prefix("sha256:") {
            Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) => {
                Ok(Digest(s.to_string()))
            }
            _ => Err(super::Error::Digest(s.to_string())),
        }
    }

    pub fn of(bytes: &[u8]) -> Digest {
        let mut h = Hasher::default();
        h.update(bytes);
        h.finish()
    }

    /// The 64 hex digits: a safe file name.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// The first 12 hex digits, as Docker shows ids.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Digest {
    type Error = super::Error;
    fn try_from(s: String) -> Result<Digest, super::Error> {
        Digest::parse(&s)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

/// A running sha256 and byte count.
#[derive(Default)]
pub struct Hasher {
    sha: Sha256,
    pub bytes: u64,
}

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        self.sha.update(data);
        self.bytes += data.len() as u64;
    }

    pub fn finish(self) -> Digest {
        Digest(format!("sha256:{}", hex::encode(self.sha.finalize())))
    }
}

/// Hashes everything read through it.
pub struct HashingReader<R> {
    inner: R,
    pub hasher: Hasher,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader { inner, hasher: Hasher::default() }
    }

    /// Reads what is left (a tar stream's padding, say) so the digest covers
    /// the whole stream.
    pub fn drain(&mut self) -> io::Result<()> {
        io::copy(self, &mut io::sink()).map(drop)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_sha256_digests_name_files() {
        let good = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(Digest::parse(&good).unwrap().hex(), "ab".repeat(32));
        for bad in ["sha256:../../etc", "sha256:ABCD", "md5:00", &format!("sha256:{}/", "a".repeat(63)), ""] {
            assert!(Digest::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Digest::of(b"").as_str(), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
