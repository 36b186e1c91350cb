//! Tensors seen along axes: the slices a reduction along axes reads, in
//! the order every engine reads them, and the shapes that remain.

use crate::shape::Shape;

/// Whether `axes` are increasing and each an axis of a tensor of `rank`.
pub fn valid(axes: &[usize], rank: usize) -> bool {
    axes.windows(2).all(|w| w[0] < w[1]) && axes.iter().all(|&a| a < rank)
}

/// The dimensions of `s` without the listed axes.
pub fn kept(s: &Shape, axes: &[usize]) -> Vec<usize> {
    s.dims()
        .iter()
        .enumerate()
        .filter(|(i, _)| !axes.contains(i))
        .map(|(_, &d)| d)
        .collect()
}

/// The dimensions of `s` on the listed axes, and their strides in `s`.
pub fn reduced(s: &Shape, axes: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let strides = s.strides();
    axes.iter().map(|&a| (s.dims()[a], strides[a])).unzip()
}

/// The dimensions of `s` off the listed axes, and their strides in `s`.
pub fn others(s: &Shape, axes: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let strides = s.strides();
    (0..s.rank())
        .filter(|i| !axes.contains(i))
        .map(|i| (s.dims()[i], strides[i]))
        .unzip()
}

/// The offsets of the slices of a tensor of shape `s` along `axes`:
/// element `r` of slice `o` is at `outer[o] + inner[r]`, the slices in
/// row-major order of the other axes, the elements of one in row-major
/// order of the listed axes.
pub fn offsets(s: &Shape, axes: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let walk = |(dims, strides): (Vec<usize>, Vec<usize>)| {
        let mut out = vec![0];
        for (d, st) in dims.into_iter().zip(strides) {
            out = out
                .iter()
                .flat_map(|o| (0..d).map(move |j| o + j * st))
                .collect();
        }
        out
    };
    (walk(others(s, axes)), walk(reduced(s, axes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_walk_slices_in_row_major_order() {
        let s = Shape(vec![2, 3, 4]);
        let (outer, inner) = offsets(&s, &[0, 2]);
        assert_eq!(outer, vec![0, 4, 8]);
        assert_eq!(inner, vec![0, 1, 2, 3, 12, 13, 14, 15]);
        let (outer, inner) = offsets(&s, &[1]);
        assert_eq!(outer, vec![0, 1, 2, 3, 12, 13, 14, 15]);
        assert_eq!(inner, vec![0, 4, 8]);
        assert_eq!(kept(&s, &[1]), vec![2, 4]);
        let (outer, inner) = offsets(&Shape::scalar(), &[]);
        assert_eq!((outer, inner), (vec![0], vec![0]));
    }

    #[test]
    fn valid_axes_increase_and_fit_the_rank() {
        assert!(valid(&[0, 2], 3));
        assert!(!valid(&[2, 0], 3));
        assert!(!valid(&[1, 1], 3));
        assert!(!valid(&[3], 3));
    }
}
