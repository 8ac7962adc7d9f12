//! The page's Web Worker binary: trunk builds it for wasm32 beside the page (see `index.html`);
//! everything it does is in the `tripletlab_worker` library.

#[cfg(target_arch = "wasm32")]
fn main() {
    tripletlab_worker::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    eprintln!(
        "tripletlab-worker is the web page's worker: trunk builds it for wasm32 (make serve); use `tripletlab` on the command line"
    );
    std::process::ExitCode::from(2)
}
