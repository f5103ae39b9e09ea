//! Builds the sandbox (pause) binary statically with the machine's C compiler, so the managed
//! containerd's sandbox image is made by rkube itself. Without a compiler or a static libc the
//! binary is empty and the managed runtime refuses to start (an explicit runtime socket still
//! works).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=pause/pause.c");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("pause");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let built = Command::new(&compiler)
        .args(["-static", "-Os", "-s", "-o"])
        .arg(&out)
        .arg("pause/pause.c")
        .status()
        .is_ok_and(|s| s.success());
    if !built {
        println!(
            "cargo:warning=building the static pause binary with {compiler} failed: the managed containerd will be unavailable"
        );
        let _ = std::fs::write(&out, b"");
    }
}
