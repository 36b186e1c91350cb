//! Reference computations written from published definitions, independent
//! of gradc, that several test modules check programs against.

/// log(sum(exp(v))), the maximum shifted out.
pub fn logsumexp(v: &[f64]) -> f64 {
    let mx = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    v.iter().map(|a| (a - mx).exp()).sum::<f64>().ln() + mx
}

/// The parameters and data of GradBench's `gmm` eval: `k` components in
/// `d` dimensions, one row per component (`mu`, `q` the log-diagonal, `l`
/// the strictly lower part packed column by column) and per point (`x`).
pub struct Gmm<'a> {
    pub alpha: &'a [f64],
    pub mu: &'a [Vec<f64>],
    pub q: &'a [Vec<f64>],
    pub l: &'a [Vec<f64>],
    pub x: &'a [Vec<f64>],
    /// The Wishart prior's `gamma` and `m`.
    pub gamma: f64,
    pub m: f64,
}

impl Gmm<'_> {
    /// GradBench's gmm objective, the log posterior, as its C++ reference
    /// computes it: Q (x - mu) with Q lower triangular (exp(q) on the
    /// diagonal), the Wishart prior with log Gamma_D from `lgamma`.
    pub fn log_posterior(&self) -> f64 {
        let (k, d) = (self.mu.len(), self.mu[0].len());
        let (q, l) = (self.q, self.l);
        let n = self.x.len() as f64;
        let sum_q: Vec<f64> = q.iter().map(|qk| qk.iter().sum()).collect();
        let mut slse = 0.0;
        for xi in self.x {
            let main: Vec<f64> = (0..k)
                .map(|c| {
                    let z: Vec<f64> = (0..d).map(|j| xi[j] - self.mu[c][j]).collect();
                    let mut qz: Vec<f64> = (0..d).map(|j| q[c][j].exp() * z[j]).collect();
                    // Column i of the strictly lower part, rows i + 1.., then the next.
                    let mut packed = l[c].iter();
                    for (i, zi) in z.iter().enumerate() {
                        for qzj in &mut qz[i + 1..] {
                            *qzj += packed.next().unwrap() * zi;
                        }
                    }
                    self.alpha[c] + sum_q[c] - 0.5 * qz.iter().map(|v| v * v).sum::<f64>()
                })
                .collect();
            slse += logsumexp(&main);
        }
        let dof = d as f64 + self.m + 1.0;
        let log_multigamma = 0.25 * (d * (d - 1)) as f64 * std::f64::consts::PI.ln()
            + (1..=d)
                .map(|j| libm::lgamma(0.5 * dof + 0.5 * (1.0 - j as f64)))
                .sum::<f64>();
        let c_const = dof * d as f64 * (self.gamma.ln() - 0.5 * 2f64.ln()) - log_multigamma;
        let mut out = 0.0;
        for c in 0..k {
            let frobenius = q[c].iter().map(|v| v.exp().powi(2)).sum::<f64>()
                + l[c].iter().map(|v| v * v).sum::<f64>();
            out += 0.5 * self.gamma * self.gamma * frobenius - self.m * sum_q[c];
        }
        let constant = -n * d as f64 * 0.5 * (2.0 * std::f64::consts::PI).ln();
        constant + slse - n * logsumexp(self.alpha) - out + k as f64 * c_const
    }
}

/// The objective of GradBench's `lstm` eval as its C++ reference computes
/// it (after ADBench): `l` layers of `b` cells, `main` and `extra` flat,
/// row by row (the jacobian's order), `state` and `seq` likewise.
pub fn lstm(main: &[f64], extra: &[f64], state: &[f64], seq: &[f64], l: usize, b: usize) -> f64 {
    let c = seq.len() / b;
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    let mut state = state.to_vec();
    let mut total = 0.0;
    for t in 0..c - 1 {
        let mut x: Vec<f64> = (0..b).map(|i| seq[t * b + i] * extra[i]).collect();
        for layer in 0..l {
            let w = &main[2 * layer * 4 * b..];
            let bias = &main[(2 * layer + 1) * 4 * b..];
            for i in 0..b {
                let hidden = state[2 * layer * b + i];
                let forget = sigmoid(x[i] * w[i] + bias[i]);
                let ingate = sigmoid(hidden * w[b + i] + bias[b + i]);
                let outgate = sigmoid(x[i] * w[2 * b + i] + bias[2 * b + i]);
                let change = (hidden * w[3 * b + i] + bias[3 * b + i]).tanh();
                let cell = &mut state[(2 * layer + 1) * b + i];
                *cell = *cell * forget + ingate * change;
                let h = outgate * cell.tanh();
                state[2 * layer * b + i] = h;
            }
            x = state[2 * layer * b..2 * layer * b + b].to_vec();
        }
        let ypred: Vec<f64> = (0..b)
            .map(|i| x[i] * extra[b + i] + extra[2 * b + i])
            .collect();
        let lse = (ypred.iter().map(|y| y.exp()).sum::<f64>() + 2.0).ln();
        total += (0..b)
            .map(|i| seq[(t + 1) * b + i] * (ypred[i] - lse))
            .sum::<f64>();
    }
    -total / ((c - 1) * b) as f64
}
