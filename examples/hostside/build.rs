use std::path::Path;

fn main() {
    // A thread of the build script's own, and others through the crates it links.
    let own = std::thread::spawn(|| 20).join().unwrap();
    let shared = spawner::doubled(own);
    let host = hostonly::sum_in_threads(&[1, 1]);
    cc::Build::new().file("c/answer.c").compile("answer");
    let out = std::env::var("OUT_DIR").unwrap();
    let nightly = probe_compiles(&out, Path::new("build/probe.rs"));
    std::fs::write(
        Path::new(&out).join("generated.rs"),
        format!(
            "pub const FROM_BUILD_SCRIPT: u32 = {};\npub const NIGHTLY: bool = {nightly};\n",
            shared + host
        ),
    )
    .unwrap();
    println!("cargo:rerun-if-changed=c/answer.c");
    println!("cargo:rerun-if-changed=build.rs");
}

/// Whether `src` compiles, asked as anyhow's build script asks: through cargo's
/// `RUSTC_WRAPPER`, as crate `hostside_probe`.
fn probe_compiles(out: &str, src: &Path) -> bool {
    println!("cargo:rerun-if-changed={}", src.display());
    let rustc = std::env::var("RUSTC").unwrap();
    let mut cmd = match std::env::var("RUSTC_WRAPPER") {
        Ok(w) if !w.is_empty() => {
            let mut c = std::process::Command::new(w);
            c.arg(rustc);
            c
        }
        _ => std::process::Command::new(rustc),
    };
    cmd.args(["--crate-name", "hostside_probe", "--crate-type=lib", "--emit=metadata"])
        .arg("--out-dir")
        .arg(out)
        .arg(src)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
