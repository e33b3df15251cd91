//! The Dockerfile language, as Docker's reference documents it: parser
//! directives, comments, line continuations, here-documents, flags, the
//! exec (JSON) and shell forms (`parse`), and variable substitution
//! (`words`). Pure text in, typed instructions out; what they do to an
//! image is `build/`'s business.

mod parse;
pub mod words;

pub use parse::{parse, Args, Dockerfile, Flag, Heredoc, Instruction};

/// A Dockerfile that cannot be read, pointing at its line.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {instruction}{why}")]
pub struct SyntaxError {
    pub file: String,
    pub line: usize,
    /// `RUN: ` or empty when the line has no instruction yet.
    pub instruction: String,
    pub why: String,
}

/// The instructions Docker knows.
pub const KEYWORDS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];
