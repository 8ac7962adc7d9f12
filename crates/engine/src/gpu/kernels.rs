//! The WGSL kernels: their sources (a header generated from the Rust constants, an optional
//! prelude, the body, one shared entry point), the names of their bindings, [`launch`] and the
//! upload of a launch's parameters ([`upload_info`]). Knows no net and no loss: `net` and
//! `loss` decide what runs on which buffers.

use burn::backend::wgpu::{CubeDim, CubeTensor, KernelSource, SourceKernel, SourceTemplate};
use cubecl::CubeCount;
use cubecl::prelude::KernelId;
use cubecl::server::{Handle, KernelArguments};

use crate::model::{
    CONV1, CONV2, EMBEDDING_DIM, FLAT, GRID1, GRID1_CELLS, IMAGE_PIXELS, IMAGE_SIDE, PARAM_SIZES,
    SIDE2,
};

/// Threads per workgroup (every kernel is one-dimensional).
const WORKGROUP: u32 = 64;
/// Most workgroups along one dispatch dimension (WebGPU's guaranteed limit).
const MAX_GROUPS: usize = 65_535;
/// One WGSL kernel: its name (the compilation cache key), shared declarations it needs after
/// the header, its body, and the names of its buffers in `@binding` order (the one place they
/// are written in Rust: every launch passes its buffers by these names, and a test reads them
/// back from the WGSL). A last binding, `info`, holds the launch's `u32` parameters.
#[derive(Clone, Copy)]
pub(super) struct Wgsl {
    name: &'static str,
    prelude: &'static str,
    body: &'static str,
    bindings: &'static [&'static str],
}

/// The pixels binding and the padded `pixel` reader (stage 1 and conv1's backward pass).
const PIXELS_PRELUDE: &str = include_str!("pixels.wgsl");
/// A row's label, read from the loss's parameters (the four loss kernels).
const LOSS_PRELUDE: &str = "fn label(i: u32) -> u32 {\n    return info[L_LABELS + i];\n}\n";

macro_rules! kernel {
    ($name:ident, $bindings:expr) => {
        kernel!($name, "", $bindings)
    };
    ($name:ident, $prelude:expr, $bindings:expr) => {
        Wgsl {
            name: stringify!($name),
            prelude: $prelude,
            bindings: &$bindings,
            body: include_str!(concat!(stringify!($name), ".wgsl")),
        }
    };
}

pub(super) const STAGE1: Wgsl = kernel!(
    stage1,
    PIXELS_PRELUDE,
    ["pixels", "params", "mask", "a1", "arg1", "gate1"]
);
pub(super) const STAGE2: Wgsl = kernel!(stage2, ["a1", "params", "mask", "a2", "arg2", "gate2"]);
pub(super) const DENSE: Wgsl = kernel!(dense, ["a2", "params", "z"]);
pub(super) const NORMALIZE: Wgsl = kernel!(normalize, ["z", "emb"]);
pub(super) const NORM_BACK: Wgsl = kernel!(norm_back, ["z", "d", "dz"]);
pub(super) const DENSE_BACK_INPUT: Wgsl =
    kernel!(dense_back_input, ["dz", "params", "gate2", "g2"]);
pub(super) const DENSE_BACK_WEIGHT: Wgsl = kernel!(dense_back_weight, ["a2", "dz", "grads"]);
pub(super) const CONV2_BACK_WEIGHT: Wgsl =
    kernel!(conv2_back_weight, ["a1", "g2", "arg2", "grads"]);
pub(super) const CONV2_BACK_INPUT: Wgsl =
    kernel!(conv2_back_input, ["g2", "arg2", "params", "gate1", "g1"]);
pub(super) const CONV1_BACK: Wgsl = kernel!(
    conv1_back,
    PIXELS_PRELUDE,
    ["pixels", "g1", "arg1", "grads"]
);
pub(super) const ADAM: Wgsl = kernel!(
    adam,
    [
        "params",
        "grads",
        "m",
        "v",
        "params_out",
        "m_out",
        "v_out",
        "loss"
    ]
);

pub(super) const LOSS_DIST: Wgsl = kernel!(loss_dist, LOSS_PRELUDE, ["emb", "dist", "cosv", "sq"]);
pub(super) const LOSS_SELECT: Wgsl = kernel!(loss_select, LOSS_PRELUDE, ["dist", "neg"]);
pub(super) const LOSS_ROWS: Wgsl = kernel!(loss_rows, LOSS_PRELUDE, ["dist", "neg", "g", "rowsum"]);
pub(super) const LOSS_GRAD: Wgsl = kernel!(
    loss_grad,
    LOSS_PRELUDE,
    [
        "emb", "dist", "cosv", "sq", "g", "rowsum", "grad", "readout"
    ]
);

