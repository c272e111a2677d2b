//! CIFAR-10 and CIFAR-100 through the public API: files in the official binary format
//! written here (full record counts, cheap content), damaged files, and real downloads from
//! a loopback HTTP server this test starts.

use flate2::{Compression, write::GzEncoder};
use landscape_data::{
    DataLocations, DatasetName, ImageSet, Mirrors, Normalization, Source, SyntheticConfig, load,
};
use md5::{Digest, Md5};
use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::OnceLock;

/// One of the two binary layouts, as the test writes it.
struct Layout {
    name: DatasetName,
    dir: &'static str,
    train: &'static [&'static str],
    test: &'static str,
    label_bytes: usize,
    classes: usize,
    names_file: &'static str,
}

const CIFAR10: Layout = Layout {
    name: DatasetName::Cifar10,
    dir: "cifar-10-batches-bin",
    train: &[
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
    ],
    test: "test_batch.bin",
    label_bytes: 1,
    classes: 10,
    names_file: "batches.meta.txt",
};

const CIFAR100: Layout = Layout {
    name: DatasetName::Cifar100,
    dir: "cifar-100-binary",
    train: &["train.bin"],
    test: "test.bin",
    label_bytes: 2,
    classes: 100,
    names_file: "fine_label_names.txt",
};

/// The content of one data file: `records` records for split images `first..`, labelled
/// `i % classes`, black but for three marker pixels: R(0,0) = i % 251, G(0,1) = 200 and
/// B(31,31) = 100 + split (0 train, 1 test).
fn records(layout: &Layout, split: u8, first: usize, records: usize) -> Vec<u8> {
    let size = layout.label_bytes + 3072;
    let mut bytes = vec![0u8; records * size];
    for (r, record) in bytes.chunks_exact_mut(size).enumerate() {
        let i = first + r;
        let fine = (i % layout.classes) as u8;
        record[0] = fine / 5; // CIFAR-100's coarse label; overwritten by CIFAR-10's only label
        record[layout.label_bytes - 1] = fine;
        let pixels = &mut record[layout.label_bytes..];
        pixels[0] = (i % 251) as u8;
        pixels[1024 + 1] = 200;
        pixels[2048 + 1023] = 100 + split;
    }
    bytes
}

/// Calls `f` with the name and content of each file of `layout`, in the official format.
fn for_each_file(layout: &Layout, mut f: impl FnMut(&str, &[u8])) {
    let per_file = 50_000 / layout.train.len();
    for (k, file) in layout.train.iter().enumerate() {
        f(file, &records(layout, 0, k * per_file, per_file));
    }
    f(layout.test, &records(layout, 1, 0, 10_000));
    let names: String = (0..layout.classes).map(|c| format!("name {c}\n")).collect();
    // The official CIFAR-10 file ends with blank lines.
    f(layout.names_file, format!("{names}\n\n").as_bytes());
}

/// Writes `layout`'s directory under `root`.
fn write_files(root: &Path, layout: &Layout) {
    let dir = root.join(layout.dir);
    fs::create_dir_all(&dir).unwrap();
    for_each_file(layout, |name, bytes| {
        fs::write(dir.join(name), bytes).unwrap()
    });
}

/// Locations with `system` as the only system dir and `cache` as the cache.
fn locations(system: &Path, cache: &Path, allow_download: bool) -> DataLocations {
    DataLocations {
        cache_dir: cache.to_path_buf(),
        system_dirs: vec![system.to_path_buf()],
        allow_download,
        mirrors: Mirrors::official(),
    }
}

/// Checks labels, marker pixels and class names of a loaded set written by `records`.
fn check_round_trip(layout: &Layout, set: &ImageSet, split: u8, n: usize) {
    assert_eq!(set.len(), n);
    assert_eq!(set.images.len(), n * 3072);
    for i in [0, 1, 9_999, n - 1] {
        assert_eq!(
            set.labels[i] as usize,
            i % layout.classes,
            "label of image {i}"
        );
        let image = set.image(i);
        assert_eq!(image[0], (i % 251) as u8, "R plane (0,0) of image {i}");
        assert_eq!(image[1024 + 1], 200, "G plane (0,1) of image {i}");
        assert_eq!(
            image[2048 + 1023],
            100 + split,
            "B plane (31,31) of image {i}"
        );
        assert_eq!(
            image.iter().filter(|&&b| b != 0).count(),
            2 + usize::from(i % 251 != 0)
        );
    }
}

fn round_trip(layout: &Layout) {
    let root = tempfile::tempdir().unwrap();
    write_files(root.path(), layout);
    let locs = locations(root.path(), &root.path().join("cache"), false);
    let data = load(&layout.name, &locs, &SyntheticConfig::default()).unwrap();
    check_round_trip(layout, &data.train, 0, 50_000);
    check_round_trip(layout, &data.test, 1, 10_000);
    assert_eq!(data.classes, layout.classes);
    assert_eq!(data.class_names[0], "name 0");
    assert_eq!(
        data.class_names[layout.classes - 1],
        format!("name {}", layout.classes - 1)
    );
    assert_eq!(
        data.source,
        root.path().join(layout.dir).display().to_string()
    );
    assert!(
        data.info()
            .contains("50000 train, 10000 test, each 3x32x32")
    );
}

