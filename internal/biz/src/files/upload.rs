//! The rules of one UploadFile stream: what each chunk must say, given what came before.
//!
//! [`UploadProgress`] is a plain state machine (no I/O) so every rule is unit-tested here; the
//! hub feeds it chunks and writes the bytes it accepts.

use bytes::Bytes;

use super::{Checksum, FileName, UploadId, UploadSession};
use crate::{Error, Result};

/// One chunk as the client sent it; the fields keep their wire types so the rules here can
/// name every bad value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadChunk {
    pub data: Bytes,
    pub chunk_number: i32,
    pub is_last: bool,
    pub offset: i64,
    pub checksum: String,
    pub file_name: String,
    pub upload_id: String,
    pub total_bytes: i64,
}

/// What the first chunk of a stream says about the whole upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadHeader {
    pub upload_id: Option<UploadId>,
    pub file_name: FileName,
    pub expected_size: Option<u64>,
    pub expected_sha256: Option<Checksum>,
}

impl UploadHeader {
    /// Reads the header from the stream's first chunk (`None`: the stream was empty, a valid
    /// zero-byte upload). `max_file_bytes` rejects a declared size over the limit at once.
    pub fn from_first(first: Option<&UploadChunk>, max_file_bytes: u64) -> Result<Self> {
        let Some(first) = first else {
            return Ok(Self {
                upload_id: None,
                file_name: FileName::default(),
                expected_size: None,
                expected_sha256: None,
            });
        };
        let upload_id = if first.upload_id.is_empty() {
            None
        } else {
            Some(UploadId::parse(&first.upload_id)?)
        };
        Ok(Self {
            upload_id,
            file_name: FileName::sanitise(&first.file_name)?,
            expected_size: declared_size(first, max_file_bytes)?,
            expected_sha256: declared_checksum(first)?,
        })
    }
}

fn declared_size(chunk: &UploadChunk, max_file_bytes: u64) -> Result<Option<u64>> {
    match u64::try_from(chunk.total_bytes) {
        Err(_) => Err(Error::InvalidFileField {
            field: "total_bytes",
            reason: format!(
                "chunk {} declares a negative size ({})",
                chunk.chunk_number, chunk.total_bytes
            ),
        }),
        Ok(0) => Ok(None),
        Ok(size) if size > max_file_bytes => Err(Error::FileTooLarge {
            limit: max_file_bytes,
        }),
        Ok(size) => Ok(Some(size)),
    }
}

fn declared_checksum(chunk: &UploadChunk) -> Result<Option<Checksum>> {
    if chunk.checksum.is_empty() {
        Ok(None)
    } else {
        Checksum::parse(&chunk.checksum).map(Some)
    }
}

/// Where one stream of an upload stands.
#[derive(Debug, Clone)]
pub struct UploadProgress {
    upload_id: Option<UploadId>,
    next_chunk: i64,
    /// Bytes of the file received so far, a resumed prefix included.
    position: u64,
    expected_size: Option<u64>,
    expected_sha256: Option<Checksum>,
    max_file_bytes: u64,
    /// A chunk with `is_last` arrived; nothing may follow it.
    ended: bool,
}

impl UploadProgress {
    /// A stream continuing `session` at its durable offset.
    pub fn new(session: &UploadSession, max_file_bytes: u64) -> Self {
        Self {
            upload_id: session.upload_id.clone(),
            next_chunk: 0,
            position: session.durable_offset,
            expected_size: session.expected_size,
            expected_sha256: session.expected_sha256.clone(),
            max_file_bytes,
            ended: false,
        }
    }

    /// Bytes of the file received so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The checksum the client declared, if any.
    pub fn expected_sha256(&self) -> Option<&Checksum> {
        self.expected_sha256.as_ref()
    }

