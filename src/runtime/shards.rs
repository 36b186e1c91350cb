//! Data parallelism: a batch cut into shards by a rule that depends on its
//! size only, and the pool of threads ([`Threads`]) that runs the shards.
//!
//! The rule, which every engine follows (the batched JIT, the JIT one
//! example per call, the interpreter), so that their numbers are the same
//! bits as one another's at any thread count:
//! - a batch of `n` examples is cut into [`shard_count`]`(n)` shards:
//!   `n / 32` of them (at least 32 examples each), at least 1 and at most
//!   [`MAX_SHARDS`]; shard `i` of `k` holds the examples
//!   `i * n / k .. (i + 1) * n / k` (integer division: sizes differ by one
//!   at most, the larger ones last);
//! - each shard's sums are taken in example order, from -0:
//!   `(((-0 + v0) + v1) + ...)`;
//! - the shards' sums are added in shard order, from -0, and the total is
//!   divided by `n`.
//!
//! The thread count only decides which thread computes a shard's sums,
//! never how they are formed or added; a batch of fewer than 64 examples is
//! one shard, whose mean is `(((-0 + v0) + v1) + ...) / n`, as before shards.

use std::num::NonZeroUsize;
use std::ops::Range;
use std::sync::Arc;

use crate::diagnostic::Error;

/// The fewest examples of a shard (unless the batch is smaller). Every
/// shard reads the weights on its own (a large weight matrix packed for the
/// kernel, a small one transposed), so fewer, larger shards repeat less of
/// that: with 16, the 784-256-10 MLP's step at batch 128 packed its first
/// weight 8 times and took a fifth longer, on one thread and on two.
pub const MIN_SHARD: usize = 32;

/// The most shards a batch is cut into.
pub const MAX_SHARDS: usize = 8;

/// How many shards a batch of `n` examples is cut into.
pub fn shard_count(n: usize) -> usize {
    (n / MIN_SHARD).clamp(1, MAX_SHARDS)
}

/// The examples of shard `i` of a batch of `n` cut into `k` shards.
pub fn shard(n: usize, k: usize, i: usize) -> Range<usize> {
    i * n / k..(i + 1) * n / k
}

/// The most threads a pool may have.
pub const MAX_THREADS: usize = 1024;

/// The least work (floating-point operations, [`crate::ir::stats`]) of a
/// shard for the shards of a batch to run on the pool: handing shards to
/// other threads and waiting for them costs microseconds, more than a small
/// model's whole shard. Below it they run one after another on the calling
/// thread, with the same bits (the thread count never changes the sums).
pub const PARALLEL_FLOPS: u64 = 1 << 20;

/// The threads a run evaluates batches on: none besides the calling one
/// (one thread), or a pool built once per run.
#[derive(Clone, Default)]
pub struct Threads {
    pool: Option<Arc<rayon::ThreadPool>>,
    /// The least work of a shard for a batch's shards to go to the pool.
    min_flops: u64,
}

impl std::fmt::Debug for Threads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Threads({})", self.count())
    }
}

impl Threads {
    /// `n` threads (0: one per core). One runs on the calling thread with
    /// no pool; more build a pool of that many.
    pub fn new(n: usize) -> Result<Threads, Error> {
        let n = match n {
            0 => std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
            n => n,
        };
        if n == 1 {
            return Ok(Threads::default());
        }
        if n > MAX_THREADS {
            return Err(Error::new(format!(
                "--threads {n} is too many: at most {MAX_THREADS} (0 for one per core)"
            )));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("gradc-worker-{i}"))
            // A run goes on a worker: the main thread's stack.
            .stack_size(8 << 20)
            // The matrix-product kernel's packing space, before any step.
            .start_handler(|_| crate::backend::kernel::reserve())
            .build()
            .map_err(|e| Error::new(format!("cannot start {n} threads: {e}")))?;
        Ok(Threads {
            pool: Some(Arc::new(pool)),
            min_flops: PARALLEL_FLOPS,
        })
    }

    /// These threads, taking every batch of more than one shard whatever
    /// its work (tests of the pool with small programs).
    pub fn eager(self) -> Threads {
        Threads {
            min_flops: 0,
            ..self
        }
    }

    /// The least work of a shard ([`PARALLEL_FLOPS`], 0 when eager) for the
    /// shards of a batch to run on the pool.
    pub fn min_flops(&self) -> u64 {
        self.min_flops
    }

    /// How many threads run shards.
    pub fn count(&self) -> usize {
        self.pool.as_ref().map_or(1, |p| p.current_num_threads())
    }

    /// The pool, if there is one (more than one thread). A batch run from
    /// one of its threads shares its shards out with `join` (nothing
    /// allocated); from another thread, it queues a job on the pool, whose
    /// queue allocates a block every 63 jobs: a training run therefore runs
    /// on the pool ([`crate::runtime::train_with`]).
    pub fn pool(&self) -> Option<&rayon::ThreadPool> {
        self.pool.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shards cover the batch in order, without gaps, each of at least
    /// `MIN_SHARD` examples (unless the batch is smaller), at most
    /// `MAX_SHARDS` of them, their sizes differing by one at most.
    #[test]
    fn shards_cover_the_batch_in_order() {
        for n in 1..400 {
            let k = shard_count(n);
            assert!((1..=MAX_SHARDS).contains(&k), "n = {n}");
            let mut next = 0;
            let mut sizes = Vec::new();
            for i in 0..k {
                let r = shard(n, k, i);
                assert_eq!(r.start, next, "n = {n}");
                next = r.end;
                sizes.push(r.len());
            }
            assert_eq!(next, n);
            let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(hi - lo <= 1, "n = {n}: {sizes:?}");
            assert!(k == 1 || *lo >= MIN_SHARD, "n = {n}: {sizes:?}");
        }
        assert_eq!(shard_count(63), 1);
        assert_eq!(shard_count(64), 2);
        assert_eq!(shard_count(128), 4);
        assert_eq!(shard_count(256), 8);
        assert_eq!(shard_count(10_000), 8);
        assert_eq!(shard(65, 2, 0), 0..32);
        assert_eq!(shard(65, 2, 1), 32..65);
    }

    #[test]
    fn one_thread_has_no_pool() {
        let t = Threads::new(1).unwrap();
        assert!(t.pool().is_none());
        assert_eq!(t.count(), 1);
        let t = Threads::new(3).unwrap();
        assert_eq!(t.count(), 3);
        assert!(Threads::new(0).unwrap().count() >= 1);
        let e = Threads::new(MAX_THREADS + 1).unwrap_err().render(false);
        assert!(
            e.contains("--threads 1025 is too many: at most 1024"),
            "{e}"
        );
    }
}
