//! Uploads with a fixed part layout on the local file system: each part is
//! written straight into one assembly file at its offset, and completing the
//! upload renames that file into place.
//!
//! Joining parts stored as separate objects writes every byte twice, and on
//! a local disk that second write is most of an upload's time. When reel's
//! own API starts an upload it knows the total size and the part size, so
//! part `n` belongs at `(n - 1) × part_size`; the endpoint then writes the
//! part where it belongs as it streams in, and completion costs one hash
//! pass over the (page-cached) file and a rename.
//!
//! Part records keep their meaning: a part is stored when its record exists.
//! A part's record is deleted before its region is rewritten, so a refused
//! or interrupted rewrite shows as a missing part, never as a stored part
//! whose bytes changed. Part writes and completion exclude each other with
//! a per-upload lock held in this process (the local store belongs to one
//! machine; see ARCHITECTURE.md).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use md5::{Digest, Md5};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio::sync::RwLock;

use crate::error::{S3Error, S3ErrorKind};
use crate::layout::{PartNumber, PartRecord, UploadId};

/// The object name of the assembly file inside an upload's prefix.
const ASSEMBLY_NAME: &str = "assembly";
/// Bytes read and hashed at a time at completion.
const HASH_BLOCK_BYTES: usize = 8 << 20;

/// The part layout of an upload whose total size is known at creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FixedLayout {
    /// Bytes of every part but the last.
    pub(crate) part_size: u64,
    /// Bytes of the whole object.
    pub(crate) total_size: u64,
}

impl FixedLayout {
    /// A layout with at least one part and at most 10,000.
    pub(crate) fn new(part_size: u64, total_size: u64) -> Option<FixedLayout> {
        if part_size == 0 || total_size == 0 {
            return None;
        }
        let layout = FixedLayout {
            part_size,
            total_size,
        };
        (layout.n_parts() <= u64::from(PartNumber::MAX)).then_some(layout)
    }

    pub(crate) fn n_parts(&self) -> u64 {
        self.total_size.div_ceil(self.part_size)
    }

    /// Where part `n` starts and how long it must be; `None` past the end.
    pub(crate) fn span(&self, part_number: PartNumber) -> Option<(u64, u64)> {
        let index = u64::from(part_number.get()) - 1;
        let offset = index.checked_mul(self.part_size)?;
        (offset < self.total_size).then(|| (offset, self.part_size.min(self.total_size - offset)))
    }

    /// The error for a part that does not fit the layout.
    pub(crate) fn misfit(&self, part_number: PartNumber, size: Option<u64>) -> S3Error {
        let expected = match self.span(part_number) {
            Some((_, length)) => format!("{length} bytes"),
            None => "no such part".to_string(),
        };
        S3Error::new(
            S3ErrorKind::InvalidArgument,
            format!(
                "this upload takes parts 1 to {} of {} bytes (the last one shorter), {} bytes in all; part {} must be {expected}{}",
                self.n_parts(),
                self.part_size,
                self.total_size,
                part_number.get(),
                size.map(|size| format!(", not {size}")).unwrap_or_default(),
            ),
        )
    }
}

/// The local store's files, and the per-upload locks and running hashes of
/// in-place uploads.
#[derive(Clone, Debug)]
pub(crate) struct LocalFiles {
    store: Arc<LocalFileSystem>,
    locks: Arc<Mutex<HashMap<String, Arc<RwLock<()>>>>>,
    hashes: Arc<Mutex<HashMap<String, PrefixHash>>>,
}

/// The SHA-256 of an upload's first parts, advanced as parts arrive so that
/// completion hashes only what is left.
///
/// A rewrite of a part at or below the hashed prefix (or of the part being
/// hashed) bumps `generation` and starts the hash over; a part hashed under
/// an older generation is discarded.
#[derive(Clone, Debug, Default)]
struct PrefixHash {
    /// Parts `1..next` are in `sha`.
    next: u32,
    sha: Sha256,
    generation: u64,
    /// A task is advancing the hash.
    running: bool,
}

impl LocalFiles {
    pub(crate) fn new(store: Arc<LocalFileSystem>) -> LocalFiles {
        LocalFiles {
            store,
            locks: Arc::default(),
            hashes: Arc::default(),
        }
    }

    fn hashes(&self) -> std::sync::MutexGuard<'_, HashMap<String, PrefixHash>> {
        self.hashes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Called before part `n`'s region is rewritten.
    pub(crate) fn part_changing(&self, upload_id: &UploadId, part_number: PartNumber) {
        let mut hashes = self.hashes();
        if let Some(hash) = hashes.get_mut(upload_id.as_str()) {
            if part_number.get() <= hash.next.max(1) {
                let generation = hash.generation + 1;
                *hash = PrefixHash {
                    next: 1,
                    generation,
                    running: hash.running,
                    ..PrefixHash::default()
                };
            }
        }
    }

