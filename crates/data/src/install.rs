//! Finding a data set directory, or installing it whole: a data set directory is built in a
//! hidden temporary directory next to its final place and renamed into place only once
//! complete, so a killed or failed download never leaves half a data set where it is looked
//! for.

use crate::locations::DataLocations;
use crate::name::DatasetName;
use anyhow::{Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

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
/// `install` gets an empty scratch directory and returns the complete data set directory it
/// made inside it.
pub(crate) fn find_or_install(
    locations: &DataLocations,
    wanted: &Wanted,
    install: impl FnOnce(&Path) -> Result<PathBuf>,
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
    let name = wanted.name;
    let searched = searched.join(" or ");
    if !locations.allow_download {
        return Err(anyhow::Error::new(Missing).context(format!(
            "{name}: not found in {searched} and downloads are off; {by_hand}"
        )));
    }
    install_dir(&target, install)
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
        error.chain().any(|e| e.is::<Missing>())
    }
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the data set is not available on this machine")
    }
}

impl std::error::Error for Missing {}

/// Makes `target` the directory `fill` builds inside a scratch directory, by one rename.
fn install_dir(target: &Path, fill: impl FnOnce(&Path) -> Result<PathBuf>) -> Result<()> {
    let scratch = Scratch::next_to(target)?;
    let built = fill(&scratch.0)?;
    if let Err(e) = fs::rename(&built, target) {
        // Another process may have installed the same data set meanwhile: that one is as good.
        if !target.is_dir() {
            return Err(e)
                .with_context(|| format!("renaming {} to {}", built.display(), target.display()));
        }
    }
    Ok(())
}

/// A hidden scratch directory, removed with whatever is left in it when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn next_to(target: &Path) -> Result<Scratch> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = target.file_name().unwrap_or_default().to_string_lossy();
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            target.with_file_name(format!(".{name}.partial-{}-{unique}", std::process::id()));
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
        let err = find_or_install(&locs, &wanted(), |scratch| {
            fs::write(scratch.join("a.bin"), b"half")?;
            anyhow::bail!("connection lost")
        })
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("connection lost") && text.contains("put a.bin, b.bin in"),
            "{text}"
        );
        assert_eq!(
            fs::read_dir(&cache).unwrap().count(),
            0,
            "scratch left behind"
        );

        let dir = find_or_install(&locs, &wanted(), |scratch| {
            let built = scratch.join("inner");
            fs::create_dir(&built)?;
            fs::write(built.join("a.bin"), b"whole")?;
            fs::write(scratch.join("archive"), b"dropped after install")?;
            Ok(built)
        })
        .unwrap();
        assert_eq!(fs::read(dir.join("a.bin")).unwrap(), b"whole");
        let names: Vec<_> = fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["set"], "only the data set remains");
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
