//! Placeholder; the criterion benchmark lands in a later commit.
fn main() {}