    /// Checks `chunk` against the rules and, if it passes, counts its bytes in.
    ///
    /// Offsets: a resumable upload's chunks must each carry their byte `offset` (that is how a
    /// resumed stream proves it continues where the server stands); a one-shot upload may
    /// leave it 0, but a non-zero offset must be right.
    pub fn accept(&mut self, chunk: &UploadChunk) -> Result<()> {
        let number = chunk.chunk_number;
        if self.ended {
            return Err(Error::InvalidFileField {
                field: "is_last",
                reason: format!("chunk {number} arrived after the chunk marked is_last"),
            });
        }
        if i64::from(number) != self.next_chunk {
            return Err(Error::InvalidFileField {
                field: "chunk_number",
                reason: format!(
                    "expected {}, got {number} (chunks are numbered from 0 on every stream)",
                    self.next_chunk
                ),
            });
        }
        if !chunk.upload_id.is_empty()
            && self.upload_id.as_ref().map(UploadId::as_str) != Some(chunk.upload_id.as_str())
        {
            return Err(Error::InvalidFileField {
                field: "upload_id",
                reason: format!(
                    "chunk {number} names a different upload than the stream's first chunk"
                ),
            });
        }
        let offset = u64::try_from(chunk.offset).map_err(|_| Error::InvalidFileField {
            field: "offset",
            reason: format!("chunk {number} has a negative offset ({})", chunk.offset),
        })?;
        let offset_required = self.upload_id.is_some() || offset != 0;
        if offset_required && offset != self.position {
            return Err(Error::UploadOffsetMismatch {
                chunk: number,
                offset,
                expected: self.position,
            });
        }
        if let Some(size) = declared_size(chunk, self.max_file_bytes)? {
            match self.expected_size {
                None => self.expected_size = Some(size),
                Some(expected) if expected != size => {
                    return Err(Error::InvalidFileField {
                        field: "total_bytes",
                        reason: format!(
                            "chunk {number} declares {size} bytes, but {expected} were declared before"
                        ),
                    });
                }
                Some(_) => {}
            }
        }
        if let Some(checksum) = declared_checksum(chunk)? {
            match &self.expected_sha256 {
                None => self.expected_sha256 = Some(checksum),
                Some(expected) if *expected != checksum => {
                    return Err(Error::InvalidFileField {
                        field: "checksum",
                        reason: format!(
                            "chunk {number} declares a different checksum than was declared before"
                        ),
                    });
                }
                Some(_) => {}
            }
        }
        let end = self.position.saturating_add(chunk.data.len() as u64);
        if end > self.max_file_bytes {
            return Err(Error::FileTooLarge {
                limit: self.max_file_bytes,
            });
        }
        if let Some(declared) = self.expected_size
            && end > declared
        {
            return Err(Error::UploadSizeMismatch {
                declared,
                received: end,
            });
        }
        self.position = end;
        self.next_chunk += 1;
        self.ended = chunk.is_last;
        Ok(())
    }

    /// The client half-closed: checks that the declared size, if any, arrived.
    pub fn finish(&self) -> Result<()> {
        match self.expected_size {
            Some(declared) if declared != self.position => Err(Error::UploadSizeMismatch {
                declared,
                received: self.position,
            }),
            _ => Ok(()),
        }
    }

