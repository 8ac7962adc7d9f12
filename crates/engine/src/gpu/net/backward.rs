//! [`GpuNet`]'s backward pass (the gradients of every weight from the embeddings' gradient, as
//! launches of the saved forward pass's kernels) and its Adam update, with the cached info
//! buffer of each learning rate.

use burn::backend::wgpu::CubeTensor;
use burn::prelude::*;
use burn::tensor::DType;
use cubecl::server::Handle;

use super::{GpuNet, buffer, empty};
use crate::fused::AdamSettings;
use crate::gpu::PARAMS;
use crate::gpu::kernels::{
    ADAM, CONV1_BACK, CONV2_BACK_INPUT, CONV2_BACK_WEIGHT, DENSE_BACK_INPUT, DENSE_BACK_WEIGHT,
    NORM_BACK, launch, upload_info,
};
use crate::model::{CONV1, CONV2, EMBEDDING_DIM, FLAT, GRID1};

impl GpuNet {
    /// Gradients of the weights (flat, see [`GpuNet::grads`]) from the gradient of the loss
    /// w.r.t. the embeddings of the last [`GpuNet::forward_train`].
    pub fn backward(&mut self, d_embeddings: Tensor<2>) -> Result<(), String> {
        let n = self
            .saved
            .as_ref()
            .ok_or("backward without a forward pass")?
            .n;
        if d_embeddings.dims() != [n, EMBEDDING_DIM] {
            return Err(format!(
                "gradient of shape {:?} for a batch of {n}",
                d_embeddings.dims()
            ));
        }
        self.backward_from(buffer(d_embeddings.inner())?)
    }

    /// [`GpuNet::backward`] from the gradient's buffer.
    pub(super) fn backward_from(&mut self, d: CubeTensor) -> Result<(), String> {
        let s = self
            .saved
            .as_ref()
            .ok_or("backward without a forward pass")?;
        let n = s.n;
        let p = &self.params;
        let info = self.info(&[n as u32]);
        let dz = empty(p, vec![n * EMBEDDING_DIM], DType::F32);
        launch(
            NORM_BACK,
            n * EMBEDDING_DIM,
            &[("z", &s.z), ("d", &d), ("dz", &dz)],
            &info,
        )?;
        let g2 = empty(p, vec![n * FLAT], DType::F32);
        launch(
            DENSE_BACK_INPUT,
            n * FLAT,
            &[("dz", &dz), ("params", p), ("gate2", &s.gate2), ("g2", &g2)],
            &info,
        )?;
        let grads = empty(p, vec![PARAMS], DType::F32);
        launch(
            DENSE_BACK_WEIGHT,
            (FLAT + 1) * EMBEDDING_DIM / 4,
            &[("a2", &s.a2), ("dz", &dz), ("grads", &grads)],
            &info,
        )?;
        launch(
            CONV2_BACK_WEIGHT,
            CONV1 * CONV2 + CONV2,
            &[
                ("a1", &s.a1),
                ("g2", &g2),
                ("arg2", &s.arg2),
                ("grads", &grads),
            ],
            &info,
        )?;
        let g1 = empty(p, vec![n * (GRID1 - 1) * (GRID1 - 1) * CONV1], DType::F32);
        launch(
            CONV2_BACK_INPUT,
            n * (GRID1 - 1) * (GRID1 - 1) * CONV1 / 4,
            &[
                ("g2", &g2),
                ("arg2", &s.arg2),
                ("params", p),
                ("gate1", &s.gate1),
                ("g1", &g1),
            ],
            &info,
        )?;
        launch(
            CONV1_BACK,
            5 * CONV1,
            &[
                ("pixels", &s.pixels),
                ("g1", &g1),
                ("arg1", &s.arg1),
                ("grads", &grads),
            ],
            &info,
        )?;
        self.grads = Some(grads);
        Ok(())
    }

    /// One Adam update with the gradients of the last [`GpuNet::backward`] (Keras' update,
    /// [`AdamSettings::factors`]). `loss` is that batch's loss on the device: when it is not finite the
    /// kernel leaves the weights and moments as they were (the host never reads it).
    pub fn adam_step(&mut self, lr: f64, loss: Tensor<1>) -> Result<(), String> {
        let loss = buffer(loss.inner())?;
        let info = self.adam_info(lr);
        self.adam(&info, &loss)
    }

    /// The next Adam update's parameters at `lr`, uploaded (it counts the update).
    pub(super) fn adam_info(&mut self, lr: f64) -> Handle {
        self.time += 1;
        let AdamSettings { beta_1, beta_2, .. } = self.adam;
        let (combined, eps) = self.adam.factors(self.time);
        let info = [
            PARAMS as u32,
            (lr as f32).to_bits(),
            beta_1.to_bits(),
            beta_2.to_bits(),
            combined.to_bits(),
            eps.to_bits(),
        ];
        upload_info(&self.params, &info)
    }

    /// Adam with the parameters `info` (see [`GpuNet::adam_info`]); `loss`'s first value is the
    /// loss.
    pub(super) fn adam(&mut self, info: &Handle, loss: &CubeTensor) -> Result<(), String> {
        let grads = self.grads.as_ref().ok_or("Adam step without gradients")?;
        let p = &self.params;
        let outs = [(); 3].map(|_| empty(p, vec![PARAMS], DType::F32));
        let [params, m, v] = &outs;
        launch(
            ADAM,
            PARAMS,
            &[
                ("params", p),
                ("grads", grads),
                ("m", &self.moment_1),
                ("v", &self.moment_2),
                ("params_out", params),
                ("m_out", m),
                ("v_out", v),
                ("loss", loss),
            ],
            info,
        )?;
        let [params, m, v] = outs;
        (self.params, self.moment_1, self.moment_2) = (params, m, v);
        Ok(())
    }
}
