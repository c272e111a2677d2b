//! Downloads verified by md5, and archive extraction.

use crate::locations::Source;
use anyhow::{Context, Result, ensure};
use flate2::read::GzDecoder;
use landscape_core::progress::Progress;
use md5::{Digest, Md5};
use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::path::Path;
use std::time::Duration;

/// How long to wait for a server to accept the connection before calling it offline.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Streams `source` into the file `dest`, with a progress bar, and checks its md5.
///
/// On any failure (network, short body, md5 mismatch) `dest` is removed, so a file at `dest`
/// is always a complete, verified download.
pub(crate) fn download(source: &Source, dest: &Path) -> Result<()> {
    let result = fetch(source, dest);
    if result.is_err() {
        let _ = std::fs::remove_file(dest);
    }
    result
}

fn fetch(source: &Source, dest: &Path) -> Result<()> {
    let url = &source.url;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .build()
        .into();
    let response = agent
        .get(url)
        .call()
        .with_context(|| format!("downloading {url}"))?;
    let total = response.body().content_length();
    let mut body = response.into_body().into_reader();
    let file_name = dest.file_name().unwrap_or_default().to_string_lossy();
    let progress = Progress::new(format!("downloading {file_name}"), total.unwrap_or(0), 0);
    let mut out =
        BufWriter::new(File::create(dest).with_context(|| format!("creating {}", dest.display()))?);
    let mut md5 = Md5::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut received = 0u64;
    loop {
        let n = match body.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("downloading {url}: connection lost after {received} bytes")
                });
            }
        };
        md5.update(&buffer[..n]);
        out.write_all(&buffer[..n])
            .with_context(|| format!("writing {}", dest.display()))?;
        received += n as u64;
        progress.update(received, format!("{:.1} MB", received as f64 / 1e6));
    }
    if let Some(total) = total {
        ensure!(
            received == total,
            "downloading {url}: connection closed after {received} of {total} bytes"
        );
    }
    out.flush()
        .with_context(|| format!("writing {}", dest.display()))?;
    let actual = hex::encode(md5.finalize());
    ensure!(
        actual.eq_ignore_ascii_case(&source.md5),
        "{file_name} from {url}: md5 mismatch: expected {}, got {actual} (download removed)",
        source.md5
    );
    progress.finish(format!("{:.1} MB, md5 verified", received as f64 / 1e6));
    Ok(())
}

/// Extracts the `.tar.gz` file `archive` into the directory `into`.
pub(crate) fn extract_tar_gz(archive: &Path, into: &Path) -> Result<()> {
    let file = File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    // `unpack` refuses entries that would land outside `into` (absolute paths, `..`).
    tar::Archive::new(GzDecoder::new(BufReader::new(file)))
        .unpack(into)
        .with_context(|| format!("{}: cannot extract", archive.display()))
}