/// The loss kernels' parameters (`info`), in this order, then the `B` labels as class numbers.
/// The names are the WGSL constants' (`L_B`, ...), written into every kernel's header.
pub(super) const LOSS_INFO: [&str; 10] = [
    "B",
    "D",
    "METRIC",
    "MINING",
    "SOFT",
    "MARGIN",
    "TERMS",
    "NO_NEGATIVE",
    "ONE_CLASS",
    "DENOMINATOR",
];
/// `info[L_METRIC]`: the distance, as [`tripletlab_core::run::Metric`]'s variants in order.
pub(super) const METRICS: [(&str, tripletlab_core::run::Metric); 3] = [
    ("METRIC_L2", tripletlab_core::run::Metric::L2),
    ("METRIC_SQUARED", tripletlab_core::run::Metric::SquaredL2),
    ("METRIC_ANGULAR", tripletlab_core::run::Metric::Angular),
];
/// `info[L_MINING]`.
pub(super) const MINING_SEMI_HARD: u32 = 0;
/// `info[L_MINING]`.
pub(super) const MINING_HARD: u32 = 1;
/// A pair's chosen column when it has no semi-hard negative (it falls back).
const NONE: u32 = u32::MAX;

/// Every kernel, for the tests.
#[cfg(test)]
const ALL: [Wgsl; 15] = [
    STAGE1,
    STAGE2,
    DENSE,
    NORMALIZE,
    NORM_BACK,
    DENSE_BACK_INPUT,
    DENSE_BACK_WEIGHT,
    CONV2_BACK_WEIGHT,
    CONV2_BACK_INPUT,
    CONV1_BACK,
    ADAM,
    LOSS_DIST,
    LOSS_SELECT,
    LOSS_ROWS,
    LOSS_GRAD,
];

/// The entry point every kernel ends with: the thread's linear index (dispatches wider than
/// [`MAX_GROUPS`] workgroups use a second dimension) handed to the kernel's `run`.
const ENTRY: &str = "
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    run(gid.x + gid.y * groups.x * WG);
}
";

/// Constants and helpers every kernel starts with, generated from the Rust constants so the
/// two cannot disagree.
fn header() -> String {
    let mut offsets = [0usize; 6];
    for i in 1..6 {
        offsets[i] = offsets[i - 1] + PARAM_SIZES[i - 1];
    }
    let consts = [
        ("WG", WORKGROUP as usize),
        ("SIDE", IMAGE_SIDE),
        ("PIXELS", IMAGE_PIXELS),
        ("CONV1", CONV1),
        ("CONV2", CONV2),
        ("GRID", GRID1),
        ("CELLS", GRID1_CELLS),
        ("SIDE1", GRID1 - 1),
        ("UNITS1", (GRID1 - 1) * (GRID1 - 1)),
        ("SIDE2", SIDE2),
        ("UNITS2", SIDE2 * SIDE2),
        ("FLAT", FLAT),
        ("EMB", EMBEDDING_DIM),
        ("W1", offsets[0]),
        ("B1", offsets[1]),
        ("W2", offsets[2]),
        ("B2", offsets[3]),
        ("W3", offsets[4]),
        ("B3", offsets[5]),
    ];
    let mut out = String::new();
    for (name, value) in consts {
        out.push_str(&format!("const {name}: u32 = {value}u;\n"));
    }
    for (index, name) in LOSS_INFO.iter().enumerate() {
        out.push_str(&format!("const L_{name}: u32 = {index}u;\n"));
    }
    out.push_str(&format!("const L_LABELS: u32 = {}u;\n", LOSS_INFO.len()));
    for (index, (name, _)) in METRICS.iter().enumerate() {
        out.push_str(&format!("const {name}: u32 = {index}u;\n"));
    }
    out.push_str(&format!(
        "const MINING_SEMI_HARD: u32 = {MINING_SEMI_HARD}u;\nconst MINING_HARD: u32 = {MINING_HARD}u;\nconst NONE: u32 = {NONE}u;\n"
    ));
    out.push_str(
        "fn is_nan(x: f32) -> bool {\n    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;\n}\n\
         fn is_nan4(x: vec4<f32>) -> vec4<bool> {\n    return (bitcast<vec4<u32>>(x) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);\n}\n\
         fn is_finite(x: f32) -> bool {\n    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;\n}\n\
         fn relu_tf(x: f32) -> f32 {\n    return select(select(0.0, x, x >= 0.0), x, is_nan(x));\n}\n\
         // A NaN made at run time from any value: a constant expression that evaluates to NaN\n\
         // does not compile (Tint).\n\
         fn nan_from(x: u32) -> f32 {\n    return bitcast<f32>(0x7fc00000u | (x & 0u));\n}\n",
    );
    out
}

