//! The interactive surface page, loaded in headless Chromium: it draws, logs nothing to the
//! console and requests nothing from the network.
//!
//! Chromium runs with `--dump-dom`, which prints the DOM once the page has loaded and its
//! synchronous script has run; the page records its own success on `<body>` (`data-drawn`, and
//! `data-painted-fraction`, the share of canvas pixels it painted, read back from the canvas).
//! Console messages (including uncaught exceptions) appear in Chromium's stderr log as
//! `CONSOLE` lines. Requests are read from Chromium's net log: the page's own requests are the
//! ones whose network isolation key is the `file://` page (Chromium's background requests have
//! other keys), and DNS is disabled so nothing could leave the machine anyway. A control page
//! that does log and does request something proves both detectors work with the installed
//! Chromium, so a change in its log formats fails the test instead of silently passing it.

use landscape_figures::{Grid2d, linspace, write_surface_html};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const TIMEOUT: Duration = Duration::from_secs(120);

/// What one headless page load showed.
struct Load {
    dom: String,
    console: Vec<String>,
    page_requests: Vec<String>,
}

fn load(page: &Path, scratch: &Path) -> Load {
    let profile = scratch.join("profile");
    let net_log = scratch.join("net-log.json");
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--window-size=1000,700",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--log-net-log={}", net_log.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting chromium");
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            pipe.read_to_string(&mut text)
                .map(|_| text)
                .unwrap_or_default()
        })
    };
    let stdout = reader(Box::new(child.stdout.take().unwrap()));
    let stderr = reader(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            child.kill().unwrap();
            panic!("chromium did not finish in {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (dom, log) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert!(status.success(), "chromium failed ({status}):\n{log}");
    let console = log
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    let net_log = std::fs::read_to_string(&net_log).expect("chromium wrote no net log");
    Load {
        dom,
        console,
        page_requests: page_requests(&net_log),
    }
}

/// URLs requested on behalf of a `file://` page, from a Chromium net log.
fn page_requests(net_log: &str) -> Vec<String> {
    let log: Value = serde_json::from_str(net_log).expect("net log is JSON");
    let events = log["events"].as_array().expect("net log has events");
    let by_source = |want: &dyn Fn(&Value) -> bool| -> Vec<u64> {
        events
            .iter()
            .filter(|e| want(&e["params"]))
            .filter_map(|e| e["source"]["id"].as_u64())
            .collect()
    };
    let from_page = by_source(&|p| {
        p["network_isolation_key"]
            .as_str()
            .is_some_and(|k| k.starts_with("file://"))
    });
    let mut urls: Vec<String> = events
        .iter()
        .filter(|e| {
            e["source"]["id"]
                .as_u64()
                .is_some_and(|id| from_page.contains(&id))
        })
        .filter_map(|e| e["params"]["url"].as_str())
        .filter(|url| {
            !["file:", "data:", "about:"]
                .iter()
                .any(|scheme| url.starts_with(scheme))
        })
        .map(str::to_string)
        .collect();
    urls.sort();
    urls.dedup();
    urls
}

fn body_attribute<'a>(dom: &'a str, name: &str) -> Option<&'a str> {
    let body = &dom[dom.find("<body")?..];
    let body = &body[..body.find('>')?];
    let start = body.find(&format!("{name}=\""))? + name.len() + 2;
    Some(&body[start..start + body[start..].find('"')?])
}

#[test]
fn surface_page_draws_offline_without_errors() {
    if !Path::new(CHROMIUM).exists() {
        // Written to the real stderr, past the test harness' capture, so the skip is visible.
        let message =
            format!("SKIPPED: chromium not found at {CHROMIUM} (Debian package `chromium`)\n");
        std::io::stderr().write_all(message.as_bytes()).unwrap();
        return;
    }
    let dir = tempfile::tempdir().unwrap();

    // The control page does everything the real one must not, so the detectors are proven live.
    let control = dir.path().join("control.html");
    std::fs::write(
        &control,
        r#"<!doctype html><body><img src="http://blocked.invalid/x.png"><script>console.error("control");
        document.body.dataset.drawn = "true";</script></body>"#,
    )
    .unwrap();
    let control_scratch = dir.path().join("control-run");
    let seen = load(&control, &control_scratch);
    assert_eq!(
        seen.page_requests,
        ["http://blocked.invalid/x.png"],
        "net log detector is blind"
    );
    assert_eq!(
        seen.console.len(),
        1,
        "console detector is blind: {:?}",
        seen.console
    );
    assert_eq!(
        body_attribute(&seen.dom, "data-drawn"),
        Some("true"),
        "DOM dump is blind"
    );

    // A landscape with a diverged corner, which the page must leave as a hole.
    let axis = linspace(-1.0, 1.0, 41);
    let grid = Grid2d::from_fn(axis.clone(), linspace(-0.5, 0.5, 21), |x, y| {
        if x > 0.9 && y > 0.4 {
            f64::NAN
        } else {
            (3.0 * x).sin() + 4.0 * y * y + 1.0
        }
    })
    .unwrap();
    let page = dir.path().join("surface.html");
    // A path over it with one point that cannot be drawn (NaN value): the page draws three.
    let trail = [
        [-0.8, -0.4, 2.0],
        [-0.2, 0.0, 1.5],
        [0.1, 0.2, f64::NAN],
        [0.3, 0.1, 1.2],
    ];
    write_surface_html(&page, &grid, "test surface", "train loss", &trail).unwrap();
    let scratch = dir.path().join("surface-run");
    let seen = load(&page, &scratch);
    assert!(
        seen.console.is_empty(),
        "console messages: {:#?}",
        seen.console
    );
    assert!(
        seen.page_requests.is_empty(),
        "network requests: {:?}",
        seen.page_requests
    );
    assert_eq!(
        body_attribute(&seen.dom, "data-drawn"),
        Some("true"),
        "the page did not draw:\n{}",
        seen.dom
    );
    assert_eq!(
        body_attribute(&seen.dom, "data-path-points"),
        Some("3"),
        "the path was not drawn"
    );
    let painted: f64 = body_attribute(&seen.dom, "data-painted-fraction")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        painted > 0.1,
        "canvas nearly blank: {painted} of sampled pixels painted"
    );
    assert!(
        seen.dom.contains("<title>test surface</title>"),
        "the script set the title"
    );
}
