//! `NOTES.md`: a person's reading of a results folder (why a check failed, what the numbers
//! mean). Its first line names the files whose numbers it reads, with their SHA-256:
//!
//! ```text
//! <!-- reads: findings.csv sha256:3f2a... summary.csv sha256:9bc1... -->
//! ```
//!
//! (`sha256sum findings.csv summary.csv` gives them). A regeneration carries the notes into the
//! new folder unchanged while those files hold the same bytes; when any differs, or the notes
//! name nothing they read, the notes are carried with a stale mark under that line, so an old
//! reading is never passed off as one of the new numbers.

use anyhow::{Context, Result};
use landscape_core::atomic::write_atomic;
use landscape_core::hash::ContentHash;
use std::path::Path;

/// The notes' file name.
pub const NOTES: &str = "NOTES.md";

/// The first words of the stale mark (how a marked file is recognized, so it is marked once).
const STALE: &str = "> **Stale:**";

/// Carries `old/NOTES.md`, if there is one, into `new` (a freshly written results folder),
/// marked stale unless every file its `reads` line names has the same SHA-256 in `new`.
pub fn carry(old: &Path, new: &Path) -> Result<()> {
    let path = old.join(NOTES);
    if !path.exists() {
        return Ok(());
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let changed = match reads(&text) {
        None => Some("they name no numbers they read (no `<!-- reads: ... -->` line)".to_string()),
        Some(files) => {
            let changed: Vec<&str> = files
                .iter()
                .filter(|(file, sha)| {
                    ContentHash::of_file(&new.join(file)).map_or(true, |hash| hash.full() != *sha)
                })
                .map(|(file, _)| file.as_str())
                .collect();
            (!changed.is_empty()).then(|| format!("{} changed", changed.join(" and ")))
        }
    };
    let carried = match changed {
        Some(why) if !text.contains(STALE) => mark_stale(&text, &why),
        _ => text,
    };
    write_atomic(&new.join(NOTES), carried.as_bytes())
}

/// The `(file, sha256)` pairs of the notes' first line, or `None` when it is not a reads line.
fn reads(text: &str) -> Option<Vec<(String, String)>> {
    let line = text.lines().next()?.trim();
    let list = line.strip_prefix("<!-- reads:")?.strip_suffix("-->")?;
    let words: Vec<&str> = list.split_whitespace().collect();
    words
        .chunks(2)
        .map(|pair| match pair {
            [file, sha] => Some((file.to_string(), sha.strip_prefix("sha256:")?.to_string())),
            _ => None,
        })
        .collect()
}

/// `text` with the stale mark after its reads line (or at the top when it has none).
fn mark_stale(text: &str, why: &str) -> String {
    let mark = format!(
        "{STALE} this reading was written for other numbers: {why} in a later regeneration. \
         It stays below until it is rewritten for the numbers beside it.\n\n"
    );
    match reads(text) {
        Some(_) => {
            let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
            format!("{first}\n\n{mark}{}", rest.trim_start_matches('\n'))
        }
        None => format!("{mark}{text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An old and a new results folder with `findings.csv` holding `old` and `new`, and notes
    /// that read the old one.
    fn folders(old: &str, new: &str) -> (tempfile::TempDir, tempfile::TempDir) {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::write(a.path().join("findings.csv"), old).unwrap();
        std::fs::write(b.path().join("findings.csv"), new).unwrap();
        let sha = ContentHash::of_bytes(old.as_bytes()).full().to_string();
        let notes = format!("<!-- reads: findings.csv sha256:{sha} -->\n# A reading\n\nWhy.\n");
        std::fs::write(a.path().join(NOTES), notes).unwrap();
        (a, b)
    }

    fn carried(old: &Path, new: &Path) -> String {
        carry(old, new).unwrap();
        std::fs::read_to_string(new.join(NOTES)).unwrap()
    }

    #[test]
    fn notes_on_the_same_numbers_are_carried_unchanged() {
        let (old, new) = folders("check,PASS\n", "check,PASS\n");
        let before = std::fs::read_to_string(old.path().join(NOTES)).unwrap();
        assert_eq!(carried(old.path(), new.path()), before);
    }

    #[test]
    fn notes_on_changed_numbers_are_marked_stale_once() {
        let (old, new) = folders("check,FAIL\n", "check,PASS\n");
        let text = carried(old.path(), new.path());
        assert!(
            text.starts_with("<!-- reads: findings.csv sha256:")
                && text.contains(
                    "> **Stale:** this reading was written for other numbers: findings.csv changed"
                )
                && text.contains("# A reading"),
            "{text}"
        );
        // Regenerated again: still stale, marked once.
        let again = tempfile::tempdir().unwrap();
        std::fs::write(again.path().join("findings.csv"), "check,PASS\n").unwrap();
        let text = carried(new.path(), again.path());
        assert_eq!(text.matches(STALE).count(), 1, "{text}");
    }

    #[test]
    fn notes_that_name_nothing_they_read_are_stale() {
        let (old, new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::write(old.path().join(NOTES), "# A reading\n").unwrap();
        let text = carried(old.path(), new.path());
        assert!(
            text.starts_with(STALE) && text.contains("name no numbers"),
            "{text}"
        );
        // A folder without notes carries none: the new folder's notes stay as they are.
        let missing = tempfile::tempdir().unwrap();
        carry(missing.path(), new.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(new.path().join(NOTES)).unwrap(),
            text
        );
    }
}
