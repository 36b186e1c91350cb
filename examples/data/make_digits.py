"""Writes scikit-learn's 8x8 digits as IDX files (MNIST's format) in this folder.

The 1,797 images of handwritten digits (UCI's "optical recognition of
handwritten digits", as scikit-learn ships them: 8x8 pixels, each 0..16,
labels 0..9) shuffled with a fixed seed and split into a training part of
1,437 and a test part of 360:

  digits-train-images-idx3-ubyte   [1437, 8, 8] unsigned bytes
  digits-train-labels-idx1-ubyte   [1437] unsigned bytes
  digits-test-images-idx3-ubyte    [360, 8, 8]
  digits-test-labels-idx1-ubyte    [360]

The files are committed; this script documents how they were made and
writes them again bit for bit. Run it once from this folder, with
scikit-learn and numpy in a virtual environment:

  python3 -m venv /tmp/digits-venv
  /tmp/digits-venv/bin/pip install scikit-learn numpy
  /tmp/digits-venv/bin/python make_digits.py
"""
import struct

import numpy as np
from sklearn.datasets import load_digits

SEED = 8
TRAIN = 1437


def write_idx(path, array):
    # The magic: two zero bytes, the element type (0x08: unsigned byte) and
    # the number of dimensions; then each dimension as a big-endian u32.
    assert array.dtype == np.uint8
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 0x08, array.ndim]))
        for n in array.shape:
            f.write(struct.pack(">I", n))
        f.write(array.tobytes(order="C"))


def main():
    digits = load_digits()
    images = digits.images
    assert images.shape == (1797, 8, 8)
    assert images.min() == 0 and images.max() == 16
    assert (images == np.round(images)).all()
    images = images.astype(np.uint8)
    labels = digits.target.astype(np.uint8)
    order = np.random.RandomState(SEED).permutation(len(labels))
    train, test = order[:TRAIN], order[TRAIN:]
    write_idx("digits-train-images-idx3-ubyte", images[train])
    write_idx("digits-train-labels-idx1-ubyte", labels[train])
    write_idx("digits-test-images-idx3-ubyte", images[test])
    write_idx("digits-test-labels-idx1-ubyte", labels[test])
    # Printed for the test that reads the files back: a few pixels, labels.
    print("train[0] label", int(labels[train][0]), "row 3", images[train][0][3].tolist())
    print("test[359] label", int(labels[test][359]), "row 4", images[test][359][4].tolist())
    print("train counts", np.bincount(labels[train], minlength=10).tolist())
    print("test counts", np.bincount(labels[test], minlength=10).tolist())


if __name__ == "__main__":
    main()