#[test]
fn cifar10_round_trip_with_the_paper_normalization() {
    round_trip(&CIFAR10);
    let root = tempfile::tempdir().unwrap();
    write_files(root.path(), &CIFAR10);
    let locs = locations(root.path(), &root.path().join("cache"), false);
    let data = load(&DatasetName::Cifar10, &locs, &SyntheticConfig::default()).unwrap();
    assert_eq!(data.normalization, Normalization::CIFAR10);
}

#[test]
fn cifar100_round_trip_uses_fine_labels() {
    round_trip(&CIFAR100);
}

/// The one-line error of loading CIFAR-10 after `damage` changed its files.
fn error_after(damage: impl FnOnce(&Path)) -> (String, String) {
    let root = tempfile::tempdir().unwrap();
    write_files(root.path(), &CIFAR10);
    let dir = root.path().join(CIFAR10.dir);
    damage(&dir);
    let locs = locations(root.path(), &root.path().join("cache"), false);
    let err = load(&DatasetName::Cifar10, &locs, &SyntheticConfig::default()).unwrap_err();
    let text = format!("{err:#}");
    assert!(!text.contains('\n'), "one line: {text}");
    (text, dir.display().to_string())
}

#[test]
fn truncated_file_is_named_with_its_size() {
    let (text, dir) = error_after(|dir| {
        let file = fs::OpenOptions::new()
            .write(true)
            .open(dir.join("data_batch_3.bin"))
            .unwrap();
        file.set_len(30_729_999).unwrap();
    });
    assert_eq!(
        text,
        format!(
            "{dir}/data_batch_3.bin: truncated: 30729999 bytes is not 10000 records of 3073 bytes"
        )
    );
}

#[test]
fn out_of_range_label_is_named_with_its_record() {
    let (text, dir) = error_after(|dir| {
        let path = dir.join("test_batch.bin");
        let mut bytes = fs::read(&path).unwrap();
        bytes[7 * 3073] = 10;
        fs::write(&path, bytes).unwrap();
    });
    assert_eq!(
        text,
        format!("{dir}/test_batch.bin: record 7: label 10 is out of range (a class below 10)")
    );
}

#[test]
fn missing_file_is_named() {
    let (text, dir) = error_after(|dir| fs::remove_file(dir.join("data_batch_5.bin")).unwrap());
    assert!(
        text.starts_with(&format!("{dir}/data_batch_5.bin: cannot read: ")),
        "{text}"
    );
    assert!(text.contains("No such file"), "{text}");
}

#[test]
fn wrong_class_name_count_is_named() {
    let (text, dir) =
        error_after(|dir| fs::write(dir.join("batches.meta.txt"), "cat\ndog\n").unwrap());
    assert_eq!(
        text,
        format!("{dir}/batches.meta.txt: 2 class names, expected 10")
    );
}

/// `cifar-10-binary.tar.gz` in the official layout, and its md5, built once.
fn archive() -> &'static (Vec<u8>, String) {
    static ARCHIVE: OnceLock<(Vec<u8>, String)> = OnceLock::new();
    ARCHIVE.get_or_init(|| {
        let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        for_each_file(&CIFAR10, |name, bytes| {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            tar.append_data(&mut header, format!("{}/{name}", CIFAR10.dir), bytes)
                .unwrap();
        });
        let bytes = tar.into_inner().unwrap().finish().unwrap();
        let md5 = hex::encode(Md5::digest(&bytes));
        (bytes, md5)
    })
}

/// Serves `body` to one request on a loopback port, announcing its full length but sending
/// only the first `send` bytes before closing. Returns the URL.
fn serve_once(body: &'static [u8], send: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/cifar-10-binary.tar.gz",
        listener.local_addr().unwrap()
    );
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buffer = [0u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buffer) {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buffer[..n]),
            }
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(&body[..send]);
    });
    url
}

/// The file that serializes installs of CIFAR-10 into a cache; it stays there.
const INSTALL_LOCK: &str = ".cifar-10-batches-bin.lock";

/// The bytes of an unfinished CIFAR-10 download, kept in the cache for the next try.
const PARTIAL: &str = ".cifar-10-batches-bin.cifar-10-binary.tar.gz.part";

