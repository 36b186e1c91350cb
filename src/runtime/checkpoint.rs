//! Parameters, and the optimizer state to resume from, as a safetensors file.
//!
//! Layout: one f64 tensor per parameter under its declared name and shape
//! (a scalar has shape `[]`), so other tools read the weights directly; the
//! optimizer's buffers as `optim.<buffer>.<param>` (parameter names cannot
//! hold a dot, so the two never clash); the counters and the optimizer in
//! the header's metadata (`gradc.step`, `gradc.epoch`, `gradc.optimizer`,
//! `gradc.optimizer_steps`).
//!
//! Files are written atomically: to a temporary file in the same directory,
//! which is then renamed over the target, so an interrupted save leaves the
//! old file intact.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::shape::{Shape, Tensor};

use super::optim::{buffer_names, State};
use super::Error;
use crate::diagnostic::io_reason;
use crate::diagnostic::Location;

/// What a checkpoint holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// The parameters, in declaration order.
    pub params: Vec<Tensor>,
    /// Their names.
    pub names: Vec<String>,
    /// Optimizer steps done.
    pub step: u64,
    /// Complete epochs done.
    pub epoch: u64,
    /// The optimizer's name and state, if saved.
    pub optimizer: Option<SavedOptimizer>,
}

/// An optimizer's state as stored: its name (`adam`), its update count, and
/// its buffers by name, one vector per parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct SavedOptimizer {
    pub name: String,
    pub t: u64,
    pub buffers: Vec<(String, Vec<Vec<f64>>)>,
}

impl SavedOptimizer {
    pub fn from_state(s: &State) -> SavedOptimizer {
        SavedOptimizer {
            name: s.optimizer.name().to_string(),
            t: s.t,
            buffers: buffer_names(&s.optimizer)
                .iter()
                .map(|n| n.to_string())
                .zip(s.buffers.iter().cloned())
                .collect(),
        }
    }

    /// The state for `state.optimizer` (whose buffers it replaces), if this
    /// was saved by the same kind of optimizer with the same sizes.
    pub fn restore(&self, state: &mut State) -> bool {
        if self.name != state.optimizer.name() {
            return false;
        }
        let names = buffer_names(&state.optimizer);
        let mut buffers = Vec::with_capacity(names.len());
        for (n, fresh) in names.iter().zip(&state.buffers) {
            let Some((_, b)) = self.buffers.iter().find(|(k, _)| k == n) else {
                return false;
            };
            let same =
                b.len() == fresh.len() && b.iter().zip(fresh).all(|(x, y)| x.len() == y.len());
            if !same {
                return false;
            }
            buffers.push(b.clone());
        }
        state.buffers = buffers;
        state.t = self.t;
        true
    }
}

/// Writes `ck` to `path`, atomically.
pub fn save(path: &Path, ck: &Checkpoint) -> Result<(), Error> {
    let bytes = serialize(ck).map_err(|e| Error::new(format!("cannot encode the weights: {e}")))?;
    write_atomically(path, &bytes).map_err(|e| {
        Error::new(format!(
            "cannot write `{}`: {}",
            path.display(),
            io_reason(&e)
        ))
    })
}

fn serialize(ck: &Checkpoint) -> Result<Vec<u8>, safetensors::SafeTensorError> {
    let mut entries: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, t) in ck.names.iter().zip(&ck.params) {
        entries.push((name.clone(), t.shape.dims().to_vec(), le_bytes(&t.data)));
    }
    let mut meta = HashMap::new();
    meta.insert("gradc.step".to_string(), ck.step.to_string());
    meta.insert("gradc.epoch".to_string(), ck.epoch.to_string());
    if let Some(o) = &ck.optimizer {
        meta.insert("gradc.optimizer".to_string(), o.name.clone());
        meta.insert("gradc.optimizer_steps".to_string(), o.t.to_string());
        for (buffer, per_param) in &o.buffers {
            for ((name, t), b) in ck.names.iter().zip(&ck.params).zip(per_param) {
                entries.push((
                    format!("optim.{buffer}.{name}"),
                    t.shape.dims().to_vec(),
                    le_bytes(b),
                ));
            }
        }
    }
    let views = entries
        .iter()
        .map(|(n, shape, bytes)| {
            Ok((
                n.as_str(),
                TensorView::new(Dtype::F64, shape.clone(), bytes)?,
            ))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    safetensors::serialize(views, Some(meta))
}

fn le_bytes(xs: &[f64]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The directory a file is written in: its parent, or `.`.
fn directory_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The temporary file beside `path` that [`write_atomically`] writes first.
fn temporary_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".to_string());
    directory_of(path).join(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes `bytes` to a temporary file beside `path`, flushes it to disk and
/// renames it to `path`.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temporary_beside(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Whether [`write_atomically`] can write `path`, checked before a run so
/// that a bad output path fails at once rather than after the work: `path`
/// is not a directory, its directory exists and is one, and a file can be
/// created there (the temporary file, created and removed). The error is the
/// reason, to follow "cannot write `path`: ".
pub fn check_writable(path: &Path) -> Result<(), String> {
    if path.as_os_str().is_empty() {
        return Err("the file name is empty".to_string());
    }
    if path.is_dir() {
        return Err("it is a directory".to_string());
    }
    let dir = directory_of(path);
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(format!("`{}` is not a directory", dir.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("the directory `{}` does not exist", dir.display()))
        }
        Err(e) => return Err(format!("`{}`: {}", dir.display(), io_reason(&e))),
    }
    let tmp = temporary_beside(path);
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&tmp);
            Ok(())
        }
        // Left over from an earlier run of this process id: it was created there.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!(
            "cannot create a file in `{}`: {}",
            dir.display(),
            io_reason(&e)
        )),
    }
}

