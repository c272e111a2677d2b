//! Atomic file writes: a reader (or a killed process) sees the old file or the new one, never
//! half of either.

use anyhow::{Context, Result};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary path next to `path` (same directory, so the final rename stays on one file
/// system) that no other writer in this or another process, on this or another machine sharing
/// the directory, will pick: `.<name>.tmp-<host>-<pid>-<n>`.
fn temporary_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(
        ".{name}.tmp-{}-{}-{unique}",
        host(),
        std::process::id()
    ))
}

/// This machine's name, as temporary files carry it (`-` and `.` kept, anything else `_`).
pub fn host() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name: String = String::from_utf8_lossy(&buf[..if ok { len } else { 0 }])
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() { "host".into() } else { name }
}

/// Writes `path` atomically with whatever `fill` writes into the buffered temporary file.
///
/// Parent directories are created. On error the temporary file is removed and the previous
/// content of `path`, if any, is left untouched.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
) -> Result<()> {
    write_atomic_at(path, |tmp| {
        let file = File::create(tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut writer = BufWriter::new(file);
        fill(&mut writer)?;
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        Ok(file.sync_all()?)
    })
}

/// Writes `path` atomically through a library that writes files by name (HDF5): `create`
/// writes the whole file at the temporary path it is given, which then replaces `path`.
///
/// Parent directories are created. On error the temporary file is removed and the previous
/// content of `path`, if any, is left untouched.
pub fn write_atomic_at(path: &Path, create: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let tmp = temporary_sibling(path);
    let result = create(&tmp).and_then(|()| {
        fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

/// Removes the temporary files in `dir` whose writer is dead (a killed process leaves its
/// `.<name>.tmp-<host>-<pid>-<n>` behind): those of this machine whose process is gone. Files
/// of live processes, and of other machines sharing the directory, are left alone. Returns how
/// many were removed.
pub fn remove_stale_temporaries(dir: &Path) -> Result<usize> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(0);
    };
    let mut removed = 0;
    for entry in entries {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // `<host>-<pid>-<n>`, read from the right (host names may hold `-`).
        let writer = name
            .strip_prefix('.')
            .and_then(|n| n.rsplit_once(".tmp-"))
            .and_then(|(_, rest)| {
                let mut parts = rest.rsplitn(3, '-');
                let (_n, pid, host) = (parts.next()?, parts.next()?, parts.next()?);
                Some((host.to_string(), pid.parse::<i32>().ok()?))
            });
        if let Some((writer_host, pid)) = writer
            && writer_host == host()
            && !process_alive(pid)
        {
            fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Whether process `pid` exists on this machine (`kill(pid, 0)`; a process of another user
/// counts as alive): whether what it left behind (temporaries, scratch folders) may still be
/// in use.
pub fn process_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks for the process.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| Ok(w.write_all(bytes)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_file_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.txt");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1, "temporary files left behind");
    }

    #[test]
    fn only_temporaries_of_dead_writers_here_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let me = format!("{}-{}", host(), std::process::id());
        // pid_max is at most 2^22: no process has this id.
        let dead = dir
            .path()
            .join(format!(".a.csv.tmp-{}-999999999-0", host()));
        let alive = dir.path().join(format!(".a.csv.tmp-{me}-3"));
        let elsewhere = dir.path().join(".a.csv.tmp-other-host.example-999999999-0");
        for p in [&dead, &alive, &elsewhere] {
            fs::write(p, "half").unwrap();
        }
        assert_eq!(remove_stale_temporaries(dir.path()).unwrap(), 1);
        assert!(!dead.exists() && alive.exists() && elsewhere.exists());
        // The names it writes are the names it reads.
        let ours = temporary_sibling(&dir.path().join("b.csv"));
        assert!(
            ours.to_string_lossy()
                .contains(&format!(".b.csv.tmp-{me}-"))
        );
    }

    #[test]
    fn failed_fill_keeps_previous_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        write_atomic(&path, b"good").unwrap();
        let err = write_atomic_with(&path, |w| {
            w.write_all(b"half")?;
            anyhow::bail!("interrupted")
        });
        assert!(err.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"good");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
