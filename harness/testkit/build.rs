//! Tells the tidy test which target triple the suite was built for, so it
//! asks `cargo metadata` for this platform's dependency graph only.
fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=TIDY_HOST_TARGET={target}");
}
