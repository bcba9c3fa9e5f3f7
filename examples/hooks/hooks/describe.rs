// Added to the crate by `add_file`: gives the crate's own type a method the hooks use.
impl crate::Response {
    pub fn describe(&self) -> String {
        format!("{} ({} bytes)", self.status, self.body.len())
    }
}
