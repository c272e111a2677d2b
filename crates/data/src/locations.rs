//! Where data sets are looked for, where downloads go and where they come from.

use std::path::PathBuf;

/// Read-only roots searched before the cache: the Debian package dataset-fashion-mnist
/// installs `/usr/share/datasets/fashion-mnist/`.
const SYSTEM_DIR: &str = "/usr/share/datasets";

/// The official CIFAR-10 binary archive.
const CIFAR10_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
const CIFAR10_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";
/// The official CIFAR-100 binary archive.
const CIFAR100_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz";
const CIFAR100_MD5: &str = "03b5dce01913d631647c71ecec9e9cb8";
/// The official Fashion-MNIST files live under this address.
const FASHION_MNIST_URL: &str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com";

/// A file to download: its address and the md5 it must have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// Where to get it.
    pub url: String,
    /// Its md5 in hex; a download with another md5 is rejected.
    pub md5: String,
}

/// Where downloads come from. The official addresses unless overridden (by tests, or by a
/// mirror named in the environment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirrors {
    /// The CIFAR-10 binary archive (`cifar-10-binary.tar.gz`).
    pub cifar10: Source,
    /// The CIFAR-100 binary archive (`cifar-100-binary.tar.gz`).
    pub cifar100: Source,
    /// The address under which the four Fashion-MNIST `.gz` files lie (their md5s are fixed).
    pub fashion_mnist: String,
}

impl Mirrors {
    /// The addresses the data sets' authors publish.
    pub fn official() -> Mirrors {
        let source = |url: &str, md5: &str| Source {
            url: url.into(),
            md5: md5.into(),
        };
        Mirrors {
            cifar10: source(CIFAR10_URL, CIFAR10_MD5),
            cifar100: source(CIFAR100_URL, CIFAR100_MD5),
            fashion_mnist: FASHION_MNIST_URL.into(),
        }
    }
}

/// Where data sets are looked for and put.
///
/// A data set is looked for as a directory named like its official archive's (e.g.
/// `cifar-10-batches-bin`, `fashion-mnist`) under each of `system_dirs`, then under
/// `cache_dir`; if none has it, it is downloaded into `cache_dir` when `allow_download` is set.
#[derive(Clone, Debug)]
pub struct DataLocations {
    /// Where downloaded data sets are kept and looked for: `datasets/` or `$LANDSCAPE_DATA`.
    pub cache_dir: PathBuf,
    /// Read-only roots searched first, such as `/usr/share/datasets`.
    pub system_dirs: Vec<PathBuf>,
    /// Whether a data set found nowhere may be downloaded into `cache_dir`.
    pub allow_download: bool,
    /// Where downloads come from.
    pub mirrors: Mirrors,
}

/// Where data sets are cached when `LANDSCAPE_DATA` does not say: `./datasets` in a checkout
/// (the folder is there, with its README), else the user's cache, `$XDG_CACHE_HOME/landscape`
/// or `~/.cache/landscape`, so a binary run from any directory downloads each set once.
pub fn default_cache() -> PathBuf {
    let checkout = PathBuf::from("datasets");
    if checkout.is_dir() {
        return checkout;
    }
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    match (var("XDG_CACHE_HOME"), var("HOME")) {
        (Some(cache), _) => PathBuf::from(cache).join("landscape"),
        (None, Some(home)) => PathBuf::from(home).join(".cache").join("landscape"),
        (None, None) => checkout,
    }
}

impl DataLocations {
    /// The locations for this environment: the cache is `$LANDSCAPE_DATA` if set, else
    /// `default_cache`; `/usr/share/datasets` is searched first; downloads are allowed, from
    /// the official addresses unless `LANDSCAPE_CIFAR10_URL`, `LANDSCAPE_CIFAR100_URL` or
    /// `LANDSCAPE_FASHION_MNIST_URL` name a mirror (which must serve the same files).
    pub fn from_env(default_cache: impl Into<PathBuf>) -> DataLocations {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let mut mirrors = Mirrors::official();
        if let Some(url) = var("LANDSCAPE_CIFAR10_URL") {
            mirrors.cifar10.url = url;
        }
        if let Some(url) = var("LANDSCAPE_CIFAR100_URL") {
            mirrors.cifar100.url = url;
        }
        if let Some(url) = var("LANDSCAPE_FASHION_MNIST_URL") {
            mirrors.fashion_mnist = url;
        }
        DataLocations {
            cache_dir: var("LANDSCAPE_DATA").map_or_else(|| default_cache.into(), PathBuf::from),
            system_dirs: vec![PathBuf::from(SYSTEM_DIR)],
            allow_download: true,
            mirrors,
        }
    }

    /// Every place a data set directory called `dir_name` is looked for, in search order.
    pub(crate) fn candidates(&self, dir_name: &str) -> Vec<PathBuf> {
        self.system_dirs
            .iter()
            .chain([&self.cache_dir])
            .map(|root| root.join(dir_name))
            .collect()
    }
}