    /// Compares the computed digest with the declared one.
    pub fn verify(&self, computed: &Checksum) -> Result<()> {
        match &self.expected_sha256 {
            Some(expected) if expected != computed => Err(Error::ChecksumMismatch {
                expected: expected.as_str().to_owned(),
                computed: computed.as_str().to_owned(),
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::files::FileId;

    const MAX: u64 = 100;

    fn session(upload_id: Option<&str>, durable_offset: u64) -> UploadSession {
        UploadSession {
            file_id: FileId::generate(),
            upload_id: upload_id.map(|id| UploadId::parse(id).expect("valid")),
            file_name: FileName::default(),
            expected_size: None,
            expected_sha256: None,
            durable_offset,
            expires_at: SystemTime::now(),
        }
    }

    fn chunk(number: i32, offset: i64, data: &'static [u8]) -> UploadChunk {
        UploadChunk {
            data: Bytes::from_static(data),
            chunk_number: number,
            offset,
            ..UploadChunk::default()
        }
    }

    #[test]
    fn a_one_shot_upload_may_leave_offsets_out() {
        let mut progress = UploadProgress::new(&session(None, 0), MAX);
        progress.accept(&chunk(0, 0, b"abc")).expect("first");
        progress
            .accept(&chunk(1, 0, b"de"))
            .expect("offset 0 means not given");
        progress.accept(&chunk(2, 5, b"f")).expect("a right offset");
        let err = progress
            .accept(&chunk(3, 2, b"g"))
            .expect_err("wrong offset");
        assert!(
            matches!(
                err,
                Error::UploadOffsetMismatch {
                    chunk: 3,
                    offset: 2,
                    expected: 6
                }
            ),
            "{err}"
        );
        assert_eq!(progress.position(), 6);
    }

    #[test]
    fn a_resumed_stream_starts_at_the_durable_offset_and_numbers_from_zero() {
        let mut progress = UploadProgress::new(&session(Some("u1"), 10), MAX);
        let err = progress.accept(&chunk(0, 0, b"x")).expect_err("offset 0");
        assert!(err.to_string().contains("continues at byte 10"), "{err}");
        progress.accept(&chunk(0, 10, b"abc")).expect("resumes");
        let err = progress
            .accept(&chunk(1, 0, b"x"))
            .expect_err("offsets required");
        assert!(matches!(err, Error::UploadOffsetMismatch { .. }), "{err}");
        progress.accept(&chunk(1, 13, b"d")).expect("next");
        assert_eq!(progress.position(), 14);
    }

    #[test]
    fn chunk_numbers_must_be_consecutive() {
        let mut progress = UploadProgress::new(&session(None, 0), MAX);
        for (number, expected) in [(1, "expected 0, got 1"), (-1, "expected 0, got -1")] {
            let err = progress
                .accept(&chunk(number, 0, b""))
                .expect_err("out of order")
                .to_string();
            assert!(
                err.starts_with("chunk_number") && err.contains(expected),
                "{err}"
            );
        }
        progress.accept(&chunk(0, 0, b"")).expect("0");
        let err = progress.accept(&chunk(0, 0, b"")).expect_err("repeat");
        assert!(err.to_string().contains("expected 1, got 0"), "{err}");
    }

    #[test]
    fn nothing_may_follow_the_last_chunk() {
        let mut progress = UploadProgress::new(&session(None, 0), MAX);
        let mut last = chunk(0, 0, b"a");
        last.is_last = true;
        progress.accept(&last).expect("last");
        let err = progress.accept(&chunk(1, 0, b"b")).expect_err("after last");
        assert!(err.to_string().starts_with("is_last"), "{err}");
    }

    #[test]
    fn sizes_are_checked_against_the_limit_and_the_declaration() {
        let mut progress = UploadProgress::new(&session(None, 0), 4);
        progress
            .accept(&chunk(0, 0, b"abcd"))
            .expect("at the limit");
        let err = progress.accept(&chunk(1, 0, b"e")).expect_err("over");
        assert!(matches!(err, Error::FileTooLarge { limit: 4 }), "{err}");

        let mut declared = chunk(0, 0, b"ab");
        declared.total_bytes = 3;
        let mut progress = UploadProgress::new(&session(None, 0), MAX);
        progress.accept(&declared).expect("declares 3");
        assert!(matches!(
            progress.finish(),
            Err(Error::UploadSizeMismatch {
                declared: 3,
                received: 2
            })
        ));
        let err = progress.accept(&chunk(1, 0, b"cd")).expect_err("beyond");
        assert!(matches!(err, Error::UploadSizeMismatch { .. }), "{err}");

        let mut huge = chunk(0, 0, b"");
        huge.total_bytes = 101;
        let err = UploadProgress::new(&session(None, 0), MAX)
            .accept(&huge)
            .expect_err("declared over the limit");
        assert!(matches!(err, Error::FileTooLarge { .. }), "{err}");
        huge.total_bytes = -1;
        let err = UploadHeader::from_first(Some(&huge), MAX).expect_err("negative");
        assert!(err.to_string().starts_with("total_bytes"), "{err}");
    }

    #[test]
    fn a_declared_checksum_is_verified() {
        let mut progress = UploadProgress::new(&session(None, 0), MAX);
        let mut first = chunk(0, 0, b"a");
        first.checksum = "00".repeat(32);
        progress.accept(&first).expect("declares");
        let mut other = chunk(1, 0, b"b");
        other.checksum = "11".repeat(32);
        let err = progress.accept(&other).expect_err("conflicting");
        assert!(err.to_string().starts_with("checksum"), "{err}");
        let computed = Checksum::from_digest(&[1; 32]);
        assert!(matches!(
            progress.verify(&computed),
            Err(Error::ChecksumMismatch { .. })
        ));
        assert!(
            progress
                .verify(&Checksum::parse(&"00".repeat(32)).expect("valid"))
                .is_ok()
        );
    }

    #[test]
    fn the_header_comes_from_the_first_chunk() {
        let empty = UploadHeader::from_first(None, MAX).expect("empty stream");
        assert_eq!(empty.file_name.as_str(), "upload.bin");
        let mut first = chunk(0, 0, b"");
        first.upload_id = "bad id".into();
        let err = UploadHeader::from_first(Some(&first), MAX).expect_err("bad id");
        assert!(err.to_string().starts_with("upload_id"), "{err}");
        first.upload_id = "ok".into();
        first.file_name = "../x.txt".into();
        let header = UploadHeader::from_first(Some(&first), MAX).expect("valid");
        assert_eq!(header.file_name.as_str(), "x.txt");
        assert_eq!(header.upload_id.expect("set").as_str(), "ok");
    }
}
