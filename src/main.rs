//! The `tripletlab` binary: the page on wasm32 (trunk builds it, see `index.html`), the native
//! command line elsewhere (`tripletlab-cli`).

#[cfg(target_arch = "wasm32")]
fn main() {
    tripletlab::app::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    tripletlab_cli::main();
}