/// A cache directory in a fresh temporary directory, with downloads from `source`.
fn downloading(root: &Path, source: Source) -> DataLocations {
    let mut locs = locations(&root.join("system"), &root.join("cache"), true);
    locs.mirrors.cifar10 = source;
    locs
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn download_verifies_extracts_and_loads() {
    let (bytes, md5) = archive();
    let url = serve_once(bytes, bytes.len());
    let root = tempfile::tempdir().unwrap();
    let locs = downloading(
        root.path(),
        Source {
            url,
            md5: md5.clone(),
        },
    );
    let data = load(&DatasetName::Cifar10, &locs, &SyntheticConfig::default()).unwrap();
    check_round_trip(&CIFAR10, &data.train, 0, 50_000);
    check_round_trip(&CIFAR10, &data.test, 1, 10_000);
    assert_eq!(
        entries(&locs.cache_dir),
        [INSTALL_LOCK, "cifar-10-batches-bin"],
        "only the data set is kept"
    );
    // Found in the cache now: the server (gone after one request) is not asked again.
    let again = load(&DatasetName::Cifar10, &locs, &SyntheticConfig::default()).unwrap();
    assert_eq!(again.fingerprint, data.fingerprint);
}

#[test]
fn checksum_mismatch_names_both_md5s_and_leaves_nothing() {
    let (bytes, md5) = archive();
    let url = serve_once(bytes, bytes.len());
    let root = tempfile::tempdir().unwrap();
    let wrong = "0123456789abcdef0123456789abcdef";
    let locs = downloading(
        root.path(),
        Source {
            url: url.clone(),
            md5: wrong.into(),
        },
    );
    let err = load(&DatasetName::Cifar10, &locs, &SyntheticConfig::default()).unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains(&format!(
            "cifar-10-binary.tar.gz from {url}: md5 mismatch: expected {wrong}, got {md5}"
        )),
        "{text}"
    );
    assert!(!text.contains('\n'), "{text}");
    assert_eq!(
        entries(&locs.cache_dir),
        [INSTALL_LOCK],
        "partial files left"
    );
}

#[test]
fn connection_closed_mid_body_keeps_the_bytes_for_the_next_try() {
    let (bytes, md5) = archive();
    let half = bytes.len() / 2;
    let url = serve_once(bytes, half);
    let root = tempfile::tempdir().unwrap();
    let mut locs = downloading(
        root.path(),
        Source {
            url: url.clone(),
            md5: md5.clone(),
        },
    );
    let err = load(&DatasetName::Cifar10, &locs, &SyntheticConfig::default()).unwrap_err();
    let text = format!("{err:#}");
    let partial = locs.cache_dir.join(PARTIAL);
    assert!(
        text.contains(&format!(
            "downloading {url}: connection lost after {half} of {} bytes; kept in {}",
            bytes.len(),
            partial.display()
        )),
        "{text}"
    );
    assert_eq!(entries(&locs.cache_dir), [PARTIAL, INSTALL_LOCK]);
    assert!(
        fs::read(&partial).unwrap() == bytes[..half],
        "the partial file holds other bytes than the first {half}"
    );

    // This server ignores the range asked for and sends the whole file: it is taken whole.
    locs.mirrors.cifar10.url = serve_once(bytes, bytes.len());
    load(&DatasetName::Cifar10, &locs, &SyntheticConfig::default()).unwrap();
    assert_eq!(
        entries(&locs.cache_dir),
        [INSTALL_LOCK, "cifar-10-batches-bin"]
    );
}

#[test]
fn offline_says_which_files_to_put_where() {
    // A port that was free a moment ago: nothing listens there, the connection is refused.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/cifar-10-binary.tar.gz");
    let root = tempfile::tempdir().unwrap();
    let locs = downloading(
        root.path(),
        Source {
            url: url.clone(),
            md5: archive().1.clone(),
        },
    );
    let text = format!(
        "{:#}",
        load(&DatasetName::Cifar10, &locs, &SyntheticConfig::default()).unwrap_err()
    );
    let target = locs.cache_dir.join("cifar-10-batches-bin");
    let expected = format!(
        "put data_batch_1.bin, data_batch_2.bin, data_batch_3.bin, data_batch_4.bin, \
         data_batch_5.bin, test_batch.bin, batches.meta.txt in {} (extracted from {url}",
        target.display()
    );
    assert!(text.contains(&expected), "{text}");
    assert!(
        text.contains("the download failed") && text.contains("onnection refused"),
        "{text}"
    );
    assert!(!text.contains('\n'), "{text}");
    assert_eq!(entries(&locs.cache_dir), [INSTALL_LOCK]);
}

#[test]
fn downloads_off_names_the_official_address() {
    let root = tempfile::tempdir().unwrap();
    let locs = locations(
        &root.path().join("system"),
        &root.path().join("cache"),
        false,
    );
    let text = format!(
        "{:#}",
        load(&DatasetName::Cifar100, &locs, &SyntheticConfig::default()).unwrap_err()
    );
    assert!(text.starts_with("cifar100: not found in "), "{text}");
    assert!(text.contains("downloads are off"), "{text}");
    assert!(
        text.contains("put train.bin, test.bin, fine_label_names.txt in "),
        "{text}"
    );
    assert!(
        text.contains("https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz (md5 03b5dce01913d631647c71ecec9e9cb8)"),
        "{text}"
    );
}
