//! Exclusive locks on job directories: one process computes a job at a time. A second process
//! says who holds the job and waits for it (then usually finds the work done). The lock is an
//! `flock` on `<dir>/.lock`, so the kernel releases it when its holder dies, even by `kill -9`:
//! a lock is never stale. The file records the holder's pid and start time for messages and for
//! `landscape runs`.

use anyhow::{Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// The lock file of a whole job inside its directory; shards of a grid lock
/// `.lock.<k>-of-<n>` so that they compute side by side.
pub const LOCK_FILE: &str = ".lock";

/// Non-blocking attempts, 20 ms apart, before a process says it waits.
const QUICK_TRIES: usize = 5;

/// A held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Who holds a lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holder {
    /// The holder's process id (0 when it has not written it yet).
    pub pid: u32,
    /// When it took the lock, seconds since the Unix epoch.
    pub since: u64,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        write!(
            f,
            "process {} (for {} s)",
            self.pid,
            now.saturating_sub(self.since)
        )
    }
}

impl Lock {
    /// Takes the lock `name` of `dir` (created if missing), waiting for its holder if another
    /// process has it; `what` names the job in the one line said while waiting.
    pub fn acquire(dir: &Path, name: &str, what: &str) -> Result<Self> {
        let path = dir.join(name);
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut file = open(&path)?;
        // A few quick tries first: `landscape runs` takes a lock for an instant to see whether
        // anyone holds it, which is not worth a "waiting" line.
        let mut free = false;
        for _ in 0..QUICK_TRIES {
            free = flock(&file, libc::LOCK_EX | libc::LOCK_NB, &path)?;
            if free {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if !free {
            let holder = read_holder(&mut file);
            eprintln!(
                "{what}: waiting for {}, which holds {}",
                holder.map_or("another process".into(), |h| h.to_string()),
                dir.display()
            );
            flock(&file, libc::LOCK_EX, &path)?;
        }
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        write!(file, "pid {}\nsince {since}\n", std::process::id())
            .with_context(|| format!("writing {}", path.display()))?;
        file.sync_data()?;
        Ok(Self { _file: file })
    }

    /// Who holds any lock of `dir` now (`None`: nobody, or no such directory). Never waits.
    pub fn holder(dir: &Path) -> Result<Option<Holder>> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(None);
        };
        for entry in entries {
            let path = entry?.path();
            let is_lock = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(LOCK_FILE));
            if is_lock && let Some(holder) = Self::holder_of(&path)? {
                return Ok(Some(holder));
            }
        }
        Ok(None)
    }

    /// Who holds lock `name` of `dir` now (`None`: nobody). Never waits.
    pub fn holder_of_named(dir: &Path, name: &str) -> Result<Option<Holder>> {
        Self::holder_of(&dir.join(name))
    }

    fn holder_of(path: &Path) -> Result<Option<Holder>> {
        if !path.exists() {
            return Ok(None);
        }
        // Read-only: listing a work directory needs no write access to it.
        let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        if flock(&file, libc::LOCK_SH | libc::LOCK_NB, path)? {
            return Ok(None);
        }
        Ok(Some(
            read_holder(&mut file).unwrap_or(Holder { pid: 0, since: 0 }),
        ))
    }
}

fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

/// `flock(operation)`; `Ok(false)` when a non-blocking request finds the lock taken.
fn flock(file: &File, operation: libc::c_int, path: &Path) -> Result<bool> {
    loop {
        // SAFETY: flock on a file descriptor this `File` owns.
        if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
            return Ok(true);
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EWOULDBLOCK) => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(err).with_context(|| format!("locking {}", path.display())),
        }
    }
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.trim().parse::<u64>().ok())
    };
    Some(Holder {
        pid: u32::try_from(field("pid ")?).ok()?,
        since: field("since ")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn a_second_holder_waits_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = Lock::acquire(dir.path(), LOCK_FILE, "test").unwrap();
        let holder = Lock::holder(dir.path()).unwrap().expect("held");
        assert_eq!(holder.pid, std::process::id());
        let (tx, rx) = mpsc::channel();
        let path = dir.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let second = Lock::acquire(&path, LOCK_FILE, "test").unwrap();
            tx.send(()).unwrap();
            drop(second);
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "the second lock was granted while the first was held"
        );
        drop(first);
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the second lock was granted after the first was released");
        waiter.join().unwrap();
        assert_eq!(Lock::holder(dir.path()).unwrap(), None);
    }
}
