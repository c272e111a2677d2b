//! Finding a data set directory, or installing it whole: a data set directory is built in a
//! hidden temporary directory next to its final place and renamed into place only once
//! complete, so a killed or failed download never leaves half a data set where it is looked
//! for. One process installs a data set at a time; the others wait for it and use its result.
//! A download it could not finish is kept next to the data set's place, for the next install
//! to resume.

use crate::download::{STALL_TIMEOUT, download};
use crate::locations::{DataLocations, Source};
use crate::name::DatasetName;
use anyhow::{Context, Result};
use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// What a scratch directory's name says after `.{data set directory}.`, before `{pid}-{n}`.
const SCRATCH_TAG: &str = "partial-";

/// A data set directory and how to get it: what is looked for, and what a person is told to
/// put in place when it can't be downloaded.
pub(crate) struct Wanted<'a> {
    /// The data set, for messages.
    pub name: DatasetName,
    /// The directory's name under each search root, e.g. `cifar-10-batches-bin`.
    pub dir_name: &'a str,
    /// The files the directory must hold.
    pub files: Vec<String>,
    /// Where those files come from, e.g. `extracted from <url>`.
    pub origin: String,
}

/// The data set directory `wanted`: the first found under the system dirs and the cache, or
/// else one `install` builds and this function moves into the cache.
///
/// `install` gets a [`Workspace`] and returns the complete data set directory it made in its
/// scratch directory.
pub(crate) fn find_or_install(
    locations: &DataLocations,
    wanted: &Wanted,
    install: impl FnOnce(&Workspace) -> Result<PathBuf>,
) -> Result<PathBuf> {
    let candidates = locations.candidates(wanted.dir_name);
    if let Some(found) = candidates.iter().find(|dir| dir.is_dir()) {
        return Ok(found.clone());
    }
    let target = locations.cache_dir.join(wanted.dir_name);
    let searched: Vec<String> = candidates.iter().map(|d| d.display().to_string()).collect();
    let by_hand = format!(
        "to install it by hand, put {} in {} ({})",
        wanted.files.join(", "),
        target.display(),
        wanted.origin
    );
    let name = &wanted.name;
    let searched = searched.join(" or ");
    if !locations.allow_download {
        return Err(anyhow::Error::new(Missing).context(format!(
            "{name}: not found in {searched} and downloads are off; {by_hand}"
        )));
    }
    install_dir(&target, name, install)
        .map_err(|e| e.context(Missing))
        .with_context(|| {
            format!("{name}: not found in {searched} and the download failed; {by_hand}")
        })?;
    Ok(target)
}

/// In the chain of a loading error: the data set is nowhere here and could not be downloaded,
/// as opposed to found but damaged. The only failure a stand-in may replace.
#[derive(Clone, Copy, Debug)]
pub struct Missing;

impl Missing {
    /// Whether `error` says the data set is missing (not damaged).
    pub fn in_chain(error: &anyhow::Error) -> bool {
        // `downcast_ref` also finds `Missing` added as context to another error (a failed
        // download), which the chain's links, each a context wrapper, do not show as `Missing`.
        error.downcast_ref::<Missing>().is_some() || error.chain().any(|e| e.is::<Missing>())
    }
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the data set is not available on this machine")
    }
}

impl std::error::Error for Missing {}

/// Where an install builds a data set directory.
pub(crate) struct Workspace<'a> {
    /// An empty directory on the file system of the data set's place, removed after the
    /// install with whatever is left in it.
    pub scratch: &'a Path,
    /// The data set directory being installed.
    target: &'a Path,
}

impl Workspace<'_> {
    /// Downloads `source` into the scratch directory as `file` and returns its path. A try
    /// that fails keeps the bytes it got next to the data set's place, and the next install
    /// resumes from them.
    pub fn download(&self, source: &Source, file: &str) -> Result<PathBuf> {
        let dest = self.scratch.join(file);
        let partial = hidden_sibling(self.target, &format!("{file}.part"));
        download(source, &dest, &partial, STALL_TIMEOUT)?;
        Ok(dest)
    }
}

