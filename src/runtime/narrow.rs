//! The f32 path of a batched run ([`crate::dtype::Dtype::F32`]): the
//! parameters rounded to f32 once per batch by the engine (the optimizer
//! keeps its f64 master copy and updates it in f64), the batch's rows rounded to f32
//! as they are gathered (once per batch buffer), and the f32 results
//! widened (exactly) to the engine's f64 buffers. The buffers are allocated
//! once and reused, so a step allocates nothing once they have grown.

use crate::backend::{BatchedFunction, Scratch};
use crate::ir::RunError;

use super::engine::recycle;
use super::Dataset;

/// The f32 buffers of an [`super::engine::Engine`] in f32.
#[derive(Default)]
pub(super) struct Narrow {
    /// Per input, the current batch's rows, rounded.
    gather: Vec<Vec<f32>>,
    /// Per buffer the batched code writes, its f32 result.
    outs: Vec<Vec<f32>>,
    /// Pointer vectors kept between calls for their allocations (always
    /// empty between calls).
    param_ptrs: Vec<&'static [f32]>,
    input_ptrs: Vec<&'static [f32]>,
    out_ptrs: Vec<&'static mut [f32]>,
}

impl Narrow {
    /// One call of `f` (compiled for f32) on `rows` of `data` (one example
    /// without data) at the rounded parameters `params`; its results widened into `outs`, the
    /// engine's buffers of the outputs the code writes, in order.
    pub(super) fn call(
        &mut self,
        f: &BatchedFunction,
        scratch: &mut Scratch,
        params: &[Vec<f32>],
        data: Option<&Dataset>,
        rows: &[usize],
        outs: &mut [&mut [f64]],
    ) -> Result<(), RunError> {
        let n = if data.is_some() { rows.len() } else { 1 };
        let inputs = f.function().inputs.len();
        self.gather.resize_with(inputs, Vec::new);
        for (k, buf) in self.gather.iter_mut().enumerate() {
            buf.clear();
            if let Some(d) = data {
                for &r in rows {
                    buf.extend(d.example(k, r).iter().map(|&x| x as f32));
                }
            }
        }
        self.outs.resize_with(outs.len(), Vec::new);
        for (buf, o) in self.outs.iter_mut().zip(outs.iter()) {
            buf.resize(o.len(), 0.0);
        }
        let mut ps: Vec<&[f32]> = recycle(std::mem::take(&mut self.param_ptrs));
        let mut ins: Vec<&[f32]> = recycle(std::mem::take(&mut self.input_ptrs));
        let mut os: Vec<&mut [f32]> = recycle(std::mem::take(&mut self.out_ptrs));
        ps.extend(params.iter().map(|p| &p[..]));
        ins.extend(self.gather.iter().map(|g| &g[..]));
        os.extend(self.outs.iter_mut().map(|o| &mut o[..]));
        let result = f.run_batch(scratch, &ps, &ins, n, &mut os);
        self.param_ptrs = recycle(ps);
        self.input_ptrs = recycle(ins);
        self.out_ptrs = recycle(os);
        result?;
        for (dst, src) in outs.iter_mut().zip(&self.outs) {
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = f64::from(s);
            }
        }
        Ok(())
    }
}
