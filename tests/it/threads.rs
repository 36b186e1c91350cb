//! Data parallelism (`runtime::shards`): a batch's means follow the shard
//! rule on every engine, and training gives the same bits at 1, 2 and 3
//! threads, with shards of unequal sizes and batches smaller than a shard.

use gradc::dtype::Dtype;
use gradc::eval::{Backend, Evaluator};
use gradc::runtime::engine::{train_program, Engine};
use gradc::runtime::shards::{shard, shard_count, Threads};
use gradc::runtime::{self, Dataset, Mode, Options, Report};
use gradc::shape::Tensor;
use gradc::types::train::{Batch, TrainConfig};
use gradc::Compiled;

use crate::common::{compile, root};

const MODES: [Mode; 3] = [Mode::Batched, Mode::PerExample, Mode::Interp];

fn iris() -> (Compiled, TrainConfig, Dataset) {
    iris_with(&std::fs::read_to_string(root().join("examples/mlp.grad")).unwrap())
}

/// A program on the iris data of `examples/mlp.grad` (its train block).
fn iris_with(src: &str) -> (Compiled, TrainConfig, Dataset) {
    let c = compile(src);
    let cfg = c.typed.train.clone().unwrap();
    let data = runtime::load_data(
        &c,
        None,
        &root().join("examples"),
        &[true, true],
        &mut |_| {},
    )
    .unwrap()
    .unwrap();
    (c, cfg, data)
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// The loss and every gradient of a batch, flattened.
fn means(e: &Engine) -> Vec<u64> {
    let mut v = vec![e.loss()];
    v.extend(e.metrics());
    for g in e.grads() {
        v.extend(g);
    }
    bits(&v)
}

/// The means of `rows` by the rule, from the interpreter's values of each
/// example: `sharded` follows the shards, otherwise one sum over the batch.
fn by_hand(
    g: &gradc::ir::Function,
    params: &[Tensor],
    data: &Dataset,
    rows: &[usize],
    sharded: bool,
) -> Vec<u64> {
    let interp = Evaluator::new(g, Backend::Interp).unwrap();
    // Outputs in the order `means` lists them: loss, metrics, gradients.
    let order: Vec<usize> = g
        .outputs
        .iter()
        .enumerate()
        .filter(|(_, o)| matches!(o.role, gradc::ir::Role::Loss))
        .chain(
            g.outputs
                .iter()
                .enumerate()
                .filter(|(_, o)| matches!(o.role, gradc::ir::Role::Metric)),
        )
        .chain(
            g.outputs
                .iter()
                .enumerate()
                .filter(|(_, o)| matches!(o.role, gradc::ir::Role::Grad(_))),
        )
        .map(|(i, _)| i)
        .collect();
    let values: Vec<Vec<f64>> = rows
        .iter()
        .map(|&r| {
            let outs = interp.outputs(params, &data.tensors(&g.inputs, r)).unwrap();
            order.iter().flat_map(|&i| outs[i].data.clone()).collect()
        })
        .collect();
    let n = rows.len();
    let k = if sharded { shard_count(n) } else { 1 };
    let width = values[0].len();
    let mut total = vec![-0.0; width];
    for i in 0..k {
        let mut sum = vec![-0.0; width];
        for v in &values[shard(n, k, i)] {
            for (a, x) in sum.iter_mut().zip(v) {
                *a += x;
            }
        }
        for (t, s) in total.iter_mut().zip(&sum) {
            *t += s;
        }
    }
    bits(&total.iter().map(|t| t / n as f64).collect::<Vec<_>>())
}

/// Every engine at 1, 2 and 3 threads gives the rule's bits for batches of
/// one shard (up to 63 examples), of shards of unequal sizes (65, 97, 129,
/// 300) and of the most shards (256 and more), gathered (rows out of
/// order) or read in place (consecutive, when the data has that many).
#[test]
fn batch_means_follow_the_shard_rule_on_every_engine_at_any_thread_count() {
    let sizes = [1, 10, 31, 32, 63, 64, 65, 97, 100, 129, 150, 256, 300];
    means_follow_the_rule(iris(), &sizes);
}

/// The engine divides a batch of a power of two by multiplying by the
/// inverse: the same bits as dividing, subnormal results included.
#[test]
fn dividing_by_a_power_of_two_is_multiplying_by_its_inverse() {
    let mut xs = vec![
        1.0,
        -3.7,
        1.0 / 3.0,
        -0.0,
        3e-310,
        -5e-324,
        f64::MIN_POSITIVE,
    ];
    xs.extend([f64::MAX, f64::INFINITY, 7.0e-308, 0.1, -123456.789]);
    let mut state = 1u64;
    for _ in 0..10_000 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        xs.push(f64::from_bits(state >> 1));
    }
    for k in 0..20 {
        let n = (1u64 << k) as f64;
        for &x in &xs {
            let (div, mul) = (x / n, x * (1.0 / n));
            assert!(
                div.to_bits() == mul.to_bits() || (div.is_nan() && mul.is_nan()),
                "{x:e} / {n}"
            );
        }
    }
}

