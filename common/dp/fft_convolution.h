// FFT convolution: the linear convolution of two real sequences through FFTW's real-to-complex transforms, in
// O((a + b) log(a + b)) instead of O(a·b). The privacy-loss-distribution accountant composes rounds with it.
//
// The result carries FFT round-off: each entry is off by about 1e-16 times the inputs' total mass (times a log
// factor), so entries that should be tiny may come out slightly negative. The caller decides what that means; the
// accountant clamps them to zero.
#pragma once

#include <span>
#include <vector>

namespace sotto::dp {

// c[k] = sum over i + j = k of a[i]·b[j], of length a.size() + b.size() - 1 (empty when either input is).
std::vector<double> fft_convolve(std::span<const double> a, std::span<const double> b);

}  // namespace sotto::dp