    /// Called after a part was stored: hashes the parts that now continue
    /// the prefix, in the background.
    pub(crate) fn part_stored(
        &self,
        objects: Arc<dyn object_store::ObjectStore>,
        upload_id: &UploadId,
        layout: FixedLayout,
    ) {
        {
            let mut hashes = self.hashes();
            let hash = hashes
                .entry(upload_id.as_str().to_string())
                .or_insert_with(|| PrefixHash {
                    next: 1,
                    ..PrefixHash::default()
                });
            if hash.running {
                return;
            }
            hash.running = true;
        }
        let files = self.clone();
        let upload_id = upload_id.clone();
        tokio::spawn(async move {
            files
                .advance_hash(objects.as_ref(), &upload_id, layout)
                .await;
        });
    }

    async fn advance_hash(
        &self,
        objects: &dyn object_store::ObjectStore,
        upload_id: &UploadId,
        layout: FixedLayout,
    ) {
        loop {
            let (next, generation, sha) = {
                let hashes = self.hashes();
                match hashes.get(upload_id.as_str()) {
                    Some(hash) => (hash.next, hash.generation, hash.sha.clone()),
                    None => return,
                }
            };
            let advanced = match PartNumber::new(next) {
                Some(part_number) if u64::from(next) <= layout.n_parts() => {
                    self.hash_part(objects, upload_id, layout, part_number, sha)
                        .await
                }
                _ => None,
            };
            let mut hashes = self.hashes();
            let Some(hash) = hashes.get_mut(upload_id.as_str()) else {
                return;
            };
            match advanced {
                Some(sha) if hash.generation == generation => {
                    hash.sha = sha;
                    hash.next = next + 1;
                }
                // Restarted meanwhile: go on from the new start.
                _ if hash.generation != generation => {}
                // The next part is not there yet; its arrival restarts us.
                _ => {
                    hash.running = false;
                    return;
                }
            }
        }
    }

    /// `sha` advanced over part `n`, if it is stored.
    async fn hash_part(
        &self,
        objects: &dyn object_store::ObjectStore,
        upload_id: &UploadId,
        layout: FixedLayout,
        part_number: PartNumber,
        mut sha: Sha256,
    ) -> Option<Sha256> {
        let (offset, length) = layout.span(part_number)?;
        let lock = self.lock(upload_id);
        let _reading = lock.read().await;
        crate::layout::read_part_record(objects, upload_id, part_number)
            .await
            .ok()
            .flatten()
            .filter(|record| record.size == length)?;
        let path = self.assembly_path(upload_id).ok()?;
        tokio::task::spawn_blocking(move || {
            hash_range(&path, offset, length, &mut sha).ok()?;
            Some(sha)
        })
        .await
        .ok()
        .flatten()
    }

    /// The hash of parts `1..next`, taken out of the table (completion and
    /// abort end it).
    fn take_hash(&self, upload_id: &UploadId) -> Option<(u32, Sha256)> {
        self.hashes()
            .remove(upload_id.as_str())
            .map(|hash| (hash.next.max(1), hash.sha))
    }

    /// Forgets an upload's running hash (abort).
    pub(crate) fn forget(&self, upload_id: &UploadId) {
        self.take_hash(upload_id);
    }

    /// The file behind an object path.
    pub(crate) fn file_path(&self, location: &Path) -> Result<PathBuf, S3Error> {
        self.store
            .path_to_filesystem(location)
            .map_err(|error| S3Error::internal("mapping an object to its file", error))
    }

    pub(crate) fn assembly_path(&self, upload_id: &UploadId) -> Result<PathBuf, S3Error> {
        self.file_path(&upload_id.prefix().child(ASSEMBLY_NAME))
    }

    /// The lock part writes share and completion takes alone.
    pub(crate) fn lock(&self, upload_id: &UploadId) -> Arc<RwLock<()>> {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Locks of finished uploads are dropped once no one holds them.
        if locks.len() > 1024 {
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        locks
            .entry(upload_id.as_str().to_string())
            .or_default()
            .clone()
    }
}

/// An assembly file opened at a part's offset.
pub(crate) struct PartFile {
    file: tokio::fs::File,
}

impl PartFile {
    /// Opens (creating) the assembly file and seeks to `offset`.
    pub(crate) async fn open(path: &std::path::Path, offset: u64) -> Result<PartFile, S3Error> {
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|error| S3Error::internal("creating the upload's directory", error))?;
        }
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .await
            .map_err(|error| S3Error::internal("opening the upload's file", error))?;
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|error| S3Error::internal("seeking in the upload's file", error))?;
        Ok(PartFile { file })
    }

    pub(crate) async fn write(&mut self, chunk: &[u8]) -> Result<(), S3Error> {
        self.file
            .write_all(chunk)
            .await
            .map_err(|error| S3Error::internal("writing a part", error))
    }

    pub(crate) async fn finish(mut self) -> Result<(), S3Error> {
        self.file
            .flush()
            .await
            .map_err(|error| S3Error::internal("writing a part", error))
    }
}