/// Makes `target` the directory `fill` builds inside a scratch directory, by one rename; or,
/// if another process installed it meanwhile, takes that one.
fn install_dir(
    target: &Path,
    name: &DatasetName,
    fill: impl FnOnce(&Workspace) -> Result<PathBuf>,
) -> Result<()> {
    let _claim = claim(target, name)?;
    if target.is_dir() {
        return Ok(());
    }
    remove_stale_scratches(target);
    let scratch = Scratch::next_to(target)?;
    let built = fill(&Workspace {
        scratch: &scratch.0,
        target,
    })?;
    if let Err(e) = fs::rename(&built, target) {
        // A process that does not take the claim (an older landscape) may have installed the
        // same data set meanwhile: that one is as good.
        if !target.is_dir() {
            return Err(e)
                .with_context(|| format!("renaming {} to {}", built.display(), target.display()));
        }
    }
    Ok(())
}

/// `.{target's name}.{suffix}` next to `target`.
fn hidden_sibling(target: &Path, suffix: &str) -> PathBuf {
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    target.with_file_name(format!(".{name}.{suffix}"))
}

/// Claims the install of `target` until the returned file is closed, waiting while another
/// process (or thread) holds the claim: downloads kept for `target` are only touched under it.
///
/// The claim is a lock on the file `.{target's name}.lock`, which stays when the claim ends:
/// removing it could let a process still waiting on the removed file and a newcomer on a new
/// one both hold a claim.
fn claim(target: &Path, name: &DatasetName) -> Result<File> {
    let path = hidden_sibling(target, "lock");
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let locked = match file.try_lock() {
        Err(TryLockError::WouldBlock) => {
            eprintln!(
                "{name}: waiting for another process installing {}",
                target.display()
            );
            file.lock()
        }
        Err(TryLockError::Error(e)) => Err(e),
        Ok(()) => Ok(()),
    };
    locked.with_context(|| format!("locking {}", path.display()))?;
    Ok(file)
}

