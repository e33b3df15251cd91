//! Resource limits on a real systemd host: a Debian 12 guest (built by
//! tests/vm/build-guest.sh, cached) booted under qemu with Debian's kernel,
//! pure cgroup v2, a lingering test user whose systemd instance delegates
//! cpu, memory and pids. The guest runs tests/vm/checks.sh as that user
//! at boot; this test reads its "@@ name: value" lines and asserts on them.
//! The development machines (hybrid cgroups, no systemd) cannot show any of
//! this; the fallbacks there are tested in tests/run.rs.

mod common;

use common::{hutch_bin, Scratch};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Boot, checks and power-off under TCG take about a minute; this bounds a hang.
const BOOT_LIMIT: Duration = Duration::from_secs(600);

fn cache() -> PathBuf {
    std::env::var_os("HUTCH_VM_CACHE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/cache/hutch-vm"))
}

/// A disk holding hutch (without its debug info: the guest loads it under
/// emulation) and the two scripts.
fn payload(scratch: &Path) -> PathBuf {
    let dir = scratch.join("payload");
    std::fs::create_dir_all(&dir).unwrap();
    let strip = Command::new("objcopy").arg("--strip-debug").arg(hutch_bin()).arg(dir.join("hutch")).status();
    assert!(strip.is_ok_and(|s| s.success()), "objcopy --strip-debug of the hutch binary failed");
    // CI copies them where the test user can read them (the checkout may be in /root).
    let scripts = std::env::var_os("HUTCH_VM_SCRIPTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm"));
    for script in ["guest.sh", "checks.sh"] {
        std::fs::copy(scripts.join(script), dir.join(script)).unwrap();
    }
    let image = scratch.join("payload.img");
    let made = Command::new("mke2fs").args(["-q", "-t", "ext4", "-d"]).arg(&dir).arg(&image).arg("64M").status();
    assert!(made.is_ok_and(|s| s.success()), "mke2fs of the payload disk failed");
    image
}

/// Boots the guest and returns what its checks printed.
fn boot(scratch: &Path) -> HashMap<String, String> {
    let cache = cache();
    let guest = cache.join("guest.img");
    assert!(guest.exists(), "{} is missing: run tests/host-setup.sh as root, which builds it", guest.display());
    let payload = payload(scratch);
    let (console, results) = (scratch.join("console.log"), scratch.join("results.log"));
    let mut qemu = Command::new("qemu-system-x86_64")
        .args(["-accel", "tcg,thread=multi", "-smp", "2", "-m", "1024", "-nographic", "-no-reboot", "-nic", "none"])
        .args(["-monitor", "none", "-kernel"])
        .arg(cache.join("vmlinuz"))
        .arg("-initrd")
        .arg(cache.join("initrd.img"))
        .args(["-append", "console=ttyS0 root=/dev/vda rw quiet panic=-1"])
        .arg("-drive")
        .arg(format!("file={},format=raw,if=virtio,snapshot=on", guest.display()))
        .arg("-drive")
        .arg(format!("file={},format=raw,if=virtio,readonly=on", payload.display()))
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .arg("-serial")
        .arg(format!("file:{}", results.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("qemu-system-x86_64 (tests/host-setup.sh installs it)");
    let deadline = Instant::now() + BOOT_LIMIT;
    while qemu.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = qemu.kill();
            let _ = qemu.wait();
            let tail = std::fs::read_to_string(&console).unwrap_or_default();
            panic!("the guest did not power off within {BOOT_LIMIT:?}; its console ended with:\n{}", last_lines(&tail));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let text = std::fs::read_to_string(&results).unwrap_or_default();
    println!("the guest printed:\n{text}"); // shown when an assertion fails
    let found: HashMap<String, String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("@@ "))
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.to_string(), v.trim().trim_end_matches('|').to_string())))
        .chain(text.lines().any(|l| l == "@@ done").then(|| ("done".to_string(), String::new())))
        .collect();
    assert!(found.contains_key("done"), "the checks did not finish; they printed:\n{text}");
    found
}

fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// The whitespace-separated number after `key` in a `|`-joined file.
fn counter(text: &str, key: &str) -> u64 {
    text.split('|')
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {text:?}"))
}

#[test]
fn limits_are_enforced_through_a_scope_of_the_users_systemd() {
    let scratch = Scratch::new("vm");
    let r = boot(scratch.path());
    let get = |k: &str| r.get(k).cloned().unwrap_or_else(|| panic!("the guest printed no {k:?}: {r:#?}"));

    assert_eq!(get("user-manager"), "up");
    for controller in ["cpu", "memory", "pids"] {
        assert!(get("controllers").split(' ').any(|c| c == controller), "{}", get("controllers"));
    }
    assert_eq!(get("plain"), "plain", "a run without limits needs no cgroup and says nothing");

    assert_eq!(get("oom-status"), "137");
    assert!(get("oom-note").contains("OOMKilled"), "{}", get("oom-note"));
    assert!(get("oom-ps").contains("Exited (137, OOMKilled)"), "{}", get("oom-ps"));
    assert!(get("oom-inspect").contains("true"), "{}", get("oom-inspect"));
    assert!(get("oom-memory").contains(&(64u64 << 20).to_string()), "{}", get("oom-memory"));

    assert_ne!(get("bomb-status"), "0", "the fork bomb fails");
    let forks: u64 = get("bomb-forks").parse().unwrap();
    assert!((10..=19).contains(&forks), "{forks} forks succeeded under --pids-limit 20");
    assert!(get("bomb-error").contains("can't fork"), "{}", get("bomb-error"));
    assert_eq!(get("alive"), "alive", "other containers still start");

    assert_eq!(get("busy-start"), "0");
    assert!(get("busy-cgroup").contains("/user@1001.service/"), "{}", get("busy-cgroup"));
    assert_eq!(get("busy-cpu-max"), "50000 100000");
    assert!(counter(&get("busy-throttled"), "nr_throttled") > 0, "{}", get("busy-throttled"));
    let stats_line = get("busy-stats");
    let stats: Vec<&str> = stats_line.split("   ").map(str::trim).filter(|c| !c.is_empty()).collect();
    let cpu: f64 = stats[2].trim_end_matches('%').parse().unwrap();
    assert!(cpu > 10.0 && cpu < 70.0, "a busy loop under --cpus 0.5 used {cpu}%: {stats:?}");
    assert!(stats[3].ends_with("/ 100MiB"), "{stats:?}");
    assert_eq!(stats.last(), Some(&"1"), "one process: {stats:?}");
    assert_eq!(get("busy-inside"), "0::/|104857600", "exec joins the container's cgroup, which it sees as its root");
    let inspect = get("busy-inspect");
    assert!(inspect.contains("\"NanoCpus\": 500000000") && inspect.contains("\"Enforced\": true"), "{inspect}");
    assert_eq!(get("busy-rm"), "0");
    assert_eq!(get("busy-cgroup-after-rm"), "gone");

    assert_eq!(get("scoped"), "30", "in a delegated scope hutch uses it in place");
    let cpuset = get("cpuset");
    assert!(!cpuset.contains('|') && cpuset.contains("cpuset") && cpuset.contains("not delegated"), "{cpuset}");
    assert_eq!(get("cpuset-status"), "125");
}
