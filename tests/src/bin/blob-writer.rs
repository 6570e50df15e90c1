//! A test-only process that streams stdin into a store as one blob through
//! the library's write path, so tests can kill a writer mid-blob.
//! Usage: blob-writer ROOT [EXPECTED_DIGEST]

fn main() -> std::process::ExitCode {
    berth::exit::run(|| {
        let args: Vec<String> = std::env::args().collect();
        let store = berth::Store::open(&args[1])?;
        let expected = args
            .get(2)
            .map(|d| d.parse::<berth::Digest>())
            .transpose()?;
        let (digest, _) =
            store.put_blob_from(&mut std::io::stdin().lock(), expected.as_ref(), None)?;
        berth::output::result(digest);
        Ok(())
    })
}