/// Hashes the assembly file and renames it to `destination`; returns the
/// multipart ETag `md5(part md5s)-n`. The caller holds the upload's lock
/// exclusively and has checked that `parts` are exactly 1..=n of `layout`.
pub(crate) async fn complete(
    files: &LocalFiles,
    upload_id: &UploadId,
    layout: FixedLayout,
    parts: &[(PartNumber, PartRecord)],
    destination: &Path,
    whole: Option<&mut Sha256>,
) -> Result<String, S3Error> {
    let assembly = files.assembly_path(upload_id)?;
    let target = files.file_path(destination)?;
    let size = tokio::fs::metadata(&assembly)
        .await
        .map_err(|error| S3Error::internal("reading the upload's file", error))?
        .len();
    if size != layout.total_size {
        return Err(S3Error::new(
            S3ErrorKind::InvalidPart,
            format!(
                "the upload holds {size} bytes, not the {} it was created for; list the parts and upload the missing ones",
                layout.total_size
            ),
        ));
    }
    // Parts below `next` were hashed while the upload ran (no rewrite
    // since, or the hash would have restarted); the rest are hashed now.
    let (next, prefix) = files.take_hash(upload_id).unwrap_or((1, Sha256::new()));
    if let Some(whole) = whole {
        let path = assembly.clone();
        let start = u64::from(next - 1) * layout.part_size;
        let mut sha = prefix;
        *whole = tokio::task::spawn_blocking(move || {
            hash_range(&path, start, size.saturating_sub(start), &mut sha).map(|()| sha)
        })
        .await
        .map_err(|error| S3Error::internal("hashing the object", error))?
        .map_err(|error| S3Error::internal("hashing the object", error))?;
    }
    let mut etag_hasher = Md5::new();
    for (_, record) in parts {
        let mut md5 = [0u8; 16];
        hex::decode_to_slice(&record.md5, &mut md5)
            .map_err(|error| S3Error::internal("reading a part record", error))?;
        etag_hasher.update(md5);
    }
    if let Some(parent) = target.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|error| S3Error::internal("creating the object's directory", error))?;
    }
    tokio::fs::rename(&assembly, &target)
        .await
        .map_err(|error| S3Error::internal("moving the upload into place", error))?;
    Ok(format!(
        "{}-{}",
        hex::encode(etag_hasher.finalize()),
        parts.len()
    ))
}

/// Feeds `length` bytes of the file from `offset` into `sha`.
fn hash_range(
    path: &std::path::Path,
    offset: u64,
    length: u64,
    sha: &mut Sha256,
) -> std::io::Result<()> {
    use std::io::{Read, Seek};
    let mut file = std::fs::File::open(path)?;
    file.seek(std::io::SeekFrom::Start(offset))?;
    let mut remaining = length;
    let mut block = vec![0u8; HASH_BLOCK_BYTES.min(usize::try_from(length).unwrap_or(usize::MAX))];
    while remaining > 0 {
        let want = block
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let n = file.read(&mut block[..want])?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the upload's file is shorter than its parts",
            ));
        }
        sha.update(&block[..n]);
        remaining -= n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(number: u32) -> PartNumber {
        PartNumber::new(number).expect("valid part number")
    }

    #[test]
    fn parts_map_to_offsets_and_the_last_is_shorter() {
        let layout = FixedLayout::new(8, 20).expect("layout");
        assert_eq!(layout.n_parts(), 3);
        assert_eq!(layout.span(part(1)), Some((0, 8)));
        assert_eq!(layout.span(part(2)), Some((8, 8)));
        assert_eq!(layout.span(part(3)), Some((16, 4)));
        assert_eq!(layout.span(part(4)), None);
        let exact = FixedLayout::new(8, 16).expect("layout");
        assert_eq!(exact.span(part(2)), Some((8, 8)));
        assert_eq!(exact.span(part(3)), None);
    }

    #[test]
    fn layouts_need_a_size_and_at_most_10000_parts() {
        assert_eq!(FixedLayout::new(0, 10), None);
        assert_eq!(FixedLayout::new(10, 0), None);
        assert!(FixedLayout::new(1, 10_000).is_some());
        assert_eq!(FixedLayout::new(1, 10_001), None);
    }

    #[test]
    fn a_misfit_says_what_the_part_must_be() {
        let layout = FixedLayout::new(8, 20).expect("layout");
        let message = layout.misfit(part(3), Some(8)).message;
        assert!(
            message.contains("part 3 must be 4 bytes, not 8"),
            "{message}"
        );
        let message = layout.misfit(part(9), None).message;
        assert!(message.contains("no such part"), "{message}");
    }
}