impl KernelSource for Wgsl {
    fn source(&self) -> SourceTemplate {
        SourceTemplate::new(header())
            .add_template(self.prelude)
            .add_template(self.body)
            .add_template(ENTRY)
    }

    fn id(&self) -> KernelId {
        KernelId::new::<Self>().info(self.name)
    }

    fn lang(&self) -> &'static str {
        "wgsl"
    }
}

/// Uploads a launch's `u32` parameters (its last binding, `info`). Each upload is a write to
/// the queue, which submits the work recorded before it: a step uploads everything it needs
/// before its first launch, so its launches go to the device in one submit.
pub(super) fn upload_info(like: &CubeTensor, info: &[u32]) -> Handle {
    let bytes: Vec<u8> = info.iter().flat_map(|v| v.to_le_bytes()).collect();
    like.client.create_from_slice(&bytes)
}

/// Launches `kernel` with one thread per index below `threads`, on `buffers` named as the
/// kernel names its bindings (in that order), followed by `info` (see [`upload_info`]).
pub(super) fn launch(
    kernel: Wgsl,
    threads: usize,
    buffers: &[(&str, &CubeTensor)],
    info: &Handle,
) -> Result<(), String> {
    let names = buffers.iter().map(|(name, _)| *name);
    if !names.clone().eq(kernel.bindings.iter().copied()) {
        return Err(format!(
            "{} takes {:?}, was given {:?}",
            kernel.name,
            kernel.bindings,
            names.collect::<Vec<_>>()
        ));
    }
    let client = &buffers[0].1.client;
    let groups = threads.div_ceil(WORKGROUP as usize).max(1);
    let (x, y) = if groups <= MAX_GROUPS {
        (groups, 1)
    } else {
        (MAX_GROUPS, groups.div_ceil(MAX_GROUPS))
    };
    let mut bindings: Vec<_> = buffers
        .iter()
        .map(|(_, t)| t.handle.clone().binding())
        .collect();
    bindings.push(info.clone().binding());
    client.launch(
        Box::new(SourceKernel::new(kernel, CubeDim::new_1d(WORKGROUP))),
        CubeCount::Static(x as u32, y as u32, 1),
        KernelArguments::new().with_buffers(bindings),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_have_no_template_markers() {
        for k in ALL {
            let text = format!("{}{}", k.prelude, k.body);
            assert!(!text.contains("{{") && !text.contains("}}"), "{}", k.name);
            assert!(
                k.body.contains("fn run(id: u32)"),
                "{} is called through ENTRY",
                k.name
            );
        }
        assert!(!header().contains("{{"));
        assert!(
            ENTRY.contains(&format!("@workgroup_size({WORKGROUP})")),
            "ENTRY must match WORKGROUP"
        );
    }

    #[test]
    fn header_offsets_follow_the_weight_order() {
        let h = header();
        assert!(h.contains("const W1: u32 = 0u;"));
        assert!(h.contains("const B1: u32 = 256u;"));
        assert!(h.contains("const W3: u32 = 8544u;"));
        assert!(h.contains("const B3: u32 = 409952u;"));
        assert_eq!(super::super::PARAMS, 410_208);
    }

    #[test]
    fn every_kernel_s_bindings_are_named_as_its_wgsl_declares_them() {
        for k in ALL {
            let text = format!("{}{}", k.prelude, k.body);
            let mut declared: Vec<(usize, String)> = text
                .lines()
                .filter_map(|line| {
                    let rest = line.trim().strip_prefix("@group(0) @binding(")?;
                    let (index, rest) = rest.split_once(')')?;
                    let name = rest.split_once('>')?.1.trim().split(':').next()?.trim();
                    Some((index.parse().ok()?, name.to_string()))
                })
                .collect();
            declared.sort();
            let names: Vec<&str> = declared.iter().map(|(_, n)| n.as_str()).collect();
            let indices: Vec<usize> = declared.iter().map(|(i, _)| *i).collect();
            assert_eq!(
                indices,
                (0..declared.len()).collect::<Vec<_>>(),
                "{}",
                k.name
            );
            let mut expected = k.bindings.to_vec();
            expected.push("info");
            assert_eq!(names, expected, "{}", k.name);
        }
    }
}
