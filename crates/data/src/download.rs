//! Downloads verified by md5 and resumed where the server allows it, and archive extraction.

use crate::locations::Source;
use anyhow::{Context, Result, anyhow, ensure};
use flate2::read::GzDecoder;
use landscape_core::progress::Progress;
use md5::{Digest, Md5};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, ErrorKind, Read, Write};
use std::path::Path;
use std::time::Duration;
use ureq::http::{Response, StatusCode};

/// How long to wait for a server to accept the connection before calling it offline.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a server may send nothing (while the response or the body is awaited) before a
/// download gives up, keeping what arrived for the next try.
pub(crate) const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Streams `source` into the file `dest`, with a progress bar, and checks its md5.
///
/// The bytes arrive in the file `partial`, which outlives a failed try (network error, stall,
/// kill): the next call asks the server for the rest only (`Range`), appends it if the server
/// agrees (206) and starts over if it sends the whole file (200). `dest` appears, by renaming
/// `partial`, only once the whole file's md5 matches; a mismatch removes `partial`, so the next
/// try starts clean. A server silent for `stall_timeout` fails the download.
pub(crate) fn download(
    source: &Source,
    dest: &Path,
    partial: &Path,
    stall_timeout: Duration,
) -> Result<()> {
    let url = &source.url;
    let kept_in = partial.display();
    // The md5 covers the whole file: what an earlier try kept is hashed first.
    let mut md5 = Md5::new();
    let mut kept = match File::open(partial) {
        Ok(mut file) => std::io::copy(&mut file, &mut md5),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
    .with_context(|| format!("reading {kept_in}"))?;
    let agent = agent(stall_timeout);
    let response = match get(&agent, url, kept) {
        // Nothing lies past the bytes kept: they are not a prefix of this file.
        Err(ureq::Error::StatusCode(416)) => get(&agent, url, 0),
        result => result,
    }
    .with_context(|| format!("downloading {url}"))?;
    let resumed = response.status() == StatusCode::PARTIAL_CONTENT;
    if resumed {
        let range = response
            .headers()
            .get("content-range")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !range.starts_with(&format!("bytes {kept}-")) {
            return Err(discard(
                partial,
                anyhow!("downloading {url}: asked for bytes {kept}-, got '{range}'"),
            ));
        }
    } else {
        // The whole file, again.
        md5 = Md5::new();
        kept = 0;
    }
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .append(resumed)
        .truncate(!resumed)
        .open(partial)
        .with_context(|| format!("opening {kept_in}"))?;
    let total = response.body().content_length().map(|n| kept + n);
    let mut body = response.into_body().into_reader();
    let file_name = dest.file_name().unwrap_or_default().to_string_lossy();
    let progress = Progress::new(format!("downloading {file_name}"), total.unwrap_or(0), kept);
    let mut buffer = vec![0u8; 1 << 16];
    let mut received = kept;
    // What a failed try says: how it ended, how many bytes arrived, where they wait.
    let interrupted = |how: &str, received: u64| {
        let of_total = total
            .map(|total| format!(" of {total}"))
            .unwrap_or_default();
        format!(
            "downloading {url}: {how} after {received}{of_total} bytes; kept in {kept_in} for \
             the next try to resume"
        )
    };
    loop {
        let n = match body.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) => {
                let silence = stall_timeout.as_secs_f64();
                return Err(anyhow!(interrupted(
                    &format!("nothing arrived for {silence} s"),
                    received
                )));
            }
            Err(e) => return Err(e).context(interrupted("connection lost", received)),
        };
        md5.update(&buffer[..n]);
        file.write_all(&buffer[..n])
            .with_context(|| format!("writing {kept_in}"))?;
        received += n as u64;
        progress.update(received, format!("{:.1} MB", received as f64 / 1e6));
    }
    if let Some(total) = total {
        ensure!(
            received == total,
            "{}",
            interrupted("connection closed", received)
        );
    }
    let actual = hex::encode(md5.finalize());
    if !actual.eq_ignore_ascii_case(&source.md5) {
        return Err(discard(
            partial,
            anyhow!(
                "{file_name} from {url}: md5 mismatch: expected {}, got {actual} (download removed)",
                source.md5
            ),
        ));
    }
    drop(file);
    std::fs::rename(partial, dest)
        .with_context(|| format!("renaming {kept_in} to {}", dest.display()))?;
    progress.finish(format!("{:.1} MB, md5 verified", received as f64 / 1e6));
    Ok(())
}

