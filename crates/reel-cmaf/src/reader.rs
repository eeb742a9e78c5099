//! Bounds-checked big-endian reads and ISO BMFF box headers over byte slices.
//!
//! Everything here works on borrowed slices and never allocates except to
//! format an error. Offsets in errors are absolute byte positions in the
//! buffer handed to the public entry point, so a message can be checked
//! against a hex dump.

use std::fmt;

use crate::CmafError;

/// A four-character box type.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct FourCc(pub(crate) [u8; 4]);

impl FourCc {
    pub(crate) fn is(self, name: &[u8; 4]) -> bool {
        self.0 == *name
    }
}

impl fmt::Display for FourCc {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &byte in &self.0 {
            if byte.is_ascii_graphic() || byte == b' ' {
                write!(formatter, "{}", byte as char)?;
            } else {
                write!(formatter, "\\x{byte:02x}")?;
            }
        }
        Ok(())
    }
}

/// One box inside a parent slice: its type, where it starts and its bytes.
#[derive(Clone, Copy)]
pub(crate) struct BoxRef<'a> {
    pub(crate) box_type: FourCc,
    /// Absolute offset of the box's first header byte.
    pub(crate) offset: u64,
    /// Offset of the box's first byte inside the slice it was read from.
    pub(crate) start: usize,
    pub(crate) header_len: usize,
    /// The whole box, header included.
    pub(crate) data: &'a [u8],
}

impl<'a> BoxRef<'a> {
    /// Offset one past the box's last byte inside the slice it was read from.
    pub(crate) fn end(&self) -> usize {
        self.start + self.data.len()
    }

    pub(crate) fn payload(&self) -> &'a [u8] {
        &self.data[self.header_len..]
    }

    pub(crate) fn payload_offset(&self) -> u64 {
        self.offset + self.header_len as u64
    }

    pub(crate) fn reader(&self) -> Reader<'a> {
        Reader {
            data: self.payload(),
            pos: 0,
            box_type: self.box_type,
            offset: self.payload_offset(),
        }
    }

    pub(crate) fn children(&self) -> Boxes<'a> {
        Boxes::new(self.payload(), self.payload_offset())
    }

    /// The first child of type `name`, or a `MissingBox` error.
    pub(crate) fn require_child(&self, name: &'static [u8; 4]) -> Result<BoxRef<'a>, CmafError> {
        for child in self.children() {
            let child = child?;
            if child.box_type.is(name) {
                return Ok(child);
            }
        }
        Err(CmafError::MissingBox {
            box_type: FourCc(*name).to_string(),
            parent: self.box_type.to_string(),
            offset: self.offset,
        })
    }

    pub(crate) fn malformed(&self, reason: String) -> CmafError {
        CmafError::Malformed {
            box_type: self.box_type.to_string(),
            offset: self.offset,
            reason,
        }
    }
}

/// Iterates over the boxes laid end to end in a slice.
///
/// After the first error the iterator is exhausted, so `for box in boxes`
/// with `?` stops at the first malformed header.
pub(crate) struct Boxes<'a> {
    data: &'a [u8],
    pos: usize,
    base_offset: u64,
}

impl<'a> Boxes<'a> {
    pub(crate) fn new(data: &'a [u8], base_offset: u64) -> Boxes<'a> {
        Boxes {
            data,
            pos: 0,
            base_offset,
        }
    }

    fn read_header(&self) -> Result<BoxRef<'a>, CmafError> {
        let rest = &self.data[self.pos..];
        let offset = self.base_offset + self.pos as u64;
        let malformed = |box_type: String, reason: String| CmafError::Malformed {
            box_type,
            offset,
            reason,
        };
        if rest.len() < 8 {
            return Err(malformed(
                "?".to_string(),
                format!("box header needs 8 bytes, {} remain", rest.len()),
            ));
        }
        let size32 = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let box_type = FourCc([rest[4], rest[5], rest[6], rest[7]]);
        let (size, mut header_len) = match size32 {
            // ISO/IEC 14496-12 4.2: size 0 means the box extends to the end of its container.
            0 => (rest.len() as u64, 8usize),
            1 => {
                if rest.len() < 16 {
                    return Err(malformed(
                        box_type.to_string(),
                        format!(
                            "64-bit box size needs 16 header bytes, {} remain",
                            rest.len()
                        ),
                    ));
                }
                let mut large = [0u8; 8];
                large.copy_from_slice(&rest[8..16]);
                (u64::from_be_bytes(large), 16)
            }
            size => (u64::from(size), 8),
        };
        if box_type.is(b"uuid") {
            header_len += 16;
        }
        if size < header_len as u64 {
            return Err(malformed(
                box_type.to_string(),
                format!("box size {size} is smaller than its {header_len}-byte header"),
            ));
        }
        if size > rest.len() as u64 {
            return Err(malformed(
                box_type.to_string(),
                format!(
                    "box size {size} runs past the end: {} bytes remain",
                    rest.len()
                ),
            ));
        }
        let size = size as usize;
        Ok(BoxRef {
            box_type,
            offset,
            start: self.pos,
            header_len,
            data: &rest[..size],
        })
    }
}

