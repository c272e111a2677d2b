//! A job: one artifact directory, `<workdir>/<kind>-<hash>/`, named by a content hash of its
//! [`JobMeta`] (everything that determines it: the content hashes of checkpoints, direction
//! files and data, the settings and the engine version), holding that meta as `meta.toml`.
//! Opening a job takes its lock, checks or writes the meta, and removes what killed writers
//! left behind; a finished output is found without waiting.

use crate::lock::{LOCK_FILE, Lock};
use crate::shard::Shard;
use crate::toml_file::{read_toml, write_toml};
use anyhow::{Context, Result, bail};
use landscape_core::atomic::remove_stale_temporaries;
use landscape_core::hash::content_hash;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// The meta's file name inside a job directory.
pub const META_FILE: &str = "meta.toml";

/// Everything that determines one kind of artifact; its content hash names the directory.
pub trait JobMeta: Serialize + DeserializeOwned + PartialEq + Clone {
    /// The id's prefix (`surface`, `eigratio`, `hessian`, ...).
    fn kind(&self) -> &'static str;

    /// `<kind>-` and 12 hex digits of the content hash.
    fn id(&self) -> String {
        format!("{}-{}", self.kind(), content_hash(self).short())
    }
}

/// An open job: its directory, its meta, and the lock held while it computes.
#[derive(Debug)]
pub struct Job<M> {
    dir: PathBuf,
    meta: M,
    _lock: Lock,
}

impl<M: JobMeta> Job<M> {
    /// The directory `meta`'s job has (or will have) under `workdir`.
    pub fn dir_in(workdir: &Path, meta: &M) -> PathBuf {
        workdir.join(meta.id())
    }

    /// The path of `output` when the job has finished writing it (final outputs are written
    /// atomically, so no lock is needed), after checking that the directory holds this job.
    pub fn finished(workdir: &Path, meta: &M, output: &str) -> Result<Option<PathBuf>> {
        let dir = Self::dir_in(workdir, meta);
        let path = dir.join(output);
        if !path.exists() {
            return Ok(None);
        }
        check_meta(&dir, meta)?;
        Ok(Some(path))
    }

    /// Opens the job for computing part `shard` of it ([`Shard::WHOLE`] for jobs that are not
    /// grids): creates the directory, takes the lock (waiting for another process that holds
    /// it, and saying so with `label`), writes or checks `meta.toml`, and removes temporary
    /// files of killed writers.
    pub fn open(workdir: &Path, meta: M, shard: Shard, label: &str) -> Result<Self> {
        let dir = Self::dir_in(workdir, &meta);
        let lock_name = if shard == Shard::WHOLE {
            LOCK_FILE.to_string()
        } else {
            format!("{LOCK_FILE}.{}-of-{}", shard.index, shard.count)
        };
        let lock = Lock::acquire(&dir, &lock_name, label)?;
        if dir.join(META_FILE).exists() {
            check_meta(&dir, &meta)?;
        } else {
            write_toml(&dir.join(META_FILE), &meta)?;
        }
        remove_stale_temporaries(&dir)?;
        Ok(Self {
            dir,
            meta,
            _lock: lock,
        })
    }

    /// The job's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What determines it.
    pub fn meta(&self) -> &M {
        &self.meta
    }

    /// A file in the job's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// The meta of the job in `dir`, refusing one whose content does not hash to the directory's
/// name (edited by hand, or a directory renamed).
pub fn read_meta<M: JobMeta>(dir: &Path) -> Result<M> {
    let meta: M = read_toml(&dir.join(META_FILE))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if meta.id() != name {
        bail!(
            "{}: describes job {}, not {name} (edited by hand, or the directory renamed?); move it away",
            dir.join(META_FILE).display(),
            meta.id()
        );
    }
    Ok(meta)
}

fn check_meta<M: JobMeta>(dir: &Path, meta: &M) -> Result<()> {
    let path = dir.join(META_FILE);
    let existing: M =
        read_toml(&path).with_context(|| format!("{} is not a job directory", dir.display()))?;
    if &existing != meta {
        bail!(
            "{}: describes another computation than its id says (edited by hand?); move it away",
            path.display()
        );
    }
    Ok(())
}
