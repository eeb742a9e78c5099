//! The checksums S3 clients send with a body (`x-amz-checksum-*`), computed
//! as the body streams, and the combination of part CRCs into the CRC of
//! the whole object (S3's `FULL_OBJECT` checksum type).
//!
//! A CRC of `A || B` follows from `crc(A)`, `crc(B)` and `len(B)` alone, so
//! a multipart upload's full-object CRC64NVME is built from the part CRCs
//! without reading a byte again; SHA digests have no such property, which
//! is why they cost a second pass over the whole file.

use base64::Engine;
use crc_fast::CrcAlgorithm;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// The checksum algorithms of S3's `x-amz-checksum-*` headers and trailers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChecksumAlgorithm {
    /// CRC-32 (ISO-HDLC, as zlib): what current AWS SDKs send by default.
    Crc32,
    /// CRC-32C (Castagnoli, iSCSI).
    Crc32c,
    /// CRC-64/NVME: S3's default full-object checksum.
    Crc64Nvme,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
}

impl ChecksumAlgorithm {
    /// Every algorithm, in the order headers are looked for.
    pub const ALL: [ChecksumAlgorithm; 5] = [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ];

    /// The name S3 uses in `x-amz-checksum-algorithm` and error messages,
    /// e.g. `CRC64NVME`.
    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Crc64Nvme => "CRC64NVME",
            ChecksumAlgorithm::Sha1 => "SHA1",
            ChecksumAlgorithm::Sha256 => "SHA256",
        }
    }

    /// The header (or trailer) that carries the checksum, e.g.
    /// `x-amz-checksum-crc64nvme`.
    pub fn header_name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "x-amz-checksum-crc32",
            ChecksumAlgorithm::Crc32c => "x-amz-checksum-crc32c",
            ChecksumAlgorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            ChecksumAlgorithm::Sha1 => "x-amz-checksum-sha1",
            ChecksumAlgorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// Parses a name as S3 spells it, in any case (`crc32`, `CRC64NVME`).
    pub fn parse(name: &str) -> Option<ChecksumAlgorithm> {
        ChecksumAlgorithm::ALL
            .into_iter()
            .find(|algorithm| algorithm.name().eq_ignore_ascii_case(name))
    }

    /// The algorithm whose header is `header_name` (lowercase).
    pub fn from_header_name(header_name: &str) -> Option<ChecksumAlgorithm> {
        ChecksumAlgorithm::ALL
            .into_iter()
            .find(|algorithm| algorithm.header_name().eq_ignore_ascii_case(header_name))
    }

    /// Bytes of the digest.
    fn digest_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => 4,
            ChecksumAlgorithm::Crc64Nvme => 8,
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Sha256 => 32,
        }
    }
}

/// A checksum value: the digest bytes (a CRC big-endian, as S3 encodes it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checksum {
    algorithm: ChecksumAlgorithm,
    digest: Vec<u8>,
}

impl Checksum {
    /// The CRC64NVME checksum of this value.
    pub fn crc64nvme(value: u64) -> Checksum {
        Checksum {
            algorithm: ChecksumAlgorithm::Crc64Nvme,
            digest: value.to_be_bytes().to_vec(),
        }
    }

    /// Parses the base64 text of a header or trailer; `None` unless it is
    /// the base64 of exactly the algorithm's digest length.
    pub fn from_base64(algorithm: ChecksumAlgorithm, text: &str) -> Option<Checksum> {
        let digest = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()?;
        (digest.len() == algorithm.digest_len()).then_some(Checksum { algorithm, digest })
    }

    /// The algorithm.
    pub fn algorithm(&self) -> ChecksumAlgorithm {
        self.algorithm
    }

    /// The digest bytes (a CRC big-endian).
    pub fn digest(&self) -> &[u8] {
        &self.digest
    }

    /// The base64 text S3 puts in headers and XML.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.digest)
    }
}

/// A checksum computed over a body as it streams.
#[derive(Clone)]
pub struct Checksummer {
    state: ChecksummerState,
}

#[derive(Clone)]
enum ChecksummerState {
    Crc(ChecksumAlgorithm, crc_fast::Digest),
    Sha1(Sha1),
    Sha256(Sha256),
}

impl Checksummer {
    /// Starts a checksum of `algorithm` over no bytes.
    pub fn new(algorithm: ChecksumAlgorithm) -> Checksummer {
        let state = match algorithm {
            ChecksumAlgorithm::Crc32 => {
                ChecksummerState::Crc(algorithm, crc_fast::Digest::new(CrcAlgorithm::Crc32IsoHdlc))
            }
            ChecksumAlgorithm::Crc32c => {
                ChecksummerState::Crc(algorithm, crc_fast::Digest::new(CrcAlgorithm::Crc32Iscsi))
            }
            ChecksumAlgorithm::Crc64Nvme => {
                ChecksummerState::Crc(algorithm, crc_fast::Digest::new(CrcAlgorithm::Crc64Nvme))
            }
            ChecksumAlgorithm::Sha1 => ChecksummerState::Sha1(Sha1::new()),
            ChecksumAlgorithm::Sha256 => ChecksummerState::Sha256(Sha256::new()),
        };
        Checksummer { state }
    }