/// Removes the scratch directories of `target` left by processes no longer running (killed
/// while installing). One whose process lives may be another install going on, and stays.
fn remove_stale_scratches(target: &Path) {
    let prefix = hidden_sibling(target, SCRATCH_TAG);
    let (Some(dir), Some(prefix)) = (prefix.parent(), prefix.file_name()) else {
        return;
    };
    let prefix = prefix.to_string_lossy();
    // Best effort: a leftover that cannot be read or removed only wastes space.
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix(&*prefix))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<i32>().ok());
        if pid.is_some_and(|pid| !landscape_core::atomic::process_alive(pid)) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// A hidden scratch directory, removed with whatever is left in it when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn next_to(target: &Path) -> Result<Scratch> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let path = hidden_sibling(target, &format!("{SCRATCH_TAG}{pid}-{unique}"));
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::locations::Mirrors;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn missing_is_found_as_the_cause_and_as_context_on_a_failed_download() {
        let off = anyhow::Error::new(Missing).context("cifar10: downloads are off");
        assert!(Missing::in_chain(&off));
        let failed = anyhow::anyhow!("io: failed to lookup address information")
            .context(Missing)
            .context("cifar10: the download failed");
        assert!(Missing::in_chain(&failed));
        let damaged = anyhow::anyhow!("data_batch_1.bin: truncated").context("cifar10");
        assert!(!Missing::in_chain(&damaged));
    }

    fn locations(cache: &Path, system: &Path, allow_download: bool) -> DataLocations {
        DataLocations {
            cache_dir: cache.to_path_buf(),
            system_dirs: vec![system.to_path_buf()],
            allow_download,
            mirrors: Mirrors::official(),
        }
    }

    fn wanted() -> Wanted<'static> {
        Wanted {
            name: DatasetName::Cifar10,
            dir_name: "set",
            files: vec!["a.bin".into(), "b.bin".into()],
            origin: "extracted from http://example/set.tar.gz".into(),
        }
    }

    #[test]
    fn system_dirs_come_first_then_the_cache() {
        let root = tempfile::tempdir().unwrap();
        let (cache, system) = (root.path().join("cache"), root.path().join("system"));
        fs::create_dir_all(cache.join("set")).unwrap();
        let locs = locations(&cache, &system, false);
        assert_eq!(
            find_or_install(&locs, &wanted(), |_| unreachable!()).unwrap(),
            cache.join("set")
        );
        fs::create_dir_all(system.join("set")).unwrap();
        assert_eq!(
            find_or_install(&locs, &wanted(), |_| unreachable!()).unwrap(),
            system.join("set")
        );
    }

    #[test]
    fn installs_whole_or_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let cache = root.path().join("cache");
        let locs = locations(&cache, &root.path().join("system"), true);
        let err = find_or_install(&locs, &wanted(), |workspace| {
            fs::write(workspace.scratch.join("a.bin"), b"half")?;
            anyhow::bail!("connection lost")
        })
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("connection lost") && text.contains("put a.bin, b.bin in"),
            "{text}"
        );
        assert_eq!(names(&cache), [".set.lock"], "scratch left behind");

        let dir = find_or_install(&locs, &wanted(), |workspace| {
            let built = workspace.scratch.join("inner");
            fs::create_dir(&built)?;
            fs::write(built.join("a.bin"), b"whole")?;
            fs::write(workspace.scratch.join("archive"), b"dropped after install")?;
            Ok(built)
        })
        .unwrap();
        assert_eq!(fs::read(dir.join("a.bin")).unwrap(), b"whole");
        assert_eq!(
            names(&cache),
            [".set.lock", "set"],
            "only the data set remains"
        );
    }

    /// The sorted names in `dir`.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_second_install_waits_for_the_first_and_takes_its_result() {
        let root = tempfile::tempdir().unwrap();
        let cache = root.path().join("cache");
        let locs = locations(&cache, &root.path().join("system"), true);
        let (started, release) = (mpsc::channel(), mpsc::channel::<()>());
        let first = {
            let (locs, started, release) = (locs.clone(), started.0, release.1);
            std::thread::spawn(move || {
                find_or_install(&locs, &wanted(), |workspace| {
                    started.send(()).unwrap();
                    release.recv().unwrap();
                    let built = workspace.scratch.join("set");
                    fs::create_dir(&built)?;
                    Ok(built)
                })
                .unwrap()
            })
        };
        started.1.recv().unwrap();
        let (done, finished) = mpsc::channel();
        let second = {
            let locs = locs.clone();
            std::thread::spawn(move || {
                let dir = find_or_install(&locs, &wanted(), |_| {
                    panic!("installed again while another install was going on")
                });
                done.send(()).unwrap();
                dir.unwrap()
            })
        };
        assert!(
            finished.recv_timeout(Duration::from_millis(300)).is_err(),
            "the second install did not wait for the first"
        );
        release.0.send(()).unwrap();
        assert_eq!(first.join().unwrap(), cache.join("set"));
        assert_eq!(second.join().unwrap(), cache.join("set"));
    }

    #[test]
    fn scratches_of_dead_processes_are_removed_and_live_ones_kept() {
        let root = tempfile::tempdir().unwrap();
        let cache = root.path().join("cache");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let live = std::process::id();
        let leftovers = [
            format!(".set.partial-{dead}-0"),
            format!(".set.partial-{live}-99"),
            format!(".other.partial-{dead}-0"),
        ];
        for name in &leftovers {
            fs::create_dir_all(cache.join(name).join("inner")).unwrap();
        }
        let locs = locations(&cache, &root.path().join("system"), true);
        find_or_install(&locs, &wanted(), |workspace| {
            let built = workspace.scratch.join("set");
            fs::create_dir(&built)?;
            Ok(built)
        })
        .unwrap();
        let mut expected = vec![
            leftovers[1].clone(),
            leftovers[2].clone(),
            ".set.lock".into(),
            "set".into(),
        ];
        expected.sort();
        assert_eq!(names(&cache), expected);
    }

    #[test]
    fn downloads_off_says_what_to_put_where() {
        let root = tempfile::tempdir().unwrap();
        let cache = root.path().join("cache");
        let locs = locations(&cache, &root.path().join("system"), false);
        let text = format!(
            "{:#}",
            find_or_install(&locs, &wanted(), |_| unreachable!()).unwrap_err()
        );
        let target = cache.join("set").display().to_string();
        assert!(text.contains("downloads are off"), "{text}");
        assert!(
            text.contains(&format!("put a.bin, b.bin in {target}")),
            "{text}"
        );
        assert!(text.contains("http://example/set.tar.gz"), "{text}");
    }
}
