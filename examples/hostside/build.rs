use std::path::Path;

fn main() {
    // A thread of the build script's own, and others through the crates it links.
    let own = std::thread::spawn(|| 20).join().unwrap();
    let shared = spawner::doubled(own);
    let host = hostonly::sum_in_threads(&[1, 1]);
    cc::Build::new().file("c/answer.c").compile("answer");
    let out = std::env::var("OUT_DIR").unwrap();
    std::fs::write(
        Path::new(&out).join("generated.rs"),
        format!("pub const FROM_BUILD_SCRIPT: u32 = {};\n", shared + host),
    )
    .unwrap();
    println!("cargo:rerun-if-changed=c/answer.c");
    println!("cargo:rerun-if-changed=build.rs");
}
