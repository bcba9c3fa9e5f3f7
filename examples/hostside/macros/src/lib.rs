use proc_macro::TokenStream;

/// `42u32`, worked out at expansion time on threads.
#[proc_macro]
pub fn expanded_answer(_input: TokenStream) -> TokenStream {
    let v = spawner::doubled(hostonly::sum_in_threads(&[10, 11]));
    format!("{v}u32").parse().unwrap()
}