/// An agent that gives up on a server silent for `stall_timeout`.
fn agent(stall_timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_per_read(Some(stall_timeout))
        // Byte ranges count the bytes as the server stores them: no content coding.
        .accept_encoding(ureq::config::AutoHeaderValue::None)
        .build()
        .into()
}

/// `url` from byte `from` on (the whole file when 0).
fn get(agent: &ureq::Agent, url: &str, from: u64) -> Result<Response<ureq::Body>, ureq::Error> {
    let mut request = agent.get(url);
    if from > 0 {
        request = request.header("Range", format!("bytes={from}-"));
    }
    request.call()
}

/// Whether a body read failed because the server went silent.
fn is_timeout(error: &std::io::Error) -> bool {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<ureq::Error>())
        .is_some_and(|inner| matches!(inner, ureq::Error::Timeout(_)))
}

/// `error`, after removing the partial download `partial`, whose bytes are no use to a next try.
fn discard(partial: &Path, error: anyhow::Error) -> anyhow::Error {
    let _ = std::fs::remove_file(partial);
    error
}

/// Extracts the `.tar.gz` file `archive` into the directory `into`.
pub(crate) fn extract_tar_gz(archive: &Path, into: &Path) -> Result<()> {
    let file = File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    // `unpack` refuses entries that would land outside `into` (absolute paths, `..`).
    tar::Archive::new(GzDecoder::new(BufReader::new(file)))
        .unpack(into)
        .with_context(|| format!("{}: cannot extract", archive.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    /// The stall timeout the tests wait for.
    const STALL: Duration = Duration::from_secs(1);

    /// How a test server answers.
    #[derive(Clone, Copy)]
    struct Behaviour {
        /// Whether it answers `Range: bytes=N-` with 206 and the rest (else 200 and all).
        honours_range: bool,
        /// Its first answer stops sending (without closing) once this many bytes of the file
        /// are out, until the client hangs up (or 20 s, so a client that never gives up fails
        /// its test instead of hanging it).
        first_stalls_at: Option<usize>,
    }

    /// A loopback HTTP server of one file, answering one request at a time.
    struct Server {
        url: String,
        /// The `Range` header of each request so far, in order (`None`: no such header).
        ranges: Arc<Mutex<Vec<Option<String>>>>,
    }

    impl Server {
        fn start(body: &'static [u8], behaviour: Behaviour) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}/file.bin", listener.local_addr().unwrap());
            let ranges = Arc::new(Mutex::new(Vec::new()));
            let seen = Arc::clone(&ranges);
            std::thread::spawn(move || {
                for (i, stream) in listener.incoming().enumerate() {
                    let stall = behaviour.first_stalls_at.filter(|_| i == 0);
                    answer(stream.unwrap(), body, behaviour.honours_range, stall, &seen);
                }
            });
            Server { url, ranges }
        }

        fn ranges(&self) -> Vec<Option<String>> {
            self.ranges.lock().unwrap().clone()
        }
    }

    fn answer(
        mut stream: TcpStream,
        body: &[u8],
        honours_range: bool,
        stall_at: Option<usize>,
        seen: &Mutex<Vec<Option<String>>>,
    ) {
        let mut request = Vec::new();
        let mut buffer = [0u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buffer) {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buffer[..n]),
            }
        }
        let range = String::from_utf8_lossy(&request).lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("range")
                .then(|| value.trim().to_string())
        });
        seen.lock().unwrap().push(range.clone());
        let from = range
            .filter(|_| honours_range)
            .and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok());
        let head = match from {
            Some(from) => format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {from}-{}/{}\r\n",
                body.len() - 1,
                body.len()
            ),
            None => "HTTP/1.1 200 OK\r\n".to_string(),
        };
        let from = from.unwrap_or(0);
        let head = format!(
            "{head}Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len() - from
        );
        let end = stall_at.unwrap_or(body.len());
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(&body[from..end]);
        if stall_at.is_some() {
            stream
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            let _ = stream.read(&mut buffer);
        }
    }

    /// 300 kB that differ from byte to byte, and their md5.
    fn file() -> (&'static [u8], String) {
        static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let bytes = BYTES.get_or_init(|| {
            (0..300_000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
                .collect()
        });
        (bytes, hex::encode(Md5::digest(bytes)))
    }

    /// A download of `server`'s file into `dir`: the source, the destination, the partial file.
    fn paths(
        server: &Server,
        md5: &str,
        dir: &Path,
    ) -> (Source, std::path::PathBuf, std::path::PathBuf) {
        let source = Source {
            url: server.url.clone(),
            md5: md5.into(),
        };
        (source, dir.join("file.bin"), dir.join(".file.bin.part"))
    }

    #[test]
    fn a_stalled_download_fails_keeps_its_bytes_and_resumes_from_them() {
        let (body, md5) = file();
        let stall_at = 100_000;
        let server = Server::start(
            body,
            Behaviour {
                honours_range: true,
                first_stalls_at: Some(stall_at),
            },
        );
        let dir = tempfile::tempdir().unwrap();
        let (source, dest, partial) = paths(&server, &md5, dir.path());

        let start = Instant::now();
        let err = download(&source, &dest, &partial, STALL).unwrap_err();
        let waited = start.elapsed();
        let text = format!("{err:#}");
        assert!(waited < STALL * 5, "gave up after {waited:?}: {text}");
        let url = &server.url;
        assert!(
            text.starts_with(&format!(
                "downloading {url}: nothing arrived for 1 s after {stall_at} of 300000 bytes"
            )),
            "{text}"
        );
        assert!(!text.contains('\n'), "{text}");
        assert!(!dest.exists());
        assert!(
            std::fs::read(&partial).unwrap() == body[..stall_at],
            "the partial file holds other bytes than the first {stall_at}"
        );

        download(&source, &dest, &partial, STALL).unwrap();
        assert_eq!(server.ranges(), [None, Some(format!("bytes={stall_at}-"))]);
        assert!(
            std::fs::read(&dest).unwrap() == body,
            "wrong bytes downloaded"
        );
        assert!(!partial.exists());
    }

    #[test]
    fn a_server_ignoring_ranges_sends_the_whole_file_again() {
        let (body, md5) = file();
        let server = Server::start(
            body,
            Behaviour {
                honours_range: false,
                first_stalls_at: None,
            },
        );
        let dir = tempfile::tempdir().unwrap();
        let (source, dest, partial) = paths(&server, &md5, dir.path());
        std::fs::write(&partial, &body[..1000]).unwrap();

        download(&source, &dest, &partial, STALL).unwrap();
        assert_eq!(server.ranges(), [Some("bytes=1000-".to_string())]);
        assert!(
            std::fs::read(&dest).unwrap() == body,
            "wrong bytes downloaded"
        );
        assert!(!partial.exists());
    }

    #[test]
    fn an_md5_mismatch_leaves_no_file_and_the_next_try_starts_clean() {
        let (body, md5) = file();
        let server = Server::start(
            body,
            Behaviour {
                honours_range: true,
                first_stalls_at: None,
            },
        );
        let dir = tempfile::tempdir().unwrap();
        let (source, dest, partial) = paths(&server, &md5, dir.path());
        // Kept from another file: resuming after it gives the wrong md5.
        std::fs::write(&partial, vec![0u8; 1000]).unwrap();

        let text = format!(
            "{:#}",
            download(&source, &dest, &partial, STALL).unwrap_err()
        );
        assert!(
            text.contains(&format!("md5 mismatch: expected {md5}")),
            "{text}"
        );
        assert!(!dest.exists() && !partial.exists());

        download(&source, &dest, &partial, STALL).unwrap();
        assert_eq!(
            server.ranges(),
            [Some("bytes=1000-".to_string()), None],
            "the second try asked for the whole file"
        );
        assert!(
            std::fs::read(&dest).unwrap() == body,
            "wrong bytes downloaded"
        );
    }
}
