//! Local copies of sources, shared by the tasks of one worker process.
//!
//! With a local object store a source is read in place. Otherwise it is
//! downloaded once into `{scratch}/sources/` (to a temporary name, renamed
//! when complete), so the chunk tasks of one video on one machine share a
//! copy. The copies are kept within a byte budget (`worker.source_cache`):
//! before a download, the least recently used copies that no task is
//! reading are removed until the new one fits. A copy in use is never
//! removed, so a budget smaller than the sources the worker's slots read at
//! once is exceeded by those sources only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use reel_jobs::worker::TaskError;
use tokio::io::AsyncWriteExt;

use super::{io_error, store_error};
use crate::jobs::StoredObject;

/// The source cache of one worker process.
pub(crate) struct SourceCache {
    objects: Arc<dyn ObjectStore>,
    dir: PathBuf,
    budget: u64,
    local_store_root: Option<PathBuf>,
    state: Arc<Mutex<CacheState>>,
    /// One download at a time per source.
    downloads: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    scanned: tokio::sync::OnceCell<()>,
}

#[derive(Default)]
struct CacheState {
    /// Complete copies and reserved downloads, by file name.
    entries: HashMap<String, Entry>,
    clock: u64,
}

struct Entry {
    size: u64,
    last_used: u64,
    readers: usize,
}

impl CacheState {
    fn used(&self) -> u64 {
        self.entries.values().map(|entry| entry.size).sum()
    }

    /// Marks the copy `name` of `size` bytes read now; false when there is
    /// no such copy (one of another size is forgotten, to be replaced).
    fn touch(&mut self, name: &str, size: u64) -> bool {
        self.clock += 1;
        let clock = self.clock;
        match self.entries.get_mut(name) {
            Some(entry) if entry.size == size => {
                entry.last_used = clock;
                entry.readers += 1;
                true
            }
            Some(_) => {
                self.entries.remove(name);
                false
            }
            None => false,
        }
    }

    /// Picks unread copies to remove, least recently used first, until
    /// `size` more bytes fit in `budget`; takes them out of the index.
    fn evict_for(&mut self, size: u64, budget: u64) -> Vec<String> {
        let mut victims = Vec::new();
        while self.used().saturating_add(size) > budget {
            let oldest = self
                .entries
                .iter()
                .filter(|(_, entry)| entry.readers == 0)
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(name, _)| name.clone());
            let Some(name) = oldest else { break };
            self.entries.remove(&name);
            victims.push(name);
        }
        victims
    }
}

/// A source's local file, held open against eviction while it lives.
pub(crate) struct SourceFile {
    path: PathBuf,
    release: Option<(Arc<Mutex<CacheState>>, String)>,
}

impl SourceFile {
    /// The local path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SourceFile {
    fn drop(&mut self) {
        if let Some((state, name)) = self.release.take() {
            let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(entry) = state.entries.get_mut(&name) {
                entry.readers = entry.readers.saturating_sub(1);
            }
        }
    }
}

impl SourceCache {
    /// A cache in `dir` holding at most `budget` bytes of copies.
    pub(crate) fn new(
        objects: Arc<dyn ObjectStore>,
        dir: PathBuf,
        budget: u64,
        local_store_root: Option<PathBuf>,
    ) -> Self {
        SourceCache {
            objects,
            dir,
            budget,
            local_store_root,
            state: Arc::default(),
            downloads: Mutex::default(),
            scanned: tokio::sync::OnceCell::new(),
        }
    }

