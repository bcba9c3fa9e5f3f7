use instgo_runtime::hook::CallContext;

pub fn enter(call: &mut CallContext, n: &u32) {
    if *n == 13 {
        panic!("unlucky number");
    }
    call.set_attribute("n", i64::from(*n));
}
