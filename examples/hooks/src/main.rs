use std::collections::BTreeMap;

use hookdemo::{checkout, fragile, on_thread, send, Request, User};

fn main() {
    for path in ["/orders/7", "/nowhere"] {
        let req = Request {
            path: path.to_string(),
            headers: BTreeMap::new(),
        };
        match send(req) {
            Ok(r) => println!("{path}: {} {}", r.status, r.body),
            Err(e) => println!("{path}: error {e}"),
        }
    }
    let user = User {
        id: 42,
        name: "ada".into(),
    };
    println!("checkout: {}", checkout(&user, 1250));
    println!("fragile: {} {} {}", fragile(1), fragile(13), fragile(2));
    println!("on a thread: {}", on_thread(5));
}