/// Reads a checkpoint for parameters with these names and shapes, in
/// declaration order. Every declared parameter must be there with its shape,
/// and every tensor that is not optimizer state must be a parameter.
pub fn load(path: &Path, decls: &[(String, Shape)]) -> Result<Checkpoint, Error> {
    let shown = path.display().to_string();
    let bad = |m: String| Error::at(Location::file(&shown), m);
    let bytes = std::fs::read(path)
        .map_err(|e| bad(format!("cannot read the weights: {}", io_reason(&e))))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| bad(format!("not a safetensors file ({e})")))?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(format!("not a safetensors file ({e})")))?;
    let meta = header.metadata().clone().unwrap_or_default();

    let declared: Vec<&str> = decls.iter().map(|(n, _)| n.as_str()).collect();
    let mut unknown: Vec<String> = st
        .names()
        .into_iter()
        .filter(|n| !n.starts_with("optim.") && !declared.contains(n))
        .map(|n| format!("`{n}`"))
        .collect();
    unknown.sort();
    if !unknown.is_empty() {
        return Err(bad(format!(
            "it holds {} that the program does not declare (the program's parameters: {})",
            unknown.join(", "),
            declared.join(", ")
        )));
    }
    let mut params = Vec::with_capacity(decls.len());
    for (name, shape) in decls {
        let view = st.tensor(name).map_err(|_| {
            bad(format!(
                "it has no parameter `{name}` (it was saved from another program?)"
            ))
        })?;
        params.push(read_tensor(&view, name, shape).map_err(bad)?);
    }
    let number = |k: &str| meta.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let optimizer = match meta.get("gradc.optimizer") {
        None => None,
        Some(name) => {
            let mut buffers: Vec<(String, Vec<Vec<f64>>)> = Vec::new();
            for n in st.names() {
                let Some(rest) = n.strip_prefix("optim.") else {
                    continue;
                };
                let Some((buffer, _)) = rest.split_once('.') else {
                    continue;
                };
                if !buffers.iter().any(|(b, _)| b == buffer) {
                    buffers.push((buffer.to_string(), Vec::new()));
                }
            }
            buffers.sort_by(|a, b| a.0.cmp(&b.0));
            for (buffer, per_param) in &mut buffers {
                for (name, shape) in decls {
                    let key = format!("optim.{buffer}.{name}");
                    let view = st
                        .tensor(&key)
                        .map_err(|_| bad(format!("the optimizer state has no `{key}`")))?;
                    per_param.push(read_tensor(&view, &key, shape).map_err(bad)?.data);
                }
            }
            Some(SavedOptimizer {
                name: name.clone(),
                t: number("gradc.optimizer_steps"),
                buffers,
            })
        }
    };
    Ok(Checkpoint {
        params,
        names: declared.iter().map(|s| s.to_string()).collect(),
        step: number("gradc.step"),
        epoch: number("gradc.epoch"),
        optimizer,
    })
}

/// A stored tensor of the expected shape, as f64 (f32 is widened).
fn read_tensor(view: &TensorView<'_>, name: &str, shape: &Shape) -> Result<Tensor, String> {
    if view.shape() != shape.dims() {
        return Err(format!(
            "`{name}` has shape {} there, but the program declares {shape}",
            Shape(view.shape().to_vec())
        ));
    }
    let data: Vec<f64> = match view.dtype() {
        Dtype::F64 => view
            .data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect(),
        Dtype::F32 => view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")) as f64)
            .collect(),
        other => {
            return Err(format!(
                "`{name}` holds {other:?} numbers; expected F64 or F32"
            ))
        }
    };
    if data.len() != shape.size() {
        return Err(format!("`{name}` holds the wrong number of values"));
    }
    Ok(Tensor::new(shape.clone(), data))
}