/// The same with a gradient of 8,400 elements, whose shards' sums are
/// added in blocks on several threads.
#[test]
fn a_large_gradient_follows_the_shard_rule_at_any_thread_count() {
    let src = "input x: [4]\ninput species\nparam W: [2100, 4] = glorot\n\
               loss mean(tanh(W @ x)^2) + species\n\
               train { data = csv(\"data/iris.csv\", x = 0..4, species = 4) }\n";
    means_follow_the_rule(iris_with(src), &[80]);
}

fn means_follow_the_rule((c, cfg, data): (Compiled, TrainConfig, Dataset), sizes: &[usize]) {
    let g = train_program(&c).unwrap();
    let params = c.initial_params(cfg.seed);
    let mut differs = false;
    let engines: Vec<(Mode, usize, Engine)> = MODES
        .iter()
        .flat_map(|&m| [1, 2, 3].map(|t| (m, t)))
        .map(|(m, t)| {
            (
                m,
                t,
                Engine::with(&g, m, Dtype::F64, Threads::new(t).unwrap().eager()).unwrap(),
            )
        })
        .collect();
    let mut engines = engines;
    for &n in sizes {
        for gathered in [true, false] {
            if !gathered && n > data.len() {
                continue;
            }
            let rows: Vec<usize> = match gathered {
                true => (0..n).map(|i| (i * 7 + 3) % data.len()).collect(),
                false => (0..n).collect(),
            };
            let want = by_hand(&g, &params, &data, &rows, true);
            differs |= want != by_hand(&g, &params, &data, &rows, false);
            for (mode, threads, e) in &mut engines {
                e.run(&params, Some(&data), &rows).unwrap();
                assert_eq!(means(e), want, "{mode:?}, {threads} threads, {n} examples");
            }
        }
    }
    // The rule is not the plain sum: the test tells them apart.
    assert!(differs, "no batch where the shards change a bit");
}

fn run(c: &Compiled, cfg: &TrainConfig, mode: Mode, threads: usize) -> Report {
    let opts = Options {
        base_dir: root().join("examples"),
        threads: Threads::new(threads).unwrap().eager(),
        ..Options::default()
    };
    runtime::train_with(c, cfg, &opts, mode, &mut ()).unwrap_or_else(|e| panic!("{e}"))
}

/// Training runs (steps, validation, the final evaluation) give the same
/// bits on every engine at 1, 2 and 3 threads: batches of 100 (three
/// shards, one larger) with a last batch of 20 (one shard), and batches of
/// 10 (one shard smaller than the least).
#[test]
fn training_gives_the_same_bits_at_1_2_and_3_threads_on_every_engine() {
    let (c, cfg, _) = iris();
    for batch in [100, 10] {
        let cfg = TrainConfig {
            batch: Batch::Size(batch),
            epochs: Some(3),
            patience: None,
            ..cfg.clone()
        };
        let first = run(&c, &cfg, Mode::Batched, 1);
        assert!(first.steps > 3);
        for mode in MODES {
            for threads in [1, 2, 3] {
                let r = run(&c, &cfg, mode, threads);
                let what = format!("batch {batch}, {mode:?}, {threads} threads");
                assert_eq!(r.params, first.params, "{what}");
                assert_eq!(r.train.loss.to_bits(), first.train.loss.to_bits(), "{what}");
                assert_eq!(r.validation, first.validation, "{what}");
                let losses = |r: &Report| {
                    r.history
                        .iter()
                        .map(|h| h.loss.to_bits())
                        .collect::<Vec<_>>()
                };
                assert_eq!(losses(&r), losses(&first), "{what}");
            }
        }
    }
}