    /// The local file of `source`, downloaded if need be.
    pub(crate) async fn get(&self, source: &StoredObject) -> Result<SourceFile, TaskError> {
        if let Some(root) = &self.local_store_root {
            let path = root.join(&source.key);
            if tokio::fs::metadata(&path).await.is_ok() {
                return Ok(SourceFile {
                    path,
                    release: None,
                });
            }
        }
        self.scanned
            .get_or_try_init(|| self.scan())
            .await
            .map_err(io_error("reading the source cache"))?;
        let name = cache_name(&source.key);
        let download = {
            let mut downloads = self.downloads.lock().unwrap_or_else(|p| p.into_inner());
            downloads.entry(name.clone()).or_default().clone()
        };
        let _one_download = download.lock().await;
        let path = self.dir.join(&name);
        if self.lock().touch(&name, source.size) {
            return Ok(self.held(path, name));
        }
        let victims = {
            let mut state = self.lock();
            let victims = state.evict_for(source.size, self.budget);
            // Reserve the space while the copy downloads.
            let clock = state.clock;
            state.entries.insert(
                name.clone(),
                Entry {
                    size: source.size,
                    last_used: clock,
                    readers: 1,
                },
            );
            victims
        };
        for victim in victims {
            tracing::debug!(file = %victim, "evicting a cached source");
            if let Err(error) = tokio::fs::remove_file(self.dir.join(&victim)).await {
                tracing::warn!(file = %victim, %error, "removing a cached source");
            }
        }
        let held = self.held(path, name.clone());
        if let Err(error) = self.download(source, &name).await {
            self.lock().entries.remove(&name);
            return Err(error);
        }
        Ok(held)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn held(&self, path: PathBuf, name: String) -> SourceFile {
        SourceFile {
            path,
            release: Some((self.state.clone(), name)),
        }
    }

    async fn download(&self, source: &StoredObject, name: &str) -> Result<(), TaskError> {
        let partial = self.dir.join(format!("{name}.partial"));
        let mut file = tokio::fs::File::create(&partial)
            .await
            .map_err(io_error("creating the source copy"))?;
        let mut stream = self
            .objects
            .get(&ObjectPath::from(source.key.as_str()))
            .await
            .map_err(store_error("reading the source"))?
            .into_stream();
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(store_error("reading the source"))?;
            written += chunk.len() as u64;
            if written > source.size {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(TaskError::permanent(format!(
                    "the stored source is larger than its recorded {} bytes",
                    source.size
                )));
            }
            file.write_all(&chunk)
                .await
                .map_err(io_error("writing the source copy"))?;
        }
        file.flush()
            .await
            .map_err(io_error("writing the source copy"))?;
        drop(file);
        tokio::fs::rename(&partial, self.dir.join(name))
            .await
            .map_err(io_error("renaming the source copy"))?;
        Ok(())
    }

    /// Creates the directory and indexes the copies an earlier process
    /// left (oldest first); removes unfinished downloads.
    async fn scan(&self) -> std::io::Result<()> {
        tokio::fs::create_dir_all(&self.dir).await?;
        let mut found = Vec::new();
        let mut listing = tokio::fs::read_dir(&self.dir).await?;
        while let Some(item) = listing.next_entry().await? {
            let name = item.file_name().to_string_lossy().into_owned();
            let meta = item.metadata().await?;
            if name.ends_with(".partial") || !meta.is_file() {
                let _ = tokio::fs::remove_file(item.path()).await;
                continue;
            }
            found.push((meta.modified().ok(), name, meta.len()));
        }
        found.sort();
        let mut state = self.lock();
        for (_, name, size) in found {
            state.clock += 1;
            let last_used = state.clock;
            state.entries.insert(
                name,
                Entry {
                    size,
                    last_used,
                    readers: 0,
                },
            );
        }
        Ok(())
    }
}

/// The copy's file name: a hash of the key, so any key is a safe name.
fn cache_name(key: &str) -> String {
    let digest = hex::encode(sha2::Digest::finalize(
        <sha2::Sha256 as sha2::Digest>::new_with_prefix(key.as_bytes()),
    ));
    digest[..32].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(size: u64, last_used: u64, readers: usize) -> Entry {
        Entry {
            size,
            last_used,
            readers,
        }
    }

    #[test]
    fn eviction_takes_the_least_recently_used_copies_nobody_reads() {
        let mut state = CacheState::default();
        state.entries.insert("a".into(), entry(10, 1, 0));
        state.entries.insert("b".into(), entry(10, 2, 1));
        state.entries.insert("c".into(), entry(10, 3, 0));
        state.clock = 3;
        // 30 used, budget 25, 10 more: 15 must go; "b" is being read.
        let victims = state.evict_for(10, 25);
        assert_eq!(victims, vec!["a".to_string(), "c".to_string()]);
        assert_eq!(state.used(), 10);
        // Nothing unread is left: the budget is exceeded rather than a
        // copy in use removed.
        assert!(state.evict_for(100, 25).is_empty());
    }
}
