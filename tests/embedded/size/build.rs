//! Puts `memory.x` where `cortex-m-rt`'s `link.x` finds it, and links with `link.x` (here
//! rather than in `.cargo/config.toml`, which a `RUSTFLAGS` in the environment would override).
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    fs::copy("memory.x", out.join("memory.x")).unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rustc-link-arg=-Tlink.x");
}