    /// Feeds the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.state {
            ChecksummerState::Crc(_, digest) => digest.update(bytes),
            ChecksummerState::Sha1(sha1) => sha1.update(bytes),
            ChecksummerState::Sha256(sha256) => sha256.update(bytes),
        }
    }

    /// The checksum of every byte fed.
    pub fn finish(&self) -> Checksum {
        match &self.state {
            ChecksummerState::Crc(algorithm, digest) => {
                let value = digest.finalize();
                let digest = match algorithm {
                    ChecksumAlgorithm::Crc64Nvme => value.to_be_bytes().to_vec(),
                    // CRC-32 values are the low 32 bits.
                    _ => (value as u32).to_be_bytes().to_vec(),
                };
                Checksum {
                    algorithm: *algorithm,
                    digest,
                }
            }
            ChecksummerState::Sha1(sha1) => Checksum {
                algorithm: ChecksumAlgorithm::Sha1,
                digest: sha1.clone().finalize().to_vec(),
            },
            ChecksummerState::Sha256(sha256) => Checksum {
                algorithm: ChecksumAlgorithm::Sha256,
                digest: sha256.clone().finalize().to_vec(),
            },
        }
    }
}

/// The CRC64NVME of `bytes`.
pub fn crc64nvme(bytes: &[u8]) -> u64 {
    crc_fast::checksum(CrcAlgorithm::Crc64Nvme, bytes)
}

/// The CRC64NVME of `A || B` from `crc64nvme(A)`, `crc64nvme(B)` and the
/// length of `B`, without the bytes.
pub fn combine_crc64nvme(first: u64, second: u64, second_len: u64) -> u64 {
    crc_fast::checksum_combine(CrcAlgorithm::Crc64Nvme, first, second, second_len)
}

/// The full-object CRC64NVME of parts given in order as `(crc, length)`.
pub fn full_object_crc64nvme(parts: impl IntoIterator<Item = (u64, u64)>) -> u64 {
    parts
        .into_iter()
        .fold(crc64nvme(&[]), |whole, (part_crc, part_len)| {
            combine_crc64nvme(whole, part_crc, part_len)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(algorithm: ChecksumAlgorithm, bytes: &[u8], expected_hex: &str) {
        let mut checksummer = Checksummer::new(algorithm);
        // Fed in uneven pieces, as a body streams.
        for piece in bytes.chunks(3) {
            checksummer.update(piece);
        }
        let checksum = checksummer.finish();
        let digest = base64::engine::general_purpose::STANDARD
            .decode(checksum.to_base64())
            .expect("base64 of the digest");
        assert_eq!(hex::encode(digest), expected_hex, "{}", algorithm.name());
        assert_eq!(
            Checksum::from_base64(algorithm, &checksum.to_base64()),
            Some(checksum)
        );
    }

    #[test]
    fn every_algorithm_matches_its_check_value() {
        // The catalogue's check values (CRC RevEng) over "123456789", and
        // the FIPS 180 digests of the same string.
        check(ChecksumAlgorithm::Crc32, b"123456789", "cbf43926");
        check(ChecksumAlgorithm::Crc32c, b"123456789", "e3069283");
        check(
            ChecksumAlgorithm::Crc64Nvme,
            b"123456789",
            "ae8b14860a799888",
        );
        check(
            ChecksumAlgorithm::Sha1,
            b"123456789",
            "f7c3bc1d808e04732adf679965ccc34ca7ae3441",
        );
        check(
            ChecksumAlgorithm::Sha256,
            b"123456789",
            "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225",
        );
        assert_eq!(crc64nvme(b"123456789"), 0xae8b_1486_0a79_9888);
    }

    #[test]
    fn combined_part_crcs_equal_the_whole_buffers_crc() {
        let bytes: Vec<u8> = (0..100_003u32)
            .map(|index| (index.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let whole = crc64nvme(&bytes);
        for part_size in [1usize, 7, 4096, 33_333, 100_003, 200_000] {
            let parts = bytes
                .chunks(part_size)
                .map(|part| (crc64nvme(part), part.len() as u64));
            assert_eq!(full_object_crc64nvme(parts), whole, "parts of {part_size}");
        }
        assert_eq!(
            combine_crc64nvme(crc64nvme(b"1234"), crc64nvme(b"56789"), 5),
            0xae8b_1486_0a79_9888
        );
        // A changed byte in one part changes the whole.
        let mut altered = bytes.clone();
        altered[50_000] ^= 1;
        let parts = altered
            .chunks(4096)
            .map(|part| (crc64nvme(part), part.len() as u64));
        assert_ne!(full_object_crc64nvme(parts), whole);
        assert_eq!(full_object_crc64nvme([]), crc64nvme(&[]));
    }

    #[test]
    fn names_and_headers_parse_in_any_case() {
        assert_eq!(
            ChecksumAlgorithm::parse("crc64nvme"),
            Some(ChecksumAlgorithm::Crc64Nvme)
        );
        assert_eq!(
            ChecksumAlgorithm::from_header_name("X-Amz-Checksum-Crc32"),
            Some(ChecksumAlgorithm::Crc32)
        );
        assert_eq!(ChecksumAlgorithm::parse("md5"), None);
        // A CRC32 value must be 4 bytes, not 8.
        assert_eq!(
            Checksum::from_base64(ChecksumAlgorithm::Crc32, "rosUhgp5mIg="),
            None
        );
        assert_eq!(
            Checksum::from_base64(ChecksumAlgorithm::Crc32, "not base64!"),
            None
        );
    }
}
