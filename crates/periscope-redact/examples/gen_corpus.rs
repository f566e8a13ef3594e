//! Regenerates the labelled corpus under `tests/corpus/` (fixed seed, so the
//! output only changes when the generator does):
//!
//! ```sh
//! cargo run -p periscope-redact --example gen_corpus
//! ```

#[path = "../tests/support/labelled.rs"]
mod labelled;

fn main() -> std::io::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    std::fs::create_dir_all(&dir)?;
    for (name, content) in labelled::corpus() {
        std::fs::write(dir.join(name), &content)?;
        println!(
            "{name}: {} lines, {} bytes",
            content.lines().count(),
            content.len()
        );
    }
    Ok(())
}
