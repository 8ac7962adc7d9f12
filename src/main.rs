//! `tripletlab` — the native CLI (train / eval / loss). In the browser build this binary is the
//! page instead (see `tripletlab::web`).
//!
//! Every failure ends in one line on stderr and a non-zero exit. A training run that fails after
//! it started (the loss diverged, a device failed) still writes its outputs for the last state
//! the engine kept (an engine never applies a step whose loss is not finite), with the error in
//! `metrics.json`.

#[cfg(target_arch = "wasm32")]
fn main() {
    tripletlab::app::start();
}

#[cfg(all(not(target_arch = "wasm32"), feature = "engine"))]
fn main() {
    cli::main();
}

#[cfg(all(not(target_arch = "wasm32"), not(feature = "engine")))]
fn main() -> std::process::ExitCode {
    eprintln!("this tripletlab was built without the `engine` feature: nothing to train with");
    std::process::ExitCode::from(2)
}

#[cfg(all(not(target_arch = "wasm32"), feature = "engine"))]
mod cli;