impl<'a> Iterator for Boxes<'a> {
    type Item = Result<BoxRef<'a>, CmafError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.data.len() {
            return None;
        }
        match self.read_header() {
            Ok(found) => {
                self.pos += found.data.len();
                Some(Ok(found))
            }
            Err(error) => {
                self.pos = self.data.len();
                Some(Err(error))
            }
        }
    }
}

/// A cursor over one box's payload.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    box_type: FourCc,
    offset: u64,
}

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8], CmafError> {
        let remaining = self.data.len() - self.pos;
        if remaining < len {
            return Err(self.error(format!(
                "needs {len} more bytes at payload byte {}, {remaining} remain",
                self.pos
            )));
        }
        let bytes = &self.data[self.pos..self.pos + len];
        self.pos += len;
        Ok(bytes)
    }

    pub(crate) fn skip(&mut self, len: usize) -> Result<(), CmafError> {
        self.take(len).map(|_| ())
    }

    pub(crate) fn u8(&mut self) -> Result<u8, CmafError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, CmafError> {
        let bytes = self.take(2)?;
        Ok(u16::from_be_bytes([bytes[0], bytes[1]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, CmafError> {
        let bytes = self.take(4)?;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, CmafError> {
        let bytes = self.take(8)?;
        let mut array = [0u8; 8];
        array.copy_from_slice(bytes);
        Ok(u64::from_be_bytes(array))
    }

    /// Reads a full box's version and 24-bit flags.
    pub(crate) fn version_and_flags(&mut self) -> Result<(u8, u32), CmafError> {
        let word = self.u32()?;
        Ok(((word >> 24) as u8, word & 0x00ff_ffff))
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// The unread part of the payload.
    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.data[self.pos..]
    }

    /// Absolute offset of the next unread byte.
    pub(crate) fn absolute_position(&self) -> u64 {
        self.offset + self.pos as u64
    }

    pub(crate) fn error(&self, reason: String) -> CmafError {
        CmafError::Malformed {
            box_type: self.box_type.to_string(),
            offset: self.offset,
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(data: &[u8]) -> Vec<Result<(String, usize, usize), CmafError>> {
        Boxes::new(data, 0)
            .map(|found| {
                found.map(|found| {
                    (
                        found.box_type.to_string(),
                        found.header_len,
                        found.data.len(),
                    )
                })
            })
            .collect()
    }

    #[test]
    fn reads_plain_large_and_open_ended_boxes() {
        let mut data = Vec::new();
        data.extend_from_slice(&[0, 0, 0, 10, b'f', b'r', b'e', b'e', 1, 2]);
        data.extend_from_slice(&[
            0, 0, 0, 1, b'm', b'd', b'a', b't', 0, 0, 0, 0, 0, 0, 0, 18, 7, 7,
        ]);
        data.extend_from_slice(&[0, 0, 0, 0, b's', b'k', b'i', b'p', 1, 2, 3]);
        let found = collect(&data);
        assert_eq!(
            found.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
            vec![
                ("free".to_string(), 8, 10),
                ("mdat".to_string(), 16, 18),
                ("skip".to_string(), 8, 11),
            ]
        );
    }

    #[test]
    fn rejects_bad_sizes_without_panicking() {
        let cases: [&[u8]; 5] = [
            &[0, 0, 0, 4, b'f', b'r', b'e', b'e'],
            &[0, 0, 0, 20, b'f', b'r', b'e', b'e'],
            &[0, 0, 0, 1, b'm', b'd', b'a', b't', 0, 0],
            &[0, 0, 0, 1, b'm', b'd', b'a', b't', 0, 0, 0, 0, 0, 0, 0, 8],
            &[0, 0, 0],
        ];
        for case in cases {
            let found = collect(case);
            assert_eq!(found.len(), 1, "{case:?}");
            assert!(found[0].is_err(), "{case:?}");
        }
        let error = collect(&[0, 0, 0, 20, b'f', b'r', b'e', b'e'])
            .remove(0)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "malformed \"free\" box at byte 0: box size 20 runs past the end: 8 bytes remain"
        );
    }
}
