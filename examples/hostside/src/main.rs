include!(concat!(env!("OUT_DIR"), "/generated.rs"));

extern "C" {
    fn c_answer() -> u32;
}

fn main() {
    let from_macro: u32 = macros::expanded_answer!();
    // SAFETY: c/answer.c takes nothing and returns an unsigned int.
    let from_c = unsafe { c_answer() };
    println!(
        "{from_macro} {FROM_BUILD_SCRIPT} {from_c} {} nightly={NIGHTLY}",
        spawner::doubled(21)
    );
}
