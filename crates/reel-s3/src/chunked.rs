//! The `aws-chunked` content encoding of bodies sent with
//! `x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER`, as current
//! AWS SDKs send uploads over TLS so that the checksum can follow the data
//! in a trailer:
//!
//! ```text
//! 2000\r\n<0x2000 bytes>\r\n … 0\r\nx-amz-checksum-crc32:sOO8/Q==\r\n\r\n
//! ```
//!
//! Each chunk is a hex size (an optional `;extension` is ignored; unsigned
//! chunks carry no signature), CRLF, the data and CRLF; a zero-size chunk
//! ends the data and is followed by trailer lines and an empty line.

use axum::body::Bytes;

use crate::error::{S3Error, S3ErrorKind};

/// The longest chunk-size or trailer line accepted.
const MAX_LINE_BYTES: usize = 4096;
/// The most trailer lines accepted.
const MAX_TRAILERS: usize = 16;

/// Decodes an aws-chunked body fed in arbitrary pieces.
#[derive(Debug, Default)]
pub(crate) struct ChunkedDecoder {
    state: State,
    /// The line being read (a chunk size or a trailer).
    line: Vec<u8>,
    trailers: Vec<(String, String)>,
}

#[derive(Debug, Default)]
enum State {
    /// Reading a chunk-size line.
    #[default]
    Size,
    /// Inside a chunk's data, with this many bytes left.
    Data(u64),
    /// After a chunk's data: its CRLF (bytes of it seen).
    DataEnd(u8),
    /// Reading trailer lines after the last chunk.
    Trailers,
    /// The empty line after the trailers was read.
    Done,
}

impl ChunkedDecoder {
    /// The data bytes in `input`, in order (slices of it, no copy).
    pub(crate) fn feed(&mut self, input: Bytes) -> Result<Vec<Bytes>, S3Error> {
        let mut data = Vec::new();
        let mut position = 0;
        while position < input.len() {
            match self.state {
                State::Size | State::Trailers => {
                    let byte = input[position];
                    position += 1;
                    if byte != b'\n' {
                        if self.line.len() >= MAX_LINE_BYTES {
                            return Err(malformed("a chunk-size or trailer line is too long"));
                        }
                        self.line.push(byte);
                        continue;
                    }
                    let line = std::mem::take(&mut self.line);
                    let line = line.strip_suffix(b"\r").unwrap_or(&line);
                    self.end_line(line)?;
                }
                State::Data(remaining) => {
                    let available = (input.len() - position) as u64;
                    let taken = remaining.min(available) as usize;
                    data.push(input.slice(position..position + taken));
                    position += taken;
                    let left = remaining - taken as u64;
                    self.state = if left == 0 {
                        State::DataEnd(0)
                    } else {
                        State::Data(left)
                    };
                }
                State::DataEnd(seen) => {
                    let expected = if seen == 0 { b'\r' } else { b'\n' };
                    if input[position] != expected {
                        return Err(malformed("a chunk's data is not followed by CRLF"));
                    }
                    position += 1;
                    self.state = if seen == 0 {
                        State::DataEnd(1)
                    } else {
                        State::Size
                    };
                }
                State::Done => return Err(malformed("bytes follow the end of the body")),
            }
        }
        Ok(data)
    }

    fn end_line(&mut self, line: &[u8]) -> Result<(), S3Error> {
        match self.state {
            State::Size => {
                let text =
                    std::str::from_utf8(line).map_err(|_| malformed("a chunk size is not text"))?;
                let size_text = text.split(';').next().unwrap_or("").trim();
                let size = u64::from_str_radix(size_text, 16)
                    .map_err(|_| malformed("a chunk size is not a hex number"))?;
                self.state = if size == 0 {
                    State::Trailers
                } else {
                    State::Data(size)
                };
            }
            State::Trailers if line.is_empty() => self.state = State::Done,
            State::Trailers => {
                if self.trailers.len() >= MAX_TRAILERS {
                    return Err(malformed("too many trailers"));
                }
                let text =
                    std::str::from_utf8(line).map_err(|_| malformed("a trailer is not text"))?;
                let (name, value) = text
                    .split_once(':')
                    .ok_or_else(|| malformed("a trailer has no ':'"))?;
                self.trailers
                    .push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
            State::Data(_) | State::DataEnd(_) | State::Done => {}
        }
        Ok(())
    }

    /// The trailers, once the whole body was fed; an error if it stopped
    /// before its end.
    pub(crate) fn finish(self) -> Result<Vec<(String, String)>, S3Error> {
        match self.state {
            State::Done => Ok(self.trailers),
            // SDKs end with "0\r\n<trailers>\r\n\r\n"; a body that ends right
            // after its trailer lines' last CRLF is accepted as well.
            State::Trailers if self.line.is_empty() => Ok(self.trailers),
            _ => Err(S3Error::new(
                S3ErrorKind::IncompleteBody,
                "the aws-chunked body ended before its last chunk",
            )),
        }
    }
}

fn malformed(what: &str) -> S3Error {
    S3Error::new(
        S3ErrorKind::InvalidRequest,
        format!("the aws-chunked body is malformed: {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The data and trailers of a decoded body.
    type Decoded = (Vec<u8>, Vec<(String, String)>);

    /// Feeds `body` in pieces of `piece` bytes; returns the data and trailers.
    fn check(body: &[u8], piece: usize) -> Result<Decoded, S3ErrorKind> {
        let mut decoder = ChunkedDecoder::default();
        let mut data = Vec::new();
        for part in body.chunks(piece) {
            for bytes in decoder
                .feed(Bytes::copy_from_slice(part))
                .map_err(|error| error.kind)?
            {
                data.extend_from_slice(&bytes);
            }
        }
        let trailers = decoder.finish().map_err(|error| error.kind)?;
        Ok((data, trailers))
    }

    #[test]
    fn decodes_chunks_and_trailers_fed_in_any_pieces() {
        let body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
        for piece in [1, 2, 3, 7, body.len()] {
            let (data, trailers) = check(body, piece).expect("decodes");
            assert_eq!(data, b"hello world");
            assert_eq!(
                trailers,
                vec![("x-amz-checksum-crc32".to_string(), "DUoRhQ==".to_string())]
            );
        }
    }

    #[test]
    fn refuses_truncated_and_malformed_bodies() {
        assert_eq!(check(b"5\r\nhel", 4), Err(S3ErrorKind::IncompleteBody));
        assert_eq!(
            check(b"zz\r\nhello\r\n0\r\n\r\n", 4),
            Err(S3ErrorKind::InvalidRequest)
        );
        assert_eq!(
            check(b"5\r\nhelloXX0\r\n\r\n", 4),
            Err(S3ErrorKind::InvalidRequest)
        );
        assert_eq!(check(b"0\r\n\r\nmore", 4), Err(S3ErrorKind::InvalidRequest));
        let long_line = vec![b'1'; MAX_LINE_BYTES + 1];
        assert_eq!(check(&long_line, 64), Err(S3ErrorKind::InvalidRequest));
    }
}
