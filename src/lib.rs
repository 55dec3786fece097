//! The root package of the Portcullis workspace. It holds no code of its own:
//! it hosts the workspace's integration tests (`tests/`) and the embedding
//! examples (`examples/`), which use `portcullis-core` as any embedder would.
#![forbid(unsafe_code)]
