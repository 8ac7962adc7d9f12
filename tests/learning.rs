//! Learning, on every native engine: burn's autodiff and the fused host kernels on the CPU, the
//! WGSL kernels and burn's autodiff on wgpu (lavapipe without a GPU). A short run must lower the
//! held-out loss of the untrained net of the same seed well past noise, and the same check must
//! fail when the update is void (see `common::learning`).

mod common;

use common::learning::check_engine;
use tripletlab::backend::cpu_device;
use tripletlab::train::StepEngine;

#[test]
fn the_cpu_engines_learn() {
    check_engine(&cpu_device(), StepEngine::Fused);
    check_engine(&cpu_device(), StepEngine::Autodiff);
}

#[test]
fn the_wgpu_engines_learn() {
    let Some(device) = common::wgpu_device("the_wgpu_engines_learn") else {
        return;
    };
    check_engine(&device, StepEngine::Fused);
    check_engine(&device, StepEngine::Autodiff);
}
